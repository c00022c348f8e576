"""The choices hpo's settings take, listed once.

The study schema, the dataset loaders, the backends and the command line's
``--sampler``/``--pruner``/... lists all read them here. This module imports
nothing, so ``hpo --help`` stays instant.
"""

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid")
PRUNERS = ("successive-halving", "hyperband", "median", "none")
OBJECTIVES = ("accuracy", "accuracy,params", "accuracy,latency")
DATASETS = ("digits", "svhn", "mnist", "fashion-mnist", "arrays", "folder")
TUNERS = ("random", "bayesian", "hyperband", "grid")  # KerasTuner's oracles hpo runs
COLOR_MODES = ("auto", "grayscale", "rgb")  # auto: colour data trains in colour
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "cosine")  # after an optional linear warm-up
