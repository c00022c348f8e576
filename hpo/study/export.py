"""Best trials <-> YAML: a study's best configurations as ``hpo-config/1`` documents.

:func:`configs_from_study` turns the best trials into :class:`RetrainConfig` entries,
:func:`dumps` writes them, and ``hpo best`` prints them (:func:`best_rows`). The format itself,
and reading it back (:func:`load_configs`), is :mod:`hpo.schemas.hpo_config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from hpo.errors import ConfigError, DataError
from hpo.models.families import Architecture
from hpo.schemas.hpo_config import (
    FORMAT,
    DatasetRef,
    RetrainConfig,
    Source,
    Training,
    load_configs,
)
from hpo.study import ranking
from hpo.study.ranking import Candidate
from hpo.study.records import (
    TRAINING_ATTR,
    counts,
    describe_counts,
    retrain_key,
    searched_data,
    stored_config,
)
from hpo.study.trial_record import (
    BEST_EPOCH,
    EPOCHS,
    INFERENCE_MS,
    MODEL_FILE,
    N_PARAMS,
    SEED,
    TRAIN_ACCURACY,
    TRAIN_SECONDS,
    VAL_ACCURACY,
    VERSIONS,
    config_name,
)

__all__ = [
    "FORMAT",
    "DatasetRef",
    "RetrainConfig",
    "Source",
    "Training",
    "best_rows",
    "best_trials",
    "configs_from_study",
    "describe_architecture",
    "describe_network",
    "dumps",
    "load_configs",
]

_METRICS = (VAL_ACCURACY, TRAIN_ACCURACY, N_PARAMS, INFERENCE_MS, TRAIN_SECONDS)


# --------------------------------------------------------------------------- study -> configs


def best_trials(study, top: int) -> list[Candidate]:
    """The ``top`` best configurations, ranked by their confirmed score (:mod:`hpo.study.confirm`).

    Configurations with several runs come first, by their mean; then single runs
    by accuracy; ties go to fewer parameters, then the earlier trial. In a study
    with several objectives (accuracy against size or latency) these are the
    Pareto-optimal trials, by accuracy.
    """
    ranked = ranking.ranked(study, top)
    if not ranked:
        held = describe_counts(counts(study))
        raise ConfigError(
            f"study {study.study_name!r} has no complete trial yet ({held}): "
            f"run `hpo launch --study {study.study_name}` until one completes"
        )
    return ranked


def configs_from_study(
    study,
    top: int,
    storage_url: str | None = None,
    *,
    data: str | None = None,
    inspect_data: bool = True,
) -> tuple[list[RetrainConfig], list[str]]:
    """The best trials as configs, and warnings for whatever could not be recorded.

    With ``inspect_data`` the search data (never the test set) is read once for
    its content hash and image shape; a missing file is a warning, not an error,
    so a machine holding only the store can still export.
    """
    from hpo.storage import store
    from hpo.training.evaluation import settings_for, trial_architecture, versions

    config = stored_config(study)
    trials = best_trials(study, top)
    path = data or config.data
    warnings: list[str] = []
    searched = searched_data(study)  # the data the study searched, if recorded
    sha = searched.get("sha256")
    shape = tuple(searched["input_shape"]) if searched.get("input_shape") else None
    classes = searched.get("classes")
    if path is None and sha is not None and shape is not None:
        inspect_data = False  # a bundled dataset is the one the study recorded
    if inspect_data:
        from hpo.training.evaluation import search_dataset

        try:
            ds = search_dataset(config, path)
            if sha is not None and ds.sha256 != sha:
                warnings.append(
                    f"{ds.source} has sha256 {ds.sha256[:12]}..., not the "
                    f"{sha[:12]}... of the data study {study.study_name!r} searched; "
                    "the export records the study's"
                )
            else:
                sha, shape, classes = ds.sha256, ds.input_shape, list(ds.classes)
        except DataError as exc:
            if sha is None:
                warnings.append(f"{exc}; the export records no sha256 or input_shape for it")
    dataset = DatasetRef(
        name=config.dataset,
        path=path,
        sha256=sha,
        val_fraction=config.val_fraction,
        input_shape=shape,
        classes=tuple(classes) if classes else None,
    )
    exported_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    masked = store.mask(store.resolve_url(storage_url))
    out = []
    for candidate in trials:
        trial = candidate.trial
        attrs = trial.user_attrs
        seed = attrs.get(SEED, config.seed + trial.number)
        settings = settings_for(config, trial.params, seed, attrs.get(TRAINING_ATTR))
        epochs = int(attrs.get(EPOCHS, settings.epochs))  # as run, early stop included
        cycles = tuple(c for c in settings.cycles if c < epochs)
        metrics = {k: attrs[k] for k in _METRICS if k in attrs}
        if config.retrain_epochs:  # the study's retrain length, one cosine decay
            metrics["search_epochs"] = epochs
            epochs, cycles = config.retrain_epochs, ()
        if candidate.confirmed:  # the confirmed score: the mean over the configuration's runs
            metrics[VAL_ACCURACY] = candidate.mean
            metrics.update(val_accuracy_std=candidate.std, runs=candidate.runs)
        own = config.own_model
        out.append(
            RetrainConfig(
                name=config_name(study.study_name, trial.number),
                dataset=dataset,
                architecture=None if own else trial_architecture(config, trial.params, attrs),
                model=config.model if own else None,
                model_sha256=attrs.get(MODEL_FILE) if own else None,
                training=Training(
                    **settings.recipe(),
                    epochs=epochs,
                    cycles=cycles,
                    best_epoch=attrs.get(BEST_EPOCH),
                    seed=settings.seed,
                ),
                params=dict(trial.params),
                source=Source(study=study.study_name, trial=trial.number, storage=masked),
                metrics=metrics,
                provenance={
                    "exported_at": exported_at,
                    "versions": attrs.get(VERSIONS) or versions(),
                },
            )
        )
    return out, warnings


def dumps(configs: list[RetrainConfig]) -> str:
    """The YAML text: block mappings, short scalar lists (filters, input_shape) on one line."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def sequence(dumper, data):
        flow = all(isinstance(v, (bool, int, float, str)) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Dumper.add_representer(list, sequence)
    document = {"format": FORMAT, "configs": [c.to_dict() for c in configs]}
    return yaml.dump(
        document,
        Dumper=Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def describe_network(config: RetrainConfig) -> str:
    """A config's network on one line: its architecture's summary, or the user's function and
    the values it was called with."""
    if config.architecture is not None:
        return describe_architecture(config.architecture)
    values = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.params.items()
    )
    return f"{config.model} {values}".strip()


def describe_architecture(arch: Architecture) -> str:
    """A one-line summary: ``aug t0.1 r10, conv 32-32/64-64 k3 bn gap, dense 128 d0.3, relu``."""
    parts = []
    aug = arch.augmentation
    if aug.active:
        shown = [
            f"{k[0]}{v:g}"
            for k, v in (("translate", aug.translate), ("rotate", aug.rotate), ("zoom", aug.zoom))
            if v
        ] + (["flip"] if aug.flip else [])
        parts.append("aug " + " ".join(shown))
    if arch.conv_blocks:
        filters = "/".join("-".join(str(f) for f in b.filters) for b in arch.conv_blocks)
        kernels = sorted({b.kernel_size for b in arch.conv_blocks})
        text = f"conv {filters} k{'/'.join(map(str, kernels))}"
        text += " bn" if any(b.batch_norm for b in arch.conv_blocks) else ""
        drops = {b.dropout for b in arch.conv_blocks} - {0.0}
        text += f" d{'/'.join(f'{d:g}' for d in sorted(drops))}" if drops else ""
        text += " gap" if arch.head == "gap" else ""
        parts.append(text)
    if arch.dense_layers:
        text = "dense " + "-".join(str(d.units) for d in arch.dense_layers)
        drops = {d.dropout for d in arch.dense_layers} - {0.0}
        text += f" d{'/'.join(f'{d:g}' for d in sorted(drops))}" if drops else ""
        text += " bn" if any(d.batch_norm for d in arch.dense_layers) else ""
        own = {d.activation for d in arch.dense_layers} - {None}
        text += f" {'/'.join(sorted(own))}" if own else ""  # dense activations unlike the rest
        parts.append(text)
    act = arch.activation + (f"({arch.leaky_alpha:.3g})" if arch.activation == "leaky_relu" else "")
    return ", ".join([*parts, act])


def best_rows(study, configs: list[RetrainConfig]) -> list[dict[str, Any]]:
    """What ``hpo best`` prints: the exported fields, plus test scores a retrain recorded."""
    rows = []
    for rank, c in enumerate(configs, 1):
        m, t = c.metrics, c.training
        retrained = None
        if c.source is not None:
            retrained = study.user_attrs.get(retrain_key(c.source.trial))
        test = "-"
        if retrained:
            test = f"{retrained['test_accuracy_mean']:.4f} ± {retrained['test_accuracy_std']:.4f}"
        rows.append(
            {
                "rank": rank,
                "trial": c.source.trial if c.source else "-",
                "val_acc": _val_text(m),
                "runs": m.get("runs", 1),
                "train_acc": _num(m.get(TRAIN_ACCURACY), ".4f"),
                "test_acc": test,
                "epochs": f"{t.epochs} (best {t.best_epoch})" if t.best_epoch else t.epochs,
                "params": _num(m.get(N_PARAMS), ","),
                "ms/img": _num(m.get(INFERENCE_MS), ".3f"),
                "train_s": _num(m.get(TRAIN_SECONDS), ".1f"),
                "optimizer": t.optimizer,
                "lr": f"{t.learning_rate:.3g}",
                "batch": t.batch_size,
                "architecture": describe_network(c),
            }
        )
    return rows


def _val_text(metrics: Mapping[str, Any]) -> str:
    """The validation score: a confirmed mean ± the spread of its runs, or one run's."""
    if "val_accuracy_std" in metrics:
        return f"{metrics[VAL_ACCURACY]:.4f} ± {metrics['val_accuracy_std']:.4f}"
    return _num(metrics.get(VAL_ACCURACY), ".4f")


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
