"""hpo: hyperparameter optimization for Keras image classifiers.

From Python (a notebook), see :mod:`hpo.api`::

    import hpo
    study = hpo.launch_study("digits-cnn", workers=2, trials=12)
    hpo.retrain_study(study, seeds=3)
"""

from hpo import api as _api
from hpo.api import *  # noqa: F403  (light: the API imports what it needs when called)

__version__ = "0.1.0"
__all__ = _api.__all__ + ["__version__"]  # noqa: RUF005  (a starred list reads as invalid)
