"""Dropout after each conv block (the UCI digits CNN used 0.25)."""

from hpo.space import FloatParam

PARAMS = [FloatParam("conv_dropout", low=0.0, high=0.4, step=0.05, default=0.25)]
