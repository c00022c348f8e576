"""Convolutions per conv block before its pooling step (VGG-style blocks of two 3x3 convs)."""

from hpo.space import IntParam

PARAMS = [IntParam("convs_per_block", low=1, high=3, default=2)]
