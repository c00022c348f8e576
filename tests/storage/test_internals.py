"""The private Optuna and KerasTuner interfaces hpo relies on, checked on the installed versions.

Each is reached through one place (``hpo.storage.optuna_internals``,
``hpo.backends.keras_tuner.search``); when a release changes one, the test named for it fails here,
not a launch.
"""

from __future__ import annotations

import ast
import time
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from packaging.specifiers import SpecifierSet

from hpo.storage import optuna_internals
from hpo.storage.store import open_storage, warnings_silenced

ROOT = Path(__file__).parents[2]


def _requirement(package: str) -> SpecifierSet:
    """The version bounds pyproject.toml declares for ``package``."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
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


def test_the_private_optuna_names_the_bounded_tpe_sampler_uses_are_there() -> None:
    groups = optuna_internals.group_decomposed_search_space()
    assert isinstance(groups, type) and callable(groups.calculate)
    with warnings_silenced():
        study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert [t.number for t in optuna_internals.sampler_trials(study)] == [0, 1]
    found = groups(include_pruned=True).calculate(study)
    assert [set(space) for space in found.search_spaces] == [{"x"}]
    made = object()
    with warnings_silenced():
        grouped = optuna.samplers.TPESampler(multivariate=True, group=True)
        plain = optuna.samplers.TPESampler()
    optuna_internals.replace_tpe_groups(grouped, lambda: made)
    optuna_internals.replace_tpe_groups(plain, lambda: made)
    assert grouped._group_decomposed_search_space is made
    assert plain._group_decomposed_search_space is None  # it groups nothing: left so


def test_the_private_optuna_names_the_proxy_uses_are_there() -> None:
    """hpo.storage.proxy's client replaces the channel of Optuna's GrpcStorageProxy (in its
    ``_setup``: ``_channel``, ``_stub``, ``_cache``), and its server serves Optuna's servicer."""
    import inspect

    from optuna.storages import GrpcStorageProxy
    from optuna.storages._heartbeat import BaseHeartbeat

    from hpo.storage import proxy

    setup = inspect.getsource(GrpcStorageProxy._setup)
    assert all(f"self.{name} =" in setup for name in ("_channel", "_stub", "_cache"))
    assert callable(proxy.optuna_servicer.OptunaStorageProxyService)
    assert callable(proxy.api_pb2_grpc.add_StorageServiceServicer_to_server)
    assert callable(proxy.api_pb2_grpc.StorageServiceStub)
    assert set(BaseHeartbeat.__abstractmethods__) <= set(vars(proxy.ProxyStorage))
    assert not proxy.ProxyStorage.__abstractmethods__


#: The modules allowed to reach inside Optuna.
_INTERNALS = {
    "hpo/storage/optuna_internals.py",
    "hpo/storage/worker_writes.py",
    "hpo/storage/proxy.py",
}
#: Optuna's private attributes hpo needs (of its studies, trials, storages and samplers).
_OPTUNA_PRIVATE = {
    "_backend",
    "_cache",
    "_cached_frozen_trial",
    "_channel",
    "_get_stale_trial_ids",
    "_get_trials",
    "_group_decomposed_search_space",
    "_setup",
    "_storage",
    "_stub",
    "_study_id",
    "_trial_id",
}


def test_private_optuna_names_are_reached_only_through_the_internals_modules() -> None:
    found = []
    for path in sorted((ROOT / "hpo").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in _INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("optuna"):
                names = [*node.module.split("."), *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names if a.name.startswith("optuna")]
                names = [part for m in modules for part in m.split(".")]
            elif isinstance(node, ast.Attribute) and node.attr in _OPTUNA_PRIVATE:
                names = [node.attr]
            else:
                continue
            found += [f"{where}:{node.lineno} {n}" for n in names if n.startswith("_")]
    assert found == []
