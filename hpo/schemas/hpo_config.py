"""``hpo-config/1``: the configurations that ``hpo export`` writes and ``hpo retrain`` reads.

A document is ``format: hpo-config/1`` and a ``configs:`` list (one entry even for
``--top 1``), so a file always has the same shape. Each config is complete on its own: with the
YAML and the data file, another machine rebuilds the same network from ``architecture`` and
trains it with ``training``. The trial's flat search ``params`` are kept as a record of what the
search chose; retraining reads ``architecture`` and ``training`` only, so a hand edit goes
there. ``model: <name>`` (see ``hpo models``) stands for a named model's architecture and
training, and a ``training`` block beside it overrides single keys.

The reader is strict on purpose: a config that silently trains something other than what the
user wrote is worse than one that refuses to load. Every error names the file and the key path
(``configs[0].training.batch_size``).
"""

from collections.abc import Mapping
from dataclasses import dataclass as plain_dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)
from pydantic.dataclasses import dataclass

from hpo.config.choices import LR_SCHEDULES, OPTIMIZERS
from hpo.data import DATASETS
from hpo.errors import ConfigError
from hpo.io import yaml_file
from hpo.models.families import check_param_name
from hpo.models.named import NAMED_MODELS
from hpo.models.user import TrialModel, is_reference, load_function, model_field
from hpo.schemas.architecture import Architecture
from hpo.schemas.base import Checked, choice, invalid, number, problem, read, says, text, whole
from hpo.study.trial_record import config_name
from hpo.training.settings import TRAINING_DEFAULTS, TRAINING_KEYS, TrainSettings

FORMAT = "hpo-config/1"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def _not_required(*keys: str, **more: Any) -> Any:
    """JSON Schema only: keys the model requires but a file may leave out (and ``more`` rules)."""

    def edit(schema: dict[str, Any], *_: Any) -> None:
        schema["required"] = [k for k in schema.get("required", []) if k not in keys]
        if not schema["required"]:
            del schema["required"]
        schema.update(more)

    return edit


_CONFIG = ConfigDict(extra="forbid")
_ConfigName = text("letters, digits, '-', '_' or '.' (it names the output folder)", pattern=_NAME)
Count = whole(0)
Score = number(ge=0)


@dataclass(frozen=True, config=_CONFIG)
class DatasetRef(Checked):
    """Which data a config was tuned on, and the image shape its architecture expects."""

    name: choice(DATASETS)
    path: text("a file path") | None = None
    sha256: text("64 hex digits", pattern=r"^[0-9a-f]{64}$") | None = None
    val_fraction: number(gt=0, lt=1) = 0.2
    input_shape: (
        Annotated[tuple[whole(1), whole(1), whole(1)], says("[height, width, channels]")] | None
    ) = None
    #: The class names in the network's output order (index i is classes[i]).
    classes: (
        Annotated[tuple[text(), ...], Field(min_length=2), says("a list of class names")] | None
    ) = None

    @field_validator("path")
    @classmethod
    def _no_path_for_digits(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is not None and info.data.get("name") == "digits":
            raise invalid("must be empty: the digits dataset is bundled with scikit-learn")
        return path


@dataclass(
    frozen=True, config=ConfigDict(extra="forbid", json_schema_extra=_not_required("epochs"))
)
class Training(Checked):
    """Fixed-length training, the recipe the search ran: retraining has nothing to stop early on."""

    epochs: whole(1)
    optimizer: choice(OPTIMIZERS) = TRAINING_DEFAULTS["optimizer"]
    learning_rate: number(gt=0) = TRAINING_DEFAULTS["learning_rate"]
    batch_size: whole(1) = TRAINING_DEFAULTS["batch_size"]
    lr_schedule: choice(LR_SCHEDULES) = TRAINING_DEFAULTS["lr_schedule"]
    warmup_epochs: whole(0) = TRAINING_DEFAULTS["warmup_epochs"]
    weight_decay: number(ge=0) = TRAINING_DEFAULTS["weight_decay"]
    label_smoothing: number(ge=0, lt=1) = TRAINING_DEFAULTS["label_smoothing"]
    #: Where a cosine schedule restarts, as in the search.
    cycles: Annotated[
        tuple[Annotated[int, Strict()], ...], says("a rising list of epochs below training.epochs")
    ] = ()
    best_epoch: whole(1) | None = None  # the search's best validation epoch, for the record
    seed: whole(0) = 0  # the first retraining seed; --seeds R uses seed .. seed+R-1

    @field_validator("cycles")
    @classmethod
    def _rising_below_epochs(cls, cycles: tuple[int, ...], info: ValidationInfo) -> tuple:
        epochs = info.data.get("epochs")
        if epochs is not None and (
            list(cycles) != sorted(set(cycles)) or not all(0 < c < epochs for c in cycles)
        ):
            raise invalid(
                f"must be a rising list of epochs below training.epochs ({epochs}), "
                f"got {list(cycles)}"
            )
        return cycles

    def settings_dict(self) -> dict[str, Any]:
        """The training settings by name (:data:`~hpo.training.settings.TRAINING_KEYS`)."""
        return {key: getattr(self, key) for key in TRAINING_KEYS}

    def settings(self, seed: int) -> TrainSettings:
        return TrainSettings.from_values(
            self.settings_dict(),
            epochs=self.epochs,
            early_stopping=0,
            seed=seed,
            cycles=self.cycles,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.settings_dict()
        if self.cycles:
            out["cycles"] = list(self.cycles)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        out["seed"] = self.seed
        return out


@dataclass(frozen=True, config=_CONFIG)
class Source(Checked):
    """The study and trial a config was exported from."""

    study: text()
    trial: whole(0)
    storage: text() | None = None  # masked: a password never reaches the YAML


class Metrics(Checked, BaseModel):
    """What the search measured (a confirmed configuration: the mean of its runs, and spread)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    val_accuracy: Score | None = None
    train_accuracy: Score | None = None
    n_params: Count | None = None
    inference_ms: Score | None = None
    train_seconds: Score | None = None
    val_accuracy_std: Score | None = None
    runs: Count | None = None
    #: The epochs the trial trained in the search, where the study retrains for other epochs.
    search_epochs: Count | None = None


def _iso(value: Any) -> Any:
    """An unquoted timestamp is a date to YAML: back to the text it was."""
    return value.isoformat() if isinstance(value, datetime) else value


class Provenance(Checked, BaseModel):
    """When the config was exported, and the versions of the packages that trained the trial."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exported_at: Annotated[text(), BeforeValidator(_iso)] | None = None
    versions: Annotated[
        dict[Annotated[str, Strict()], Annotated[str, Strict()]],
        says("a mapping of package names to version strings"),
    ] = Field(default_factory=dict)


def _param_name(name: str, info: ValidationInfo) -> str:
    arch = info.data.get("architecture")
    if arch is not None:
        try:
            check_param_name(arch.family, name)
        except ConfigError as exc:
            raise problem(str(exc)) from None
    return name


#: JSON Schema only: a config names a model, or gives an architecture and training.epochs.
_MODEL_OR_ARCHITECTURE = [
    {"required": ["model"], "not": {"required": ["architecture"]}},
    {
        "required": ["architecture", "training"],
        "not": {"required": ["model"]},
        "properties": {"training": {"required": ["epochs"]}},
    },
]


class ConfigEntry(Checked, BaseModel):
    """One configuration: an exported trial, a hand-written network, or a named model."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=_not_required("training", oneOf=_MODEL_OR_ARCHITECTURE),
    )

    name: _ConfigName | None = None
    source: Source | None = None
    dataset: DatasetRef
    #: a name from `hpo models`, or your function (``path/to/file.py:build``)
    model: model_field(tuple(NAMED_MODELS)) | None = None
    model_sha256: text("64 hex digits", pattern=r"^[0-9a-f]{64}$") | None = None
    architecture: Architecture | None = None
    params: (
        dict[
            Annotated[str, Strict(), says("a parameter name"), AfterValidator(_param_name)],
            Annotated[bool | int | float | str, says("a number, string or true/false")],
        ]
        | None
    ) = None
    training: Training
    metrics: Metrics | None = None
    provenance: Provenance | None = None

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A named model stands for its architecture, training and image shape."""
        model = data.get("model")
        if (model is None) == ("architecture" not in data):
            raise invalid(
                "needs either model (a name from `hpo models` or a function, file.py:build) or "
                "architecture, not both or neither"
            )
        named = NAMED_MODELS.get(model) if isinstance(model, str) else None
        if named is not None:
            data["architecture"] = named.architecture
            training = data.get("training", {})
            if isinstance(training, Mapping):
                data["training"] = {**named.training, **training}
            dataset = data.get("dataset")
            if isinstance(dataset, Mapping) and "input_shape" not in dataset:
                data["dataset"] = {**dataset, "input_shape": named.input_shape}
        return data

    @field_validator("params")
    @classmethod
    def _searched_only(cls, params: dict | None, info: ValidationInfo) -> dict | None:
        model = info.data.get("model")
        if params is not None and model is not None and not is_reference(model):
            raise invalid("describes a searched network; a named model has none")
        return params

    def check(self) -> None:
        shape = self.dataset.input_shape
        named = NAMED_MODELS.get(self.model) if self.model else None
        if named is not None and shape != named.input_shape:
            raise problem(
                f"dataset.input_shape {list(shape)} differs from model {named.name}'s "
                f"{list(named.input_shape)}"
            )

    def resolved_name(self, index: int) -> str:
        """Its name: as written, else the trial's, the named model's or ``config-<n>``."""
        if self.name:
            return self.name
        if self.source is not None:
            return config_name(self.source.study, self.source.trial)
        return self.model or f"config-{index + 1}"


class HpoConfigFile(Checked, BaseModel):
    """An ``hpo-config/1`` file: a list of configurations to retrain, each complete on its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Annotated[Literal[FORMAT], says(repr(FORMAT))] = FORMAT
    configs: Annotated[list[ConfigEntry], Field(min_length=1)]

    def check(self) -> None:
        seen: set[str] = set()
        for i, entry in enumerate(self.configs):
            name = entry.resolved_name(i)
            if name in seen:
                raise problem(f"configs[{i}].name {name!r} is used twice; names must be unique")
            seen.add(name)


@plain_dataclass(frozen=True)
class RetrainConfig:
    """One configuration to retrain: an exported trial, a hand-written network or a named model."""

    name: str
    dataset: DatasetRef
    architecture: Architecture | None  # None for a function of the user's
    training: Training
    model: str | None = None  # a name from `hpo models`, or a function (file.py:build)
    model_sha256: str | None = None  # the function's file when the config was exported
    params: dict[str, Any] = field(default_factory=dict)
    source: Source | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: ConfigEntry, index: int) -> "RetrainConfig":
        """The config a validated file entry describes, with its name and named model resolved."""
        provenance = entry.provenance.model_dump() if entry.provenance else {}
        return cls(
            name=entry.resolved_name(index),
            dataset=entry.dataset,
            architecture=entry.architecture,
            training=entry.training,
            model=entry.model,
            model_sha256=entry.model_sha256,
            params=dict(entry.params or {}),
            source=entry.source,
            metrics=entry.metrics.model_dump(exclude_none=True) if entry.metrics else {},
            provenance={k: v for k, v in provenance.items() if v},
        )

    @property
    def function_reference(self) -> bool:
        """Whether the model is a function of the user's (``file.py:build``)."""
        return self.model is not None and is_reference(self.model)

    def network(self, n_classes: int = 10) -> Architecture | TrialModel:
        """What to train: the architecture, or the user's function with the trial's params."""
        if self.function_reference:
            return TrialModel(load_function(self.model), dict(self.params), n_classes)
        assert self.architecture is not None  # ConfigEntry.prepare gives a named model's
        return self.architecture

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
            "classes": list(ds.classes) if ds.classes else None,
        }
        if self.function_reference:
            out["model"] = self.model
            out["model_sha256"] = self.model_sha256
            out["params"] = dict(self.params)
        elif self.model is not None:
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


def load_configs(path: str | Path) -> list[RetrainConfig]:
    """Read and validate an ``hpo-config/1`` file (a safe loader: data, never objects)."""
    file = str(path)
    document = yaml_file.load(path, "config file", f"write one with `hpo export -o {file}`")
    parsed = read(HpoConfigFile, document, file)
    return [RetrainConfig.from_entry(entry, i) for i, entry in enumerate(parsed.configs)]
