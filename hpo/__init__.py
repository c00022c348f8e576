"""hpo: hyperparameter optimization for Keras image classifiers.

From Python (a notebook), see :mod:`hpo.api`::

    import hpo
    study = hpo.launch_study("digits-cnn", workers=2, trials=12)
    hpo.retrain_study(study, seeds=3)
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "export_study",
    "figures",
    "launch_study",
    "load_study",
    "retrain_study",
    "study_config",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    """The API's functions, imported on first use (``hpo --help`` stays instant)."""
    if name in _API:
        from hpo import api

        return getattr(api, name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
