"""The training settings are listed once (hpo/training/settings.py); every other place follows."""

from __future__ import annotations

import dataclasses

import pytest

from hpo.config.studies import builtin
from hpo.errors import ConfigError
from hpo.models.families import DOMAINS, known_params
from hpo.schemas.hpo_config import Training
from hpo.study.sweep import apply_change, baseline_run
from hpo.training.settings import (
    TRAINING_DEFAULTS,
    TRAINING_DOMAINS,
    TRAINING_KEYS,
    Recipe,
    TrainSettings,
)


def test_the_file_format_the_domains_and_the_names_follow_the_one_list() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Training)}
    assert set(TRAINING_KEYS) <= set(fields)
    assert {k: fields[k] for k in TRAINING_DEFAULTS} == TRAINING_DEFAULTS
    assert set(fields) - set(TRAINING_KEYS) == {"cycles", "best_epoch", "seed"}
    assert set(TRAINING_DOMAINS) == set(TRAINING_KEYS)
    assert all(DOMAINS[k] is TRAINING_DOMAINS[k] for k in TRAINING_KEYS)
    assert set(TRAINING_KEYS) <= set(known_params("cnn")) & set(known_params("ann"))
    run_fields = {f.name for f in dataclasses.fields(TrainSettings)}
    assert run_fields - {f.name for f in dataclasses.fields(Recipe)} == {
        "epochs",
        "early_stopping",
        "seed",
        "cycles",
    }


def test_values_are_typed_as_their_defaults_and_missing_ones_default() -> None:
    settings = TrainSettings.from_values(
        {"batch_size": 32.0, "label_smoothing": 0, "lr_schedule": "cosine", "epochs": 99},
        epochs=5,
    )
    assert settings.batch_size == 32 and isinstance(settings.batch_size, int)
    assert settings.label_smoothing == 0.0 and isinstance(settings.label_smoothing, float)
    assert settings.lr_schedule == "cosine" and settings.epochs == 5
    assert settings.optimizer == TRAINING_DEFAULTS["optimizer"]
    assert settings.recipe() == {**TRAINING_DEFAULTS, "batch_size": 32, "lr_schedule": "cosine"}


def test_a_training_block_round_trips_every_setting() -> None:
    recipe = {
        "optimizer": "adamw",
        "learning_rate": 0.003,
        "batch_size": 128,
        "lr_schedule": "cosine",
        "warmup_epochs": 2,
        "weight_decay": 5e-4,
        "label_smoothing": 0.1,
    }
    training = Training(epochs=12, **recipe, seed=4)
    assert training.settings_dict() == {**recipe, "epochs": 12}
    assert training.settings(seed=9).recipe() == recipe
    assert training.settings(seed=9).seed == 9


def test_a_sweep_keeps_and_varies_every_training_setting(tmp_path) -> None:
    """A sweep's baseline from an exported YAML kept only optimizer, rate, batch size and
    epochs: the schedule, warm-up, weight decay and label smoothing were dropped."""
    (tmp_path / "best.yaml").write_text(
        "format: hpo-config/1\n"
        "configs:\n"
        "- name: tuned\n"
        "  dataset: {name: digits}\n"
        "  architecture: {family: cnn, conv_blocks: [{filters: [8]}], dense_layers: []}\n"
        "  training: {epochs: 6, optimizer: adamw, lr_schedule: cosine, warmup_epochs: 1,\n"
        "             weight_decay: 0.001, label_smoothing: 0.1}\n"
    )
    base, _ = baseline_run(str(tmp_path / "best.yaml"))
    assert base.training["lr_schedule"] == "cosine"
    assert base.training["weight_decay"] == 0.001
    assert base.training["label_smoothing"] == 0.1
    assert base.training["warmup_epochs"] == 1
    assert apply_change(base, "weight_decay=0.01").training["weight_decay"] == 0.01
    assert apply_change(base, "warmup_epochs=x2").training["warmup_epochs"] == 2
    with pytest.raises(ConfigError, match="label_smoothing' must be a number from 0 to below 1"):
        apply_change(base, "label_smoothing=2")
    with pytest.raises(ConfigError, match="lr_schedule' must be one of constant, cosine"):
        apply_change(base, "lr_schedule=step")


def test_a_space_that_allows_an_impossible_training_setting_is_refused() -> None:
    config = builtin("digits-cnn").with_options(
        overrides={"label_smoothing": {"low": 0.0, "high": 1.5}}
    )
    with pytest.raises(ConfigError, match="label_smoothing"):
        config.checked_space()
