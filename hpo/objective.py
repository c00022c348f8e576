"""From a trial's parameters to its metrics: the part every backend shares.

Backends decide *what* to try; this module builds the architecture and
training settings from the parameters, trains on the search data (training
and validation arrays only; the test set is never loaded during a search) and
returns the metrics record that every trial stores as user attributes.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from hpo.config import StudyConfig
from hpo.data import Dataset
from hpo.errors import ArchitectureError, ConfigError
from hpo.models import TRAINING_DEFAULTS, architecture_from_params, check_fits
from hpo.training import EpochCallback, TrainingDiverged, TrainResult, TrainSettings, train

#: Errors that fail one trial and let the search go on.
TRIAL_ERRORS = (TrainingDiverged, ArchitectureError)


def worker_id() -> str:
    """``host:pid``, the name trials record for the process that ran them."""
    return f"{socket.gethostname()}:{os.getpid()}"


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the packages that decide a trial's result (provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("hpo", "tensorflow-cpu", "tensorflow", "keras", "optuna", "keras-tuner", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def settings_for(config: StudyConfig, params: Mapping[str, Any], seed: int) -> TrainSettings:
    """Training settings: the trial's parameters, else the study's, else the defaults."""
    merged = {**TRAINING_DEFAULTS, **params}
    return TrainSettings(
        epochs=int(params.get("epochs", config.epochs)),
        batch_size=int(merged["batch_size"]),
        optimizer=str(merged["optimizer"]),
        learning_rate=float(merged["learning_rate"]),
        early_stopping=config.early_stopping,
        seed=seed,
    )


@dataclass
class SearchData:
    """What a worker trains on: its dataset's training and validation arrays, loaded once."""

    dataset: Dataset
    x_train: Any
    y_train: Any

    @classmethod
    def prepare(cls, dataset: Dataset, config: StudyConfig) -> "SearchData":
        if dataset.x_test is not None:
            raise ConfigError("search data must be loaded without the test set")
        x, y = dataset.x_train, dataset.y_train
        if config.train_subset and config.train_subset < len(x):
            from sklearn.model_selection import train_test_split

            x, _, y, _ = train_test_split(
                x, y, train_size=config.train_subset, stratify=y, random_state=config.seed
            )
        return cls(dataset=dataset, x_train=x, y_train=y)


def evaluate(
    config: StudyConfig,
    data: SearchData,
    params: Mapping[str, Any],
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train one configuration; return the result and its metrics record."""
    arch = architecture_from_params(config.model, params)
    check_fits(arch, data.dataset.input_shape)
    settings = settings_for(config, params, seed)
    result = train(
        arch, settings, data.x_train, data.y_train, data.dataset.x_val, data.dataset.y_val,
        on_epoch=on_epoch,
    )
    record = {
        "val_accuracy": result.val_accuracy,
        "train_accuracy": result.train_accuracy,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 3),
        "n_params": result.n_params,
        "inference_ms": round(result.inference_ms, 5),
        "seed": seed,
    }
    return result, record
