"""The final step: the best configurations trained on all the data and tested once.

Modules (imported by path; this package imports nothing itself):

- ``run``: retrain chosen configurations and score them on the test set
- ``record``: what retraining found, stored and tabulated
- ``results_json``: an output folder's results.json
"""

__all__ = ["record", "results_json", "run"]
