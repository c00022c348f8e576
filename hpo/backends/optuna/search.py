"""The Optuna study's sampler and pruner, made from the study's settings.

Each worker makes its own (its own random stream); :mod:`hpo.backends.optuna.backend` attaches them.
"""

from __future__ import annotations

import warnings

from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError
from hpo.space import SearchSpace


def make_sampler(config: StudyConfig, space: SearchSpace, stream: int = 0):
    """The study's sampler; ``stream`` gives each worker its own random sequence.

    Workers with the same seed would propose the same first configurations.
    """
    import optuna

    seed = (config.seed + 7919 * stream) % 2**32  # numpy's seeds stop at 2**32 - 1
    name = config.sampler
    if name == "tpe":
        from hpo.backends.optuna.history import BoundedTPESampler

        # Optuna's TPE; on a long study it sees the best and the latest trials (optuna_history).
        # `group` is marked experimental: chosen on purpose, so its warning would only be noise
        # on every worker's stderr.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return BoundedTPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
            )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the gp sampler needs PyTorch, which hpo does not install by default: "
                "pip install torch (or use --sampler tpe)"
            ) from None
        return optuna.samplers.GPSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    raise ConfigError(f"unknown sampler {name!r}")


def make_pruner(config: StudyConfig):
    import optuna

    name = config.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.first_rung,
            max_resource=config.epochs,
            reduction_factor=config.reduction_factor,
        )
    if name == "successive-halving":
        from hpo.backends.optuna.history import BoundedSuccessiveHalvingPruner

        # Optuna's decisions; the rung values read incrementally, not every trial at each rung
        return BoundedSuccessiveHalvingPruner(
            min_resource=config.first_rung, reduction_factor=config.reduction_factor
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}")
