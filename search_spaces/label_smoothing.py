"""Label smoothing of the cross-entropy loss: targets of 1 - s for the true class."""

from hpo.space import FloatParam

PARAMS = [FloatParam("label_smoothing", low=0.0, high=0.2, step=0.05, default=0.0)]
