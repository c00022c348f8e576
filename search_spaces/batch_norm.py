"""Batch normalization on or off (after each pooling step, or each dense layer in an ANN)."""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("batch_norm", choices=(False, True), default=True)]
