"""The study store: SQLite by default, PostgreSQL or MySQL across machines.

Modules (imported by path; this package imports nothing itself):

- ``store``: opening and checking a store, in one place
- ``sqlite``: a SQLite store locked, checked and read before anything writes
- ``url``: a store's URL resolved and masked
- ``errors``: what a store failure means for the user, in one line
- ``worker_writes``: a worker's trial in fewer round trips
- ``optuna_internals``: every private Optuna interface hpo uses
"""

__all__ = ["errors", "optuna_internals", "sqlite", "store", "url", "worker_writes"]
