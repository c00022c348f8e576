"""A study: what hpo keeps in an Optuna study, and what people ask of it.

Modules (imported by path; this package imports nothing itself):

- ``records``: hpo's attribute names on studies and trials, and the questions
  every command asks (counts by state, the searched data, live launches)
- ``trial_record``: a complete trial's metrics (``val_accuracy``, ``n_params``, ...),
  typed, and the metric each objective optimizes
- ``ranking``: what "best" means, once (the confirmed score, or the Pareto front)
- ``confirm``: the best configurations trained again with other seeds
- ``settings``: which settings a launch runs a study with (a file, the stored ones, a built-in)
- ``warm_starts``: known configurations queued as a study's first trials
- ``export``: best trials as hpo-config/1 YAML and back
- ``summary``: what a store holds, as plain data for the CLI
- ``sweep``: one-at-a-time sensitivity studies
"""

__all__ = [
    "confirm",
    "export",
    "ranking",
    "records",
    "settings",
    "summary",
    "sweep",
    "trial_record",
    "warm_starts",
]
