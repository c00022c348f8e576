"""Dropout after each dense layer, 0-0.5 in steps of 0.1 as in the SVHN notebook."""

from hpo.space import FloatParam

PARAMS = [FloatParam("dropout", low=0.0, high=0.5, step=0.1, default=0.4)]
