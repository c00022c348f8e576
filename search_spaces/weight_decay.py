"""Decoupled weight decay (AdamW-style; Keras applies it to every optimizer), log scale."""

from hpo.space import FloatParam

PARAMS = [FloatParam("weight_decay", low=1e-5, high=1e-1, log=True, default=1e-4)]
