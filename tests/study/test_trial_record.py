"""A trial's record: the user attributes it stores are the stored format, pinned here by name."""

from __future__ import annotations

import dataclasses

import pytest
from made_studies import GOOD_PARAMS, VERSIONS, trial

from hpo.config.choices import OBJECTIVES
from hpo.study import trial_record
from hpo.study.trial_record import OBJECTIVE_METRICS, TrialRecord

#: A complete trial's user attributes, as hpo stores them (the stored format).
STORED = trial(GOOD_PARAMS, 0.97)["attrs"]
RECORD = TrialRecord(
    val_accuracy=0.97,
    train_accuracy=0.99,
    epochs=10,
    best_epoch=8,
    train_seconds=2.5,
    n_params=35_914,
    inference_ms=0.1,
    seed=0,
)


def test_the_stored_keys_are_those_existing_studies_hold() -> None:
    optional = {"cv_scores", "cv_std", "val_history", "model_sha256", "keras_backend"}
    assert set(trial_record.KEYS) == set(STORED) - {"worker"} | optional
    constants = {
        name: value
        for name, value in vars(trial_record).items()
        if name.isupper() and isinstance(value, str)
    }
    assert sorted(constants.values()) == sorted(trial_record.KEYS)  # each key named once


def test_a_stored_trial_reads_back_as_its_record_and_writes_the_same_attributes() -> None:
    record = TrialRecord.from_attrs(STORED)  # the worker's name and others are not metrics
    assert record == dataclasses.replace(RECORD, versions=VERSIONS)
    assert record.to_attrs() == {k: v for k, v in STORED.items() if k != "worker"}


def test_a_record_stores_only_the_optional_metrics_it_has() -> None:
    assert set(RECORD.to_attrs()) == set(STORED) - {"worker", "versions"}
    cv = dataclasses.replace(RECORD, cv_scores=(0.9, 1.0), cv_std=0.05)
    attrs = cv.to_attrs()
    assert (attrs["cv_scores"], attrs["cv_std"]) == ([0.9, 1.0], 0.05)  # JSON: a list
    assert "model_sha256" not in attrs and "val_history" not in attrs
    full = dataclasses.replace(cv, val_history=(0.5, 0.97), model_sha256="ab" * 32)
    assert TrialRecord.from_attrs(full.to_attrs()) == full


@pytest.mark.parametrize(
    "attrs",
    [{}, {"error": "diverged"}, {k: v for k, v in RECORD.to_attrs().items() if k != "n_params"}],
    ids=["queued", "failed", "a metric missing"],
)
def test_attributes_without_a_complete_training_hold_no_record(attrs) -> None:
    assert TrialRecord.from_attrs(attrs) is None


def test_each_objective_reports_its_metric_in_the_study_s_order() -> None:
    assert RECORD.objective_values(["accuracy"]) == [0.97]
    assert RECORD.objective_values(["accuracy", "params"]) == [0.97, 35_914.0]
    assert RECORD.objective_values(["accuracy", "latency"]) == [0.97, 0.1]
    named = {name for choice in OBJECTIVES for name in choice.split(",")}
    assert named == set(OBJECTIVE_METRICS)  # every --objective names a metric, and no more
    assert {m.key for m in OBJECTIVE_METRICS.values()} <= set(trial_record.KEYS)
