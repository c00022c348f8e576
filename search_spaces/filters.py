"""Convolution depth and width: how many conv blocks, and the filters in each.

Ranges follow the SVHN notebook's KerasTuner space (filters_1 16-64,
filters_2 32-128); a third block is searched only when conv_blocks is 3.
Defaults: two blocks of 32 and 64 filters, the small modern CNN's widths.
"""

from hpo.space import CategoricalParam, Condition, IntParam

PARAMS = [
    CategoricalParam("conv_blocks", choices=(1, 2, 3), default=2),
    IntParam("filters_1", low=16, high=64, step=16, default=32),
    IntParam(
        "filters_2",
        low=32,
        high=128,
        step=32,
        default=64,
        condition=Condition("conv_blocks", (2, 3)),
    ),
    IntParam(
        "filters_3",
        low=32,
        high=128,
        step=32,
        default=128,
        condition=Condition("conv_blocks", (3,)),
    ),
]
