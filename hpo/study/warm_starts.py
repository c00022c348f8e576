"""Warm starts: known configurations queued as a study's first trials.

``--enqueue`` queues a named model from ``hpo models`` or the configurations of
an exported YAML; a new study also queues its search space's defaults (the
recipe its modules encode), so the search has to beat that recipe. Queued
trials are plain Optuna WAITING trials; the backends that run queued trials
(``Backend.runs_queued_trials``) take them first.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError
from hpo.study.records import ARCH_ATTR, ENQUEUED_ATTR, TRAINING_ATTR, enqueued_labels
from hpo.training.settings import TRAINING_DEFAULTS


def _known(source: str):
    """(label, architecture, training settings) for each configuration a name or YAML file gives.

    The settings are every one a configuration trains with
    (:data:`hpo.training.settings.TRAINING_DEFAULTS`' keys: optimizer, rate, batch size, schedule,
    warm-up, weight decay, label smoothing), and its epochs.
    """
    from hpo.models.families import NAMED_MODELS

    if source in NAMED_MODELS:
        named = NAMED_MODELS[source]
        return [(source, named.architecture, dict(named.training))]
    if not source.endswith((".yaml", ".yml")):
        raise ConfigError(
            f"--enqueue {source!r}: not a model from `hpo models` "
            f"({', '.join(NAMED_MODELS)}) nor a .yaml file from `hpo export`"
        )
    from hpo.study.export import load_configs

    return [(c.name, c.architecture, c.training.settings_dict()) for c in load_configs(source)]


def known_labels(sources: Sequence[str]) -> list[str]:
    """The labels of the configurations names or YAML files give: what ``--enqueue`` would add.

    Each label once, as :func:`enqueue_known` queues it once: the same file (or the same
    configuration) given twice adds one trial, and is counted once.
    """
    return list(dict.fromkeys(label for source in sources for label, _, _ in _known(source)))


def check_known(source: str, config: StudyConfig, input_shape: tuple[int, ...]) -> None:
    """Raise a clear error when a warm start cannot run in this study."""
    from hpo.models.families import check_fits

    for label, arch, _ in _known(source):
        if config.own_model:
            raise ConfigError(
                f"--enqueue {label}: study {config.name!r} builds its models with {config.model}, "
                "and --enqueue queues hpo's cnn/ann networks; queue values for your function "
                "from Python: hpo.load_study(...).enqueue_trial(params)"
            )
        if arch is None:
            raise ConfigError(
                f"--enqueue {label}: a configuration of a model function, but study "
                f"{config.name!r} searches {config.model} models"
            )
        if arch.family != config.model:
            raise ConfigError(
                f"--enqueue {label}: a {arch.family} model, but study {config.name!r} "
                f"searches {config.model} models"
            )
        check_fits(arch, input_shape)


def enqueue_known(
    study, config: StudyConfig, source: str, input_shape: tuple[int, ...]
) -> list[str]:
    """Queue known configurations first: a named model from `hpo models`, or an exported YAML.

    The trial trains that exact architecture; training parameters the study
    searches (learning rate, batch size, ...) take the model's values when they
    are in range, and the settings it does not search (a cosine schedule, weight
    decay, ... when the space lacks them) travel with the trial (``TRAINING_ATTR``).
    Its epochs stay the study's budget. A configuration already queued or run under
    the same label is not queued twice, so re-running a launch does not repeat it.
    """
    check_known(source, config, input_shape)
    space = config.checked_space()
    done = enqueued_labels(study)
    queued = []
    for label, arch, training in _known(source):
        if label in done:
            continue
        params = {k: v for k, v in training.items() if k in space and space[k].contains(v)}
        attrs = {ARCH_ATTR: arch.to_dict(), ENQUEUED_ATTR: label}
        fixed = {k: v for k, v in training.items() if k in TRAINING_DEFAULTS and k not in space}
        if fixed:
            attrs[TRAINING_ATTR] = fixed
        study.enqueue_trial(params, user_attrs=attrs)
        done.add(label)
        queued.append(label)
    return queued


def enqueue_defaults(study, config: StudyConfig) -> bool:
    """Queue the space's default configuration (SMAC's initial design starts from it too).

    Every parameter with a default takes it; the sampler chooses the rest. The
    search then has to beat the recipe the modules encode, and cannot end below it.
    """
    if not config.try_defaults_first:
        return False
    defaults = config.checked_space().defaults()
    if not defaults:
        return False
    study.enqueue_trial(defaults, user_attrs={ENQUEUED_ATTR: "defaults"})
    return True
