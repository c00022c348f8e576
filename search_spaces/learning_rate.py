"""Learning rate on a log scale, 1e-4 to 1e-2 (the notebooks tried 1e-4 .. 5e-3)."""

from hpo.space import FloatParam

PARAMS = [FloatParam("learning_rate", low=1e-4, high=1e-2, log=True)]
