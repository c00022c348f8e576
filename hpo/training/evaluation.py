"""From a trial's parameters to its metrics: the part every backend shares.

Backends decide *what* to try; this module builds the architecture and
training settings from the parameters, trains on the search data (training
and validation arrays only; the test set is never loaded during a search) and
returns the metrics record that every trial stores as user attributes
(:class:`hpo.study.trial_record.TrialRecord`).
"""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from hpo.config.studies import StudyConfig
from hpo.data import Dataset, load_dataset
from hpo.errors import ArchitectureError, ConfigError
from hpo.models.families import (
    Architecture,
    architecture_from_params,
    check_fits,
    count_params,
)
from hpo.models.user import TrialModel, load_function
from hpo.study.records import ARCH_ATTR
from hpo.study.trial_record import TrialRecord
from hpo.training.fit import EpochCallback, TrainingDiverged, TrainResult, train
from hpo.training.settings import TrainSettings

#: Errors that fail one trial and let the search go on (a user's function failing included).
TRIAL_ERRORS = (TrainingDiverged, ArchitectureError)


class Infeasible(Exception):
    """The configuration breaks a constraint (``--max-params``): rejected before any training."""


def trial_architecture(
    config: StudyConfig, params: Mapping[str, Any], user_attrs: Mapping[str, Any]
) -> Architecture:
    """The architecture a trial trained: its fixed one (warm start), else built from its params."""
    if ARCH_ATTR in user_attrs:
        return Architecture.from_dict(user_attrs[ARCH_ATTR])
    return architecture_from_params(config.model, params)


def trial_model(
    config: StudyConfig, params: Mapping[str, Any], n_classes: int = 10
) -> Architecture | TrialModel:
    """What a trial trains: hpo's network from its params, or the user's function's model."""
    if config.own_model:
        return TrialModel(load_function(config.model), dict(params), n_classes)
    return architecture_from_params(config.model, params)


def worker_id() -> str:
    """``host:pid``, the name trials record for the process that ran them."""
    return f"{socket.gethostname()}:{os.getpid()}"


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the packages that decide a trial's result (provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in (
        "hpo",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "jax",
        "jaxlib",
        "torch",
        "optuna",
        "keras-tuner",
        "numpy",
    ):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


def settings_for(
    config: StudyConfig,
    params: Mapping[str, Any],
    seed: int,
    training: Mapping[str, Any] | None = None,
) -> TrainSettings:
    """Training settings: the trial's parameters, else the study's, else the defaults."""
    merged = {**(training or {}), **params}
    epochs = int(params.get("epochs", config.epochs))
    cosine = merged.get("lr_schedule") == "cosine"
    return TrainSettings.from_values(
        merged,
        epochs=epochs,
        early_stopping=config.early_stopping,
        seed=seed,
        cycles=config.cycles(epochs) if cosine else (),
    )


def search_dataset(config: StudyConfig, data: str | None = None) -> Dataset:
    """The study's search data: training and validation only (a search never loads the test
    set), split as the study splits it; ``data`` replaces the study's file path."""
    return load_dataset(
        config.dataset,
        data or config.data,
        include_test=False,
        val_fraction=config.val_fraction,
        seed=config.seed,
        color_mode=config.color_mode,
        image_size=config.image_size,
    )


@dataclass
class SearchData:
    """What a worker trains on: its dataset's training and validation arrays, loaded once.

    Trials train on ``x_subset``/``y_subset``: the study's stratified ``train_subset`` of the
    training images (all of them without one), not ``dataset.x_train``.
    """

    dataset: Dataset
    x_subset: Any
    y_subset: Any

    @classmethod
    def prepare(cls, dataset: Dataset, config: StudyConfig) -> SearchData:
        if dataset.x_test is not None:
            raise ConfigError("search data must be loaded without the test set")
        x, y = dataset.x_train, dataset.y_train
        if config.train_subset and config.train_subset < len(x):
            from sklearn.model_selection import train_test_split

            try:
                x, _, y, _ = train_test_split(
                    x, y, train_size=config.train_subset, stratify=y, random_state=config.seed
                )
            except ValueError as exc:
                raise ConfigError(
                    f"train_subset {config.train_subset}: no stratified subset of the "
                    f"{len(y):,} training images ({exc})"
                ) from None
        if config.cv:  # checked here, before a study exists, not in every trial
            sizes = np.bincount(np.concatenate([y, dataset.y_val]))
            smallest = int(sizes[sizes > 0].min())
            if config.cv > smallest:
                raise ConfigError(
                    f"--cv {config.cv}: the smallest class of the search data (train + validation) "
                    f"has {smallest} images, so at most {smallest} stratified folds can be made: "
                    f"use --cv {smallest} or less"
                )
        return cls(dataset=dataset, x_subset=x, y_subset=y)


def evaluate(
    config: StudyConfig,
    data: SearchData,
    params: Mapping[str, Any],
    seed: int,
    on_epoch: EpochCallback | None = None,
    arch: Architecture | TrialModel | None = None,
    should_stop: Callable[[], bool] | None = None,
    training: Mapping[str, Any] | None = None,
) -> tuple[TrainResult, TrialRecord]:
    """Train one configuration; return the result and its metrics record.

    The parameter count is known before training, so a model over
    ``config.max_params`` raises :class:`Infeasible` without spending any time.
    ``should_stop`` is polled after every batch; when it says so, training raises
    KeyboardInterrupt (the worker was asked to stop).
    With ``config.cv`` the record holds the mean validation accuracy over k
    stratified folds of train + validation, and each fold's score.
    """
    n_classes = data.dataset.n_classes
    arch = arch or trial_model(config, params, n_classes)
    input_shape = data.dataset.input_shape
    if isinstance(arch, Architecture):
        check_fits(arch, input_shape)
        n_params = count_params(arch, input_shape, n_classes)
    else:
        n_params = arch.count_params(input_shape)
    if config.max_params is not None and n_params > config.max_params:
        raise Infeasible(f"{n_params:,} parameters is over --max-params {config.max_params:,}")
    settings = settings_for(config, params, seed, training)
    if config.cv:
        result, folds = _cross_validate(config, data, arch, settings, should_stop)
    else:
        result, folds = (
            train(
                arch,
                settings,
                data.x_subset,
                data.y_subset,
                data.dataset.x_val,
                data.dataset.y_val,
                on_epoch=on_epoch,
                should_stop=should_stop,
                n_classes=n_classes,
                validate_at=config.validated_epochs(settings.epochs),
            ),
            None,
        )
    record = TrialRecord(
        val_accuracy=result.val_accuracy,
        train_accuracy=result.train_accuracy,
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        train_seconds=round(result.train_seconds, 3),
        n_params=result.n_params,
        inference_ms=round(result.inference_ms, 5),
        seed=seed,
        cv_scores=None if folds is None else tuple(folds),
        cv_std=None if folds is None else float(np.std(folds)),
        # the model function's file as it built this network
        model_sha256=(arch.function.sha256 or None) if isinstance(arch, TrialModel) else None,
    )
    return result, record


def _cross_validate(
    config: StudyConfig,
    data: SearchData,
    arch: Architecture | TrialModel,
    settings: TrainSettings,
    should_stop: Callable[[], bool] | None,
) -> tuple[TrainResult, list[float]]:
    """k-fold cross-validation on train + validation merged; the result averages the folds."""
    from sklearn.model_selection import StratifiedKFold

    x = np.concatenate([data.x_subset, data.dataset.x_val])
    y = np.concatenate([data.y_subset, data.dataset.y_val])
    folds = StratifiedKFold(n_splits=config.cv, shuffle=True, random_state=config.seed)
    results = []
    for fit_idx, val_idx in folds.split(x, y):
        results.append(
            train(
                arch,
                settings,
                x[fit_idx],
                y[fit_idx],
                x[val_idx],
                y[val_idx],
                should_stop=should_stop,
                n_classes=data.dataset.n_classes,
                validate_at=(settings.epochs,),  # a fold is scored once, at its end
            )
        )
    scores = [r.val_accuracy for r in results]
    last = results[-1]
    last.val_accuracy = float(np.mean(scores))
    last.train_accuracy = float(np.mean([r.train_accuracy for r in results]))
    last.train_seconds = float(sum(r.train_seconds for r in results))
    last.epochs = round(float(np.mean([r.epochs for r in results])))
    return last, scores
