"""Hidden-layer activation; the leaky-ReLU slope is searched only with leaky ReLU."""

from hpo.space import CategoricalParam, Condition, FloatParam

PARAMS = [
    CategoricalParam("activation", choices=("relu", "leaky_relu", "elu", "tanh"), default="relu"),
    FloatParam(
        "leaky_alpha",
        low=0.01,
        high=0.3,
        default=0.1,
        condition=Condition("activation", ("leaky_relu",)),
    ),
]
