"""The KerasTuner backend: KerasTuner's oracles choose, hpo trains, the study store records.

Modules (imported by path; this package imports nothing itself):

- ``backend``: the backend class
- ``search``: KerasTuner's oracle in the helper, its tuner in workers
- ``space``: hpo's parameters as KerasTuner hyperparameters and back
"""

__all__ = ["backend", "search", "space"]
