"""Learning-rate schedule: constant or cosine decay, with an optional linear warm-up.

With successive halving, cosine decay restarts at each rung (SGDR), so every
configuration is judged at a rung with its learning rate annealed rather than
halfway down one long decay, where all trials look alike.
"""

from hpo.space import CategoricalParam, IntParam

PARAMS = [
    CategoricalParam("lr_schedule", choices=("constant", "cosine"), default="cosine"),
    IntParam("warmup_epochs", low=0, high=3, default=0),
]
