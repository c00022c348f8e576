"""Best trials <-> YAML: the ``hpo-config/1`` documents that ``hpo retrain`` reads.

A document is ``format: hpo-config/1`` and a ``configs:`` list (one entry even
for ``--top 1``), so a file always has the same shape. Each config is complete
on its own: with the YAML and the data file, another machine rebuilds the same
network from ``architecture`` and trains it with ``training``. The trial's flat
search ``params`` are kept as a record of what the search chose; retraining
reads ``architecture`` and ``training`` only, so a hand edit goes there.

The parser is strict on purpose: a config that silently trains something
other than what the user wrote is worse than one that refuses to load. Every
error names the file and the key path (``configs[0].training.batch_size``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from hpo import confirm, yaml_file
from hpo.confirm import Candidate
from hpo.data import DATASETS
from hpo.errors import ConfigError, DataError, HpoError
from hpo.models import (
    LR_SCHEDULES,
    OPTIMIZERS,
    TRAINING_DEFAULTS,
    Architecture,
    check_param_name,
    named_model,
)
from hpo.study import counts, describe_counts, retrain_key, searched_data, stored_config
from hpo.training import TrainSettings

FORMAT = "hpo-config/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_METRICS = ("val_accuracy", "train_accuracy", "n_params", "inference_ms", "train_seconds")
#: Metrics a confirmed configuration adds: the spread of its runs' scores and how many ran.
_CONFIRM_METRICS = ("val_accuracy_std", "runs")


@dataclass(frozen=True)
class DatasetRef:
    """Which data a config was tuned on, and the image shape its architecture expects."""

    name: str
    path: str | None = None
    sha256: str | None = None
    val_fraction: float = 0.2
    input_shape: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Training:
    """Fixed-length training, the recipe the search ran: retraining has nothing to stop early on."""

    epochs: int
    optimizer: str = TRAINING_DEFAULTS["optimizer"]
    learning_rate: float = TRAINING_DEFAULTS["learning_rate"]
    batch_size: int = TRAINING_DEFAULTS["batch_size"]
    lr_schedule: str = TRAINING_DEFAULTS["lr_schedule"]
    warmup_epochs: int = TRAINING_DEFAULTS["warmup_epochs"]
    weight_decay: float = TRAINING_DEFAULTS["weight_decay"]
    label_smoothing: float = TRAINING_DEFAULTS["label_smoothing"]
    cycles: tuple[int, ...] = ()  # where a cosine schedule restarts, as in the search
    best_epoch: int | None = None  # the search's best validation epoch, for the record
    seed: int = 0  # the first retraining seed; --seeds R uses seed .. seed+R-1

    def settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            early_stopping=0,
            seed=seed,
            lr_schedule=self.lr_schedule,
            warmup_epochs=self.warmup_epochs,
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            cycles=self.cycles,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "lr_schedule": self.lr_schedule,
            "warmup_epochs": self.warmup_epochs,
            "weight_decay": self.weight_decay,
            "label_smoothing": self.label_smoothing,
        }
        if self.cycles:
            out["cycles"] = list(self.cycles)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        out["seed"] = self.seed
        return out


@dataclass(frozen=True)
class Source:
    study: str
    trial: int
    storage: str | None = None  # masked: a password never reaches the YAML


@dataclass(frozen=True)
class RetrainConfig:
    """One configuration to retrain: an exported trial, a hand-written network or a named model."""

    name: str
    dataset: DatasetRef
    architecture: Architecture
    training: Training
    model: str | None = None  # a name from `hpo models`, when the config is one of those
    params: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping, in a stable, readable key order; empty sections left out."""
        ds = self.dataset
        out: dict[str, Any] = {"name": self.name}
        if self.source is not None:
            out["source"] = {
                "study": self.source.study,
                "trial": self.source.trial,
                "storage": self.source.storage,
            }
        out["dataset"] = {
            "name": ds.name,
            "path": ds.path,
            "sha256": ds.sha256,
            "val_fraction": ds.val_fraction,
            "input_shape": list(ds.input_shape) if ds.input_shape else None,
        }
        if self.model is not None:
            out["model"] = self.model
        else:
            out["architecture"] = self.architecture.to_dict()
            if self.params:
                out["params"] = dict(self.params)
        out["training"] = self.training.to_dict()
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        if self.provenance:
            out["provenance"] = dict(self.provenance)
        return out


# --------------------------------------------------------------------------- study -> configs


def best_trials(study, top: int) -> list[Candidate]:
    """The ``top`` best configurations, ranked by their confirmed score (see :mod:`hpo.confirm`).

    Configurations with several runs come first, by their mean; then single runs
    by accuracy; ties go to fewer parameters, then the earlier trial. In a study
    with several objectives (accuracy against size or latency) these are the
    Pareto-optimal trials, by accuracy.
    """
    trials = study.get_trials(deepcopy=False)
    ranked = confirm.candidates(trials)
    if not ranked:
        held = describe_counts(counts(study))
        raise ConfigError(
            f"study {study.study_name!r} has no complete trial yet ({held}): "
            f"run `hpo launch --study {study.study_name}` until one completes"
        )
    if len(study.directions) > 1:
        front = sorted(
            study.best_trials,
            key=lambda t: (-t.values[0], t.user_attrs.get("n_params", math.inf), t.number),
        )
        ranked = [Candidate(t, [t.values[0]]) for t in front]
    return ranked[:top]


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
    from hpo import storage as store
    from hpo.objective import settings_for, trial_architecture, versions

    config = stored_config(study)
    trials = best_trials(study, top)
    path = data or config.data
    warnings: list[str] = []
    searched = searched_data(study)  # the data the study searched, if recorded
    sha = searched.get("sha256")
    shape = tuple(searched["input_shape"]) if searched.get("input_shape") else None
    if inspect_data:
        from hpo.data import load_dataset

        try:
            ds = load_dataset(
                config.dataset, path, val_fraction=config.val_fraction, seed=config.seed
            )
            if sha is not None and ds.sha256 != sha:
                warnings.append(
                    f"{ds.source} has sha256 {ds.sha256[:12]}..., not the "
                    f"{sha[:12]}... of the data study {study.study_name!r} searched; "
                    "the export records the study's"
                )
            else:
                sha, shape = ds.sha256, ds.input_shape
        except DataError as exc:
            if sha is None:
                warnings.append(f"{exc}; the export records no sha256 or input_shape for it")
    dataset = DatasetRef(config.dataset, path, sha, config.val_fraction, shape)
    exported_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    masked = store.mask(store.resolve_url(storage_url))
    out = []
    for candidate in trials:
        trial = candidate.trial
        attrs = trial.user_attrs
        settings = settings_for(config, trial.params, attrs.get("seed", config.seed + trial.number))
        epochs = int(attrs.get("epochs", settings.epochs))  # as run, early stop included
        metrics = {k: attrs[k] for k in _METRICS if k in attrs}
        if candidate.confirmed:  # the confirmed score: the mean over the configuration's runs
            metrics.update(
                val_accuracy=candidate.mean, val_accuracy_std=candidate.std, runs=candidate.runs
            )
        out.append(
            RetrainConfig(
                name=f"{study.study_name}-trial-{trial.number}",
                dataset=dataset,
                architecture=trial_architecture(config, trial.params, attrs),
                training=Training(
                    epochs=epochs,
                    optimizer=settings.optimizer,
                    learning_rate=settings.learning_rate,
                    batch_size=settings.batch_size,
                    lr_schedule=settings.lr_schedule,
                    warmup_epochs=settings.warmup_epochs,
                    weight_decay=settings.weight_decay,
                    label_smoothing=settings.label_smoothing,
                    cycles=tuple(c for c in settings.cycles if c < epochs),
                    best_epoch=attrs.get("best_epoch"),
                    seed=settings.seed,
                ),
                params=dict(trial.params),
                source=Source(study.study_name, trial.number, masked),
                metrics=metrics,
                provenance={
                    "exported_at": exported_at,
                    "versions": attrs.get("versions") or versions(),
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


def describe_architecture(arch: Architecture) -> str:
    """A short one-line summary such as ``aug t0.1 r10, conv 32-32/64-64 k3 bn gap, dense 128 d0.3, relu``."""
    parts = []
    aug = arch.augmentation
    if aug.active:
        shown = [
            f"{k[0]}{v:g}"
            for k, v in (("translate", aug.translate), ("rotate", aug.rotate), ("zoom", aug.zoom))
            if v
        ]
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
    return ", ".join(parts + [act])


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
                "train_acc": _num(m.get("train_accuracy"), ".4f"),
                "test_acc": test,
                "epochs": f"{t.epochs} (best {t.best_epoch})" if t.best_epoch else t.epochs,
                "params": _num(m.get("n_params"), ","),
                "ms/img": _num(m.get("inference_ms"), ".3f"),
                "train_s": _num(m.get("train_seconds"), ".1f"),
                "optimizer": t.optimizer,
                "lr": f"{t.learning_rate:.3g}",
                "batch": t.batch_size,
                "architecture": describe_architecture(c.architecture),
            }
        )
    return rows


def _val_text(metrics: Mapping[str, Any]) -> str:
    """The validation score: a confirmed mean ± the spread of its runs, or one run's."""
    if "val_accuracy_std" in metrics:
        return f"{metrics['val_accuracy']:.4f} ± {metrics['val_accuracy_std']:.4f}"
    return _num(metrics.get("val_accuracy"), ".4f")


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# --------------------------------------------------------------------------- YAML -> configs

_ABSENT = object()


class _Section:
    """One mapping of the document, read strictly; errors carry the file and key path."""

    def __init__(
        self,
        file: str,
        path: str,
        data: Any,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
    ):
        self.file, self.path = file, path
        if not isinstance(data, Mapping):
            raise self.error(f"{path or 'the document'} must be a mapping, got {_show(data)}")
        allowed = (*required, *optional)
        unknown = [str(k) for k in data if k not in allowed]
        if unknown:
            raise self.error(
                f"{path or 'the document'} has unknown key(s) "
                f"{', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}"
            )
        for key in required:
            if key not in data:
                raise self.error(f"{self.at(key)} is missing (required)")
        self.data = data

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def integer(self, key: str, minimum: int, default: Any = _ABSENT) -> Any:
        value = self.data.get(key)
        if value is None and default is not _ABSENT:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{self.at(key)} must be an integer, got {_show(value)}")
        if value < minimum:
            raise self.error(f"{self.at(key)} must be an integer >= {minimum}, got {value}")
        return value

    def number(
        self, key: str, low: float, high: float | None = None, default: Any = _ABSENT
    ) -> Any:
        """A number in ``(low, high)``."""
        value = self.data.get(key)
        if value is None and default is not _ABSENT:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.error(f"{self.at(key)} must be a number, got {_show(value)}")
        if not (value > low and (high is None or value < high)):
            bounds = f"between {low:g} and {high:g}" if high is not None else f"above {low:g}"
            raise self.error(f"{self.at(key)} must be a number {bounds}, got {value:g}")
        return float(value)

    def text(self, key: str, choices: tuple[str, ...] | None = None, default: Any = _ABSENT) -> Any:
        value = self.data.get(key)
        if value is None and default is not _ABSENT:
            return default
        if not isinstance(value, str) or not value:
            raise self.error(f"{self.at(key)} must be a string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.error(f"{self.at(key)} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def section(self, key: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()):
        return _Section(self.file, self.at(key), self.data[key], required, optional)


def _show(value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return f"a {'mapping' if isinstance(value, Mapping) else 'list'}"
    return "nothing" if value is None else repr(value)


def load_configs(path: str | Path) -> list[RetrainConfig]:
    """Read and validate an ``hpo-config/1`` file (a safe loader: data, never objects)."""
    file = str(path)
    document = yaml_file.load(path, "config file", f"write one with `hpo export -o {file}`")
    top = _Section(file, "", document, required=("configs",), optional=("format",))
    if "format" in document and document["format"] != FORMAT:
        raise top.error(f"format must be {FORMAT!r}, got {_show(document['format'])}")
    items = document["configs"]
    if not isinstance(items, list) or not items:
        raise top.error(f"configs must be a non-empty list of configs, got {_show(items)}")
    configs = [_parse_config(file, f"configs[{i}]", item, i) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, config in enumerate(configs):
        if config.name in seen:
            raise top.error(
                f"configs[{i}].name {config.name!r} is used twice; names must be unique"
            )
        seen.add(config.name)
    return configs


def _parse_config(file: str, where: str, item: Any, index: int) -> RetrainConfig:
    s = _Section(
        file,
        where,
        item,
        required=("dataset",),
        optional=(
            "name",
            "source",
            "dataset",
            "model",
            "architecture",
            "params",
            "training",
            "metrics",
            "provenance",
        ),
    )
    if s.has("model") == s.has("architecture"):
        raise s.error(
            f"{where} needs either model (a name from `hpo models`) or architecture, "
            "not both or neither"
        )
    named = None
    if s.has("model"):
        try:
            named = named_model(s.text("model"))
        except ConfigError as exc:
            raise s.error(f"{s.at('model')}: {exc}") from None
        if s.has("params"):
            raise s.error(f"{s.at('params')} describes a searched network; a named model has none")
        arch = named.architecture
    else:
        try:
            arch = Architecture.from_dict(item["architecture"])
        except (HpoError, TypeError, ValueError, AttributeError) as exc:
            raise s.error(f"{s.at('architecture')}: {exc}") from None
    if named is None and "training" not in item:
        raise s.error(f"{s.at('training')} is missing (required with architecture)")

    source = None
    if s.has("source"):
        src = s.section("source", required=("study", "trial"), optional=("storage",))
        source = Source(
            src.text("study"), src.integer("trial", 0), src.text("storage", default=None)
        )
    dataset = _parse_dataset(s, named)
    training = _parse_training(s, named)
    params = _parse_params(s, arch.family) if s.has("params") else {}
    metrics = _parse_metrics(s) if s.has("metrics") else {}
    provenance = {}
    if s.has("provenance"):
        prov = s.section("provenance", optional=("exported_at", "versions"))
        versions = prov.data.get("versions") or {}
        if not isinstance(versions, Mapping) or not all(
            isinstance(v, str) for v in versions.values()
        ):
            raise s.error(f"{prov.at('versions')} must map package names to version strings")
        stamp = prov.data.get("exported_at")
        if isinstance(stamp, datetime):  # an unquoted timestamp: YAML reads it as a date
            stamp = stamp.isoformat()
        elif stamp is not None:
            stamp = prov.text("exported_at")
        provenance = {"exported_at": stamp, "versions": dict(versions)}
        provenance = {k: v for k, v in provenance.items() if v}

    if s.has("name"):
        name = s.text("name")
        if not _NAME.match(name):
            raise s.error(
                f"{s.at('name')} {name!r} must be letters, digits, '-', '_' or '.' "
                "(it names the output folder)"
            )
    elif source is not None:
        name = f"{source.study}-trial-{source.trial}"
    else:
        name = named.name if named is not None else f"config-{index + 1}"
    return RetrainConfig(
        name,
        dataset,
        arch,
        training,
        named.name if named else None,
        params,
        source,
        metrics,
        provenance,
    )


def _parse_dataset(s: _Section, named) -> DatasetRef:
    d = s.section(
        "dataset", required=("name",), optional=("path", "sha256", "val_fraction", "input_shape")
    )
    name = d.text("name", DATASETS)
    path = d.text("path", default=None)
    if name == "digits" and path is not None:
        raise d.error(
            f"{d.at('path')} must be empty: the digits dataset is bundled with scikit-learn"
        )
    sha = d.text("sha256", default=None)
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise d.error(f"{d.at('sha256')} must be 64 hex digits, got {sha!r}")
    shape = d.data.get("input_shape")
    if shape is not None:
        if (
            not isinstance(shape, list)
            or len(shape) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape)
        ):
            raise d.error(f"{d.at('input_shape')} must be [height, width, channels], got {shape!r}")
        shape = tuple(shape)
    if named is not None:
        if shape is not None and shape != named.input_shape:
            raise d.error(
                f"{d.at('input_shape')} {list(shape)} differs from model {named.name}'s "
                f"{list(named.input_shape)}"
            )
        shape = named.input_shape
    return DatasetRef(name, path, sha, d.number("val_fraction", 0.0, 1.0, default=0.2), shape)


def _parse_training(s: _Section, named) -> Training:
    defaults = {**TRAINING_DEFAULTS, **(named.training if named is not None else {})}
    if "training" not in s.data:
        return Training(**{k: defaults[k] for k in ("epochs", *TRAINING_DEFAULTS)})
    t = s.section(
        "training",
        required=() if named else ("epochs",),
        optional=(
            "optimizer",
            "learning_rate",
            "batch_size",
            "epochs",
            "best_epoch",
            "seed",
            "lr_schedule",
            "warmup_epochs",
            "weight_decay",
            "label_smoothing",
            "cycles",
        ),
    )
    epochs = t.integer("epochs", 1, default=defaults.get("epochs", _ABSENT))
    cycles = t.data.get("cycles") or []
    if (
        not isinstance(cycles, list)
        or any(isinstance(c, bool) or not isinstance(c, int) or not 0 < c < epochs for c in cycles)
        or cycles != sorted(set(cycles))
    ):
        raise t.error(
            f"{t.at('cycles')} must be a rising list of epochs below training.epochs "
            f"({epochs}), got {cycles!r}"
        )
    return Training(
        epochs=epochs,
        optimizer=t.text("optimizer", OPTIMIZERS, default=defaults["optimizer"]),
        learning_rate=t.number("learning_rate", 0.0, default=float(defaults["learning_rate"])),
        batch_size=t.integer("batch_size", 1, default=defaults["batch_size"]),
        lr_schedule=t.text("lr_schedule", LR_SCHEDULES, default=defaults["lr_schedule"]),
        warmup_epochs=t.integer("warmup_epochs", 0, default=defaults["warmup_epochs"]),
        weight_decay=t.number("weight_decay", -1e-12, default=float(defaults["weight_decay"])),
        label_smoothing=t.number(
            "label_smoothing", -1e-12, 1.0, default=float(defaults["label_smoothing"])
        ),
        cycles=tuple(cycles),
        best_epoch=t.integer("best_epoch", 1, default=None),
        seed=t.integer("seed", 0, default=0),
    )


def _parse_params(s: _Section, family: str) -> dict[str, Any]:
    raw = s.data["params"]
    if not isinstance(raw, Mapping):
        raise s.error(f"{s.at('params')} must be a mapping, got {_show(raw)}")
    for key, value in raw.items():
        try:
            check_param_name(family, str(key))
        except ConfigError as exc:
            raise s.error(f"{s.at('params')}.{key}: {exc}") from None
        if not isinstance(value, (bool, int, float, str)):
            raise s.error(
                f"{s.at('params')}.{key} must be a number, string or true/false, got {_show(value)}"
            )
    return dict(raw)


def _parse_metrics(s: _Section) -> dict[str, Any]:
    m = s.section("metrics", optional=_METRICS + _CONFIRM_METRICS)
    out: dict[str, Any] = {}
    for key in _METRICS + _CONFIRM_METRICS:
        if m.has(key):
            out[key] = m.integer(key, 0) if key in ("n_params", "runs") else m.number(key, -1e-12)
    return out
