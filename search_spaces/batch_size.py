"""Mini-batch size (the notebooks compared 32, 64 and 128)."""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("batch_size", choices=(32, 64, 128, 256), default=32)]
