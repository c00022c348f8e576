"""The private Optuna and KerasTuner interfaces hpo relies on, checked on the installed versions.

Each is reached through one place (``hpo.storage.optuna_internals``,
``hpo.backends.keras_tuner.search``); when a release changes one, the test named for it fails here,
not a launch.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from packaging.specifiers import SpecifierSet

from hpo.storage import optuna_internals
from hpo.storage.store import open_storage, warnings_silenced


def _requirement(package: str) -> SpecifierSet:
    """The version bounds pyproject.toml declares for ``package``."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    spec = next(d for d in project["project"]["dependencies"] if d.startswith(package + ">"))
    return SpecifierSet(spec[len(package) :].split(";")[0])


def test_installed_optuna_is_within_the_tested_bounds() -> None:
    assert _requirement("optuna") == SpecifierSet(optuna_internals.TESTED_OPTUNA)
    assert version("optuna") in SpecifierSet(optuna_internals.TESTED_OPTUNA)


def test_installed_keras_tuner_is_within_the_tested_bounds() -> None:
    from hpo.backends.keras_tuner.search import TESTED_KERAS_TUNER

    assert _requirement("keras-tuner") == SpecifierSet(TESTED_KERAS_TUNER)
    assert version("keras-tuner") in SpecifierSet(TESTED_KERAS_TUNER)


def test_a_running_trial_without_heartbeats_goes_stale_and_can_be_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("HPO_GRACE_PERIOD", "2")
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", create=True)
    with warnings_silenced():
        study = optuna.create_study(study_name="s", storage=storage)
    done = study.ask()
    study.tell(done, 0.5)
    running = study.ask()
    # FrozenTrial's id is the storage's own, not the number
    frozen = {t.number: t for t in study.get_trials()}
    assert optuna_internals.trial_id(frozen[running.number]) == running._trial_id
    storage.record_heartbeat(running._trial_id)
    assert optuna_internals.stale_trial_ids(study) == []  # its heartbeat is fresh
    time.sleep(3)
    assert optuna_internals.stale_trial_ids(study) == [running._trial_id]
    optuna_internals.set_trial_system_attr(study, running._trial_id, "fail_reason", "gone")
    optuna_internals.set_trial_system_attr(study, done._trial_id, "fail_reason", "ignored")
    optuna_internals.fail_trial(study, frozen[running.number], {"error": "worker stopped"})
    failed = study.get_trials()[running.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["error"] == "worker stopped"
    assert failed.system_attrs["fail_reason"] == "gone"
    assert "fail_reason" not in study.get_trials()[done.number].system_attrs


def test_a_store_without_heartbeats_has_no_stale_trials(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", create=True, heartbeat=False)
    study = optuna.create_study(study_name="s", storage=storage)
    study.ask()
    assert optuna_internals.stale_trial_ids(study) == []


def test_keras_tuner_private_interfaces_hpo_uses_are_there() -> None:
    from hpo.backends.keras_tuner import search as kt_search

    assert isinstance(kt_search.kt_config.DEBUG, bool)
    oracle = kt_search.ORACLES["random"](
        objective=kt_search.kt.Objective("val_accuracy", "max"), max_trials=1
    )
    assert isinstance(oracle._retry_queue, list)
    assert callable(kt_search.kt.engine.base_tuner.BaseTuner)
