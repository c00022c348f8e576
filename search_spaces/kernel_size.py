"""Convolution kernel size (the MNIST report's "feature map size": 3 vs 5)."""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("kernel_size", choices=(3, 5), default=3)]
