"""Learning rate on a log scale, 1e-4 to 1e-2 (the notebooks tried 1e-4 .. 5e-3).

The default, 2e-3, is the peak of the small modern CNN's cosine schedule.
"""

from hpo.space import FloatParam

PARAMS = [FloatParam("learning_rate", low=1e-4, high=1e-2, log=True, default=2e-3)]
