"""Dense layers: how many, and the units in each (a CNN's head, or an ANN's body)."""

from hpo.space import CategoricalParam, Condition, IntParam

PARAMS = [
    CategoricalParam("dense_layers", choices=(1, 2, 3), default=1),
    IntParam("dense_units_1", low=32, high=256, step=32, default=128),
    IntParam(
        "dense_units_2",
        low=32,
        high=256,
        step=32,
        default=128,
        condition=Condition("dense_layers", (2, 3)),
    ),
    IntParam(
        "dense_units_3",
        low=32,
        high=256,
        step=32,
        default=128,
        condition=Condition("dense_layers", (3,)),
    ),
]
