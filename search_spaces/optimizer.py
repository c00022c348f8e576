"""Optimizer (the MNIST report compared Adam with SGD)."""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("optimizer", choices=("adam", "rmsprop", "sgd"), default="adam")]
