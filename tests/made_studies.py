"""Studies and configurations the tests make, and how they read a store back (shared helpers)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from hpo.backends.optuna.backend import create_study
from hpo.config.studies import builtin
from hpo.storage import store
from hpo.storage.store import sqlite_lock
from hpo.study.records import distribution

SMALL_CNN = """\
format: hpo-config/1
configs:
- name: small-cnn
  dataset: {name: digits}
  architecture:
    family: cnn
    conv_blocks: [{filters: [32]}, {filters: [64]}]
    dense_layers: [{units: 64}]
  training: {optimizer: adam, learning_rate: 0.002, batch_size: 32, epochs: 15, seed: 3}
"""

#: A small CNN that reaches about 0.97 test accuracy on digits in 15 epochs (about 3 s).
GOOD_PARAMS = {
    "conv_blocks": 2,
    "filters_1": 32,
    "filters_2": 64,
    "kernel_size": 3,
    "activation": "relu",
    "batch_norm": False,
    "dropout": 0.0,
    "dense_layers": 1,
    "dense_units_1": 64,
    "learning_rate": 0.002,
    "batch_size": 32,
}
VERSIONS = {"python": "3.11.7", "keras": "3.0.0"}


def trial(
    params: dict[str, Any],
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    **attrs: Any,
) -> dict[str, Any]:
    base = {
        "val_accuracy": value,
        "train_accuracy": 0.99,
        "epochs": 10,
        "best_epoch": 8,
        "train_seconds": 2.5,
        "n_params": 35_914,
        "inference_ms": 0.1,
        "seed": 0,
        "worker": "test:1",
        "versions": VERSIONS,
    }
    return {
        "params": params,
        "value": value,
        "state": state,
        "attrs": {**base, **attrs} if value is not None else {},
    }


def make_study(
    tmp_path: Path, trials: list[dict[str, Any]], name: str = "digits-cnn", **options: Any
) -> str:
    """A study as ``hpo launch`` creates it (config attribute and all) holding ``trials``."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = store.open_storage(url, create=True, heartbeat=False)
    config = builtin("digits-cnn").with_options(name=name, **options)
    study = create_study(config, storage)
    space = config.space()
    for t in trials:
        study.add_trial(
            optuna.trial.create_trial(
                params=t["params"],
                distributions={k: distribution(space[k]) for k in t["params"]},
                value=t["value"],
                state=t["state"],
                user_attrs=t["attrs"],
            )
        )
    storage.engine.dispose()
    return url


def other_params(**changes: Any) -> dict[str, Any]:
    return {**GOOD_PARAMS, **changes}


def load(tmp_path: Path, name: str = "digits-cnn") -> optuna.Study:
    """The study as `hpo status` reads it: under the store's lock while a launch creates it."""
    db = tmp_path / "studies.db"
    with sqlite_lock(db) if Path(f"{db}.lock").exists() else contextlib.nullcontext():
        return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def by_state(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def wait_for_running(
    tmp_path: Path, count: int, name: str = "digits-cnn", timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (tmp_path / "studies.db").exists():
            try:
                if by_state(load(tmp_path, name)).get("RUNNING", 0) >= count:
                    return
            except (KeyError, SQLAlchemyError, optuna.exceptions.StorageInternalError):
                pass  # the launch is still creating the store
        time.sleep(0.3)
    raise AssertionError("no trial started running in time")
