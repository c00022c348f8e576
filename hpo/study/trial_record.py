"""A trial's record: the metrics a complete trial stores as Optuna user attributes, named once.

Every training a search runs ends in a :class:`TrialRecord`; the trial stores it as user
attributes under the keys below, and the export, the report, ``hpo status`` and the
rankings read those keys back. The keys are the stored format: existing studies hold them,
so they never change. Which metric each objective of ``--objective`` optimizes, and in which
direction, is :data:`OBJECTIVE_METRICS`. This module imports nothing of hpo's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple


def config_name(study: str, trial: int) -> str:
    """What an exported or retrained trial is called: its folder, its files' prefix."""
    return f"{study}-trial-{trial}"


VAL_ACCURACY = "val_accuracy"  # the validation accuracy (with --cv: the mean over the folds)
TRAIN_ACCURACY = "train_accuracy"  # the training accuracy at the same epoch
EPOCHS = "epochs"  # the epochs run (early stopping may end a trial before its budget)
BEST_EPOCH = "best_epoch"  # 1-based, the epoch of the highest validation accuracy
TRAIN_SECONDS = "train_seconds"
N_PARAMS = "n_params"  # the network's parameter count
INFERENCE_MS = "inference_ms"  # milliseconds per image, batch prediction
SEED = "seed"  # the trial's training seed
CV_SCORES = "cv_scores"  # with --cv: each fold's validation accuracy
CV_STD = "cv_std"  # with --cv: their standard deviation
VAL_HISTORY = "val_history"  # the validated epochs' accuracies (several objectives or --cv)
MODEL_FILE = "model_sha256"  # a model function's file (sha256) as it built the trial's network
VERSIONS = "versions"  # the versions of the packages that decided the result (provenance)
KERAS_BACKEND = "keras_backend"  # the Keras backend that trained it: tensorflow, jax or torch


class ObjectiveMetric(NamedTuple):
    """What one objective of ``--objective`` optimizes."""

    key: str  # the metric's key in the trial record
    label: str  # its name in the dashboard (the study's metric names)
    direction: str  # "maximize" or "minimize"


#: For each objective: the metric it optimizes, its label and its direction.
OBJECTIVE_METRICS = {
    "accuracy": ObjectiveMetric(VAL_ACCURACY, "validation accuracy", "maximize"),
    "params": ObjectiveMetric(N_PARAMS, "parameters", "minimize"),
    "latency": ObjectiveMetric(INFERENCE_MS, "inference ms per image", "minimize"),
}


@dataclass(frozen=True)
class TrialRecord:
    """The metrics of one complete training, as a trial stores them (:meth:`to_attrs`): each
    field under the key of its name (the constants above)."""

    val_accuracy: float
    train_accuracy: float
    epochs: int
    best_epoch: int | None
    train_seconds: float
    n_params: int
    inference_ms: float
    seed: int
    cv_scores: tuple[float, ...] | None = None
    cv_std: float | None = None
    val_history: tuple[float, ...] | None = None
    model_sha256: str | None = None
    versions: Mapping[str, str] | None = None
    keras_backend: str | None = None

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes the trial stores: every metric, the optional ones when set."""
        attrs: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue  # an optional metric this training has not
            attrs[f.name] = list(value) if isinstance(value, tuple) else value
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord | None:
        """The record a trial's user attributes hold; None where they hold no complete
        training's (a failed, pruned or queued trial, an ``hpo sweep`` run, a trial written
        outside hpo)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in attrs:
                if f.default is not None:  # a metric every complete training has
                    return None
                continue
            value = attrs[f.name]
            values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def objective_values(self, objectives: Iterable[str]) -> list[float]:
        """The values the trial reports, in the order of the study's ``objectives``."""
        return [float(getattr(self, OBJECTIVE_METRICS[name].key)) for name in objectives]


#: The keys a record stores: its fields are named for them (VAL_ACCURACY, ..., VERSIONS).
KEYS = tuple(f.name for f in fields(TrialRecord))
