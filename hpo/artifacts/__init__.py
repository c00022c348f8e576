"""The artifact store: the files a study makes (models, plots), kept where every machine sees them.

``store`` resolves and opens the store (a directory or ``s3://bucket/prefix``); ``transfer``
records files against a study's trials with Optuna's artifact API and fetches them back;
``plots`` draws the retrain's learning curves and confusion matrix as PNG images.
"""

__all__ = ["plots", "store", "transfer"]
