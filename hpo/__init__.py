"""hpo: hyperparameter optimization for Keras image classifiers."""

__version__ = "0.1.0"
