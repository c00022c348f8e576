"""The Optuna backend: samplers, pruners and the worker loop over a shared study.

Modules (imported by path; this package imports nothing itself):

- ``backend``: the backend class and its worker loop
- ``search``: the sampler and pruner made from the study's settings
- ``history``: the history TPE and successive halving see in a long study
"""

__all__ = ["backend", "history", "search"]
