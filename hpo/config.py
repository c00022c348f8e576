"""Study configurations: the built-in studies and YAML study files, validated once.

A :class:`StudyConfig` says what to search (dataset, model family, search-space
modules and overrides) and how (objective, epochs, early stopping, sampler,
pruner, seed). It is stored in the study itself (the ``hpo_config`` user
attribute), so ``hpo worker`` can join a study knowing only its name and the
storage URL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import search_spaces
from hpo import models
from hpo.data import DATASETS
from hpo.errors import ConfigError, HpoError, shown
from hpo.space import CategoricalParam, Param, SearchSpace, override

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "grid")
PRUNERS = ("successive-halving", "hyperband", "median", "none")
#: Objectives: validation accuracy, alone or against model size or inference latency.
OBJECTIVES = ("accuracy", "accuracy,params", "accuracy,latency")
#: For each objective: (metric name shown in the dashboard, direction).
OBJECTIVE_METRICS = {
    "accuracy": ("validation accuracy", "maximize"),
    "params": ("parameters", "minimize"),
    "latency": ("inference ms per image", "minimize"),
}
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_SEED = 2**31 - 1  # seed + trial number must stay below 2**32, numpy's limit
MAX_TRIALS = 1_000_000


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise ConfigError(
            f"study name {shown(name)} is not valid: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (at most 100 characters)"
        )
    return name


@dataclass(frozen=True)
class StudyConfig:
    name: str
    dataset: str
    model: str
    search_space: tuple[str, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    objective: str = "accuracy"
    epochs: int = 10
    early_stopping: int = 3
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    trials: int = 20
    val_fraction: float = 0.2
    train_subset: int | None = None
    max_params: int | None = None
    cv: int | None = None
    #: Successive halving / Hyperband: the first rung (epochs), and the factor between rungs.
    min_epochs: int | None = None  # None: the largest r with r * factor^2 <= epochs
    reduction_factor: int = 3
    #: Confirmation: the best `confirm_top` configurations are trained `confirm_seeds` times in
    #: all (other seeds) once the search is done, and ranked by their mean. 0 turns it off.
    confirm_top: int = 0
    confirm_seeds: int = 3
    #: Try the search space's default configuration (its modules' recipe) as the first trial.
    try_defaults_first: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        check_study_name(self.name)
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}: use one of {', '.join(DATASETS)}")
        if self.model not in models.FAMILIES:
            raise ConfigError(
                f"unknown model {self.model!r}: use one of {', '.join(models.FAMILIES)}"
            )
        _check_choice("sampler", self.sampler, SAMPLERS)
        _check_choice("pruner", self.pruner, PRUNERS)
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_int("epochs", self.epochs, 1)
        _check_int("early_stopping", self.early_stopping, 0)
        _check_int("trials", self.trials, 1, MAX_TRIALS)
        _check_int("seed", self.seed, 0, MAX_SEED)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, 10)
        if self.max_params is not None:
            _check_int("max_params", self.max_params, 1)
        if self.cv is not None:
            _check_int("cv", self.cv, 2)
        if self.min_epochs is not None:
            _check_int("min_epochs", self.min_epochs, 1)
            if self.min_epochs > self.epochs:
                raise ConfigError(
                    f"min_epochs ({self.min_epochs}) must not exceed epochs ({self.epochs})"
                )
        _check_int("reduction_factor", self.reduction_factor, 2)
        _check_int("confirm_top", self.confirm_top, 0)
        _check_int("confirm_seeds", self.confirm_seeds, 2)
        if not isinstance(self.try_defaults_first, bool):
            raise ConfigError(
                f"try_defaults_first must be true or false, got {self.try_defaults_first!r}"
            )
        if not (isinstance(self.val_fraction, float) and 0 < self.val_fraction < 1):
            raise ConfigError(
                f"val_fraction must be a number between 0 and 1, got {shown(self.val_fraction)}"
            )
        if self.data is not None and (not isinstance(self.data, str) or not self.data):
            raise ConfigError(f"data must be a file path, got {shown(self.data)}")
        if self.dataset == "digits" and self.data:
            raise ConfigError(
                "the digits dataset is bundled with scikit-learn and takes no data path"
            )
        if not isinstance(self.overrides, Mapping):
            raise ConfigError("overrides must be a mapping of parameter name to value or range")
        if not all(isinstance(k, str) for k in self.overrides):
            bad = next(k for k in self.overrides if not isinstance(k, str))
            raise ConfigError(f"overrides must be keyed by parameter names, got {shown(bad)}")
        if not all(isinstance(m, str) and m for m in self.search_space):
            raise ConfigError("search_space must be a list of module names")
        if not isinstance(self.description, str) or len(self.description) > 2000:
            raise ConfigError("description must be text of at most 2,000 characters")
        if self.sampler == "cmaes" and self.multi_objective:
            raise ConfigError(
                f"the cmaes sampler optimizes one objective, not {self.objective!r}: "
                "use --sampler tpe, random or qmc for a Pareto front"
            )

    @property
    def objectives(self) -> list[str]:
        return self.objective.split(",")

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def first_rung(self) -> int:
        """The epochs a trial trains before successive halving first judges it."""
        if self.min_epochs is not None:
            return self.min_epochs
        return max(1, self.epochs // self.reduction_factor**2)

    def rungs(self, epochs: int | None = None) -> tuple[int, ...]:
        """The epochs where the pruner judges a trial: first_rung * factor^k, below ``epochs``."""
        epochs = self.epochs if epochs is None else epochs
        out, rung = [], self.first_rung
        while rung < epochs:
            out.append(rung)
            rung *= self.reduction_factor
        return tuple(out)

    def cycles(self, epochs: int | None = None) -> tuple[int, ...]:
        """Where a cosine schedule restarts: at the pruner's rungs, so trials are judged annealed.

        Only successive halving and Hyperband judge at fixed rungs; with other pruners a
        cosine schedule is one decay over all epochs.
        """
        if (
            self.pruner not in ("successive-halving", "hyperband")
            or self.multi_objective
            or self.cv
        ):
            return ()
        return self.rungs(epochs)

    @property
    def confirms(self) -> bool:
        """Whether the best configurations are re-run once the search is done."""
        return self.confirm_top > 0 and not self.multi_objective

    def space(self) -> SearchSpace:
        """The search space: the modules' parameters with the overrides applied, validated."""
        params = []
        for module in self.search_space:
            params.extend(search_spaces.load(module))
        names = {p.name for p in params}
        unknown = set(self.overrides) - names
        if unknown:
            raise ConfigError(
                f"overrides name parameter(s) {', '.join(sorted(map(shown, unknown)))} that no "
                f"module of the search space defines ({', '.join(sorted(names))})"
            )
        params = [
            override(p, self.overrides[p.name]) if p.name in self.overrides else p for p in params
        ]
        space = SearchSpace(params)
        for param in space:
            models.check_param_name(self.model, param.name)
            _check_domain(param)
        return space

    def validate(self) -> SearchSpace:
        """Check everything that can be checked without data; return the space."""
        space = self.space()
        if self.sampler == "grid":
            space.grid()
        side = {"digits": 8, "mnist": 28, "svhn": 32}.get(self.dataset)
        if side is not None:
            self._check_depth(space, side)
        return space

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        """Check the space against the loaded data's image size (for datasets of any size)."""
        self._check_depth(self.space(), min(input_shape[0], input_shape[1]))

    def _check_depth(self, space: SearchSpace, side: int) -> None:
        if self.model != "cnn" or "conv_blocks" not in space:
            return
        blocks = max(space["conv_blocks"].values() or [0])
        if 2**blocks > side:
            raise ConfigError(
                f"the search space allows {blocks} conv blocks, but a {side}x{side} image supports "
                f"at most {side.bit_length() - 1}: narrow conv_blocks in the overrides"
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["search_space"] = list(self.search_space)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "study config") -> "StudyConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
        data = dict(data)
        base = data.pop("extends", None)
        if base is not None:
            if not isinstance(base, str):
                raise ConfigError(f"{where}: extends must name a built-in study, got {shown(base)}")
            data = {**builtin(base).to_dict(), **data}
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"allowed: extends, {', '.join(sorted(allowed))}"
            )
        missing = {"name", "dataset", "model", "search_space"} - set(data)
        if missing:
            raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
        space = data["search_space"]
        if isinstance(space, str) or not isinstance(space, (list, tuple)):
            raise ConfigError(f"{where}: search_space must be a list of module names")
        data["search_space"] = tuple(space)
        if isinstance(data.get("val_fraction"), int):
            data["val_fraction"] = float(data["val_fraction"])
        overrides = data.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                f"{where}: overrides must be a mapping of parameter name to value or "
                f"range, got {shown(overrides)}"
            )
        data["overrides"] = dict(overrides)
        try:
            return cls(**data)
        except HpoError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def with_options(self, **options: Any) -> "StudyConfig":
        """A copy with command-line options applied (None means "not given")."""
        given = {k: v for k, v in options.items() if v is not None}
        return replace(self, **given) if given else self


def _check_domain(param: Param) -> None:
    """Refuse a parameter that allows a value no model can use (it would fail in every trial)."""
    edges = param.choices if isinstance(param, CategoricalParam) else (param.low, param.high)
    for value in edges:
        problem = models.domain_error(param.name, value)
        if problem:
            raise ConfigError(
                f"{problem}, but the search space allows {shown(value)}: "
                "change that module or the study's overrides"
            )


def _check_choice(what: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"unknown {what} {shown(value)}: use one of {', '.join(allowed)}")


def _check_int(what: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{what} must be an integer {bound}, got {shown(value)}")


#: A modern small-CNN recipe: augmentation, VGG-style blocks, a cosine schedule, weight decay,
#: label smoothing, and the head, beside the notebooks' own dimensions.
_CNN_SPACE = (
    "augmentation",
    "filters",
    "convs_per_block",
    "kernel_size",
    "activation",
    "batch_norm",
    "conv_dropout",
    "head",
    "dense_units",
    "dropout",
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "label_smoothing",
    "batch_size",
)
_ANN_SPACE = (
    "augmentation",
    "dense_units",
    "activation",
    "batch_norm",
    "dropout",
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "label_smoothing",
    "batch_size",
)
#: Epochs are the budget: successive halving judges trials at rungs of 4, 12 and 36 epochs
#: (the first rung follows --epochs: the largest r with r * 3^2 <= epochs).
_BUDGET = dict(epochs=36, reduction_factor=3, early_stopping=0, pruner="successive-halving")
#: SVHN on 2 cores: an epoch of 33,600 images takes about a minute for the recipe's CNN, so the
#: search trains on a stratified 8,000-image subset for up to 18 epochs (rungs at 2 and 6) and
#: is scored on the whole validation split (8,400 images: one image is 0.012 points, so a single
#: run is not luck and confirmation is left to `hpo confirm`). The retrain uses all the data.
_SVHN_BUDGET = dict(
    epochs=18,
    reduction_factor=3,
    early_stopping=0,
    pruner="successive-halving",
    train_subset=8000,
    trials=24,
    confirm_top=0,
)

BUILTIN: dict[str, StudyConfig] = {
    c.name: c
    for c in (
        StudyConfig(
            name="digits-cnn",
            dataset="digits",
            model="cnn",
            search_space=_CNN_SPACE,
            overrides={"dense_layers": 1, "batch_size": [32, 64, 128]},
            trials=24,
            confirm_top=3,
            **_BUDGET,
            description="CNN on scikit-learn's bundled 8x8 digits (the embedded default; no download)",
        ),
        StudyConfig(
            name="digits-ann",
            dataset="digits",
            model="ann",
            search_space=_ANN_SPACE,
            trials=24,
            confirm_top=3,
            **_BUDGET,
            description="Dense network on the bundled 8x8 digits",
        ),
        StudyConfig(
            name="svhn-cnn",
            dataset="svhn",
            data="SVHN_single_grey1.h5",
            model="cnn",
            search_space=_CNN_SPACE,
            overrides={"dense_layers": 1},
            **_SVHN_BUDGET,
            description="CNN on SVHN street-view digits, 32x32 grey (the notebooks' KerasTuner space)",
        ),
        StudyConfig(
            name="svhn-ann",
            dataset="svhn",
            data="SVHN_single_grey1.h5",
            model="ann",
            search_space=_ANN_SPACE,
            **_SVHN_BUDGET,
            description="Dense network on SVHN street-view digits",
        ),
        StudyConfig(
            name="mnist-cnn",
            dataset="mnist",
            data="mnist.npz",
            model="cnn",
            search_space=(
                "filters",
                "kernel_size",
                "dropout",
                "learning_rate",
                "batch_size",
                "optimizer",
            ),
            epochs=5,
            trials=30,
            description="3-conv CNN on MNIST (the course report's one-at-a-time dimensions)",
        ),
    )
}


def builtin(name: str) -> StudyConfig:
    if not isinstance(name, str) or name not in BUILTIN:
        raise ConfigError(
            f"unknown study {shown(name)}: built-in studies are {', '.join(BUILTIN)}; "
            "or describe your own with --config study.yaml"
        )
    return BUILTIN[name]


def load_yaml(path: str | Path) -> StudyConfig:
    """Read a YAML study file (a safe loader: no objects, only data)."""
    from hpo import yaml_file

    config = StudyConfig.from_dict(yaml_file.load(path, "study file"), where=str(path))
    try:
        config.validate()  # now, so that an error names the file
    except HpoError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config
