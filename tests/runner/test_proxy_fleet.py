"""Workers through ``hpo proxy``, end to end: real worker processes, a real proxy process, real
SQLite and PostgreSQL stores behind it, real kills."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from databases import postgres_database
from hpo_command import PLAIN, TINY, children, hpo_env, run_hpo, start_hpo, tiny_study
from optuna.trial import TrialState
from proxies import fast_heartbeats, running_proxy

from hpo.study.records import STALE_REASON

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _states(url: str, name: str = "digits-cnn") -> dict[str, int]:
    study = optuna.load_study(study_name=name, storage=url)
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _running_trial_of(url: str, pid: int):
    worker = f"{socket.gethostname()}:{pid}"
    try:
        study = optuna.load_study(study_name="digits-cnn", storage=url)
    except KeyError:  # a launch has not created it yet
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker") == worker and t.params:
            return t
    return None


def _wait_for_running_trial(url: str, pids: Callable[[], list[int]], timeout: float = 120):
    """(pid, its RUNNING trial) of the first of ``pids()`` seen running one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in pids():
            found = _running_trial_of(url, pid)
            if found is not None:
                return pid, found
        time.sleep(0.3)
    raise AssertionError("no trial started running in time")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.mark.slow
def test_two_workers_through_the_proxy_finish_the_study(tmp_path: Path, database: str) -> None:
    created = run_hpo(
        "create",
        *tiny_study(tmp_path),
        "--trials",
        "4",
        "--epochs",
        "2",
        *PLAIN,
        "--storage",
        database,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    with running_proxy(database, tmp_path) as (url, _):
        env = hpo_env(HPO_STORAGE=url)  # as a user on another machine would
        workers = [start_hpo("worker", "--study", TINY, cwd=tmp_path, env=env)]
        workers.append(start_hpo("worker", "--study", TINY, cwd=tmp_path, env=env))
        for proc in workers:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
        status = run_hpo("status", "--study", TINY, "--storage", url, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "Trials: 4 complete" in status.stdout
    assert _states(database, TINY) == {"COMPLETE": 4}  # exactly the total: the lock held through it
    study = optuna.load_study(study_name=TINY, storage=database)
    ran = {t.user_attrs["worker"] for t in study.trials}
    assert ran <= {f"{socket.gethostname()}:{p.pid}" for p in workers}


@pytest.mark.slow
def test_a_killed_worker_on_the_proxy_does_not_leave_its_trial_running(tmp_path: Path) -> None:
    """Nobody but the proxy is left to notice: it reaps the trial by its stopped heartbeat."""
    database = f"sqlite:///{tmp_path / 'studies.db'}"
    env = fast_heartbeats()
    created = run_hpo(
        "create", "--trials", "2", "--epochs", "40", *PLAIN, "--storage", database,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with running_proxy(database, tmp_path, env) as (url, proxy):
        lone = start_hpo("worker", "--study", "digits-cnn", "--storage", url, cwd=tmp_path, env=env)
        try:
            _, killed = _wait_for_running_trial(database, lambda: [lone.pid])
            lone.kill()
            lone.wait()
        finally:
            if lone.poll() is None:
                lone.kill()
        deadline = time.monotonic() + 30
        while _states(database).get("RUNNING"):
            assert time.monotonic() < deadline, "the killed worker's trial stayed RUNNING"
            time.sleep(0.5)
        status = run_hpo("status", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert "1 fail" in status.stdout and "Running:" not in status.stdout, status.stdout
    study = optuna.load_study(study_name="digits-cnn", storage=database)
    failed = study.trials[killed.number]
    assert failed.state == TrialState.FAIL and failed.system_attrs["fail_reason"] == STALE_REASON
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING
    assert retry[0].params == failed.params
    assert "Marked 1 trial(s) of stopped workers as FAIL" in proxy.stdout.read()


@pytest.mark.slow
def test_a_launch_through_the_proxy_reaps_its_own_killed_worker(tmp_path: Path) -> None:
    with postgres_database() as database, running_proxy(database, tmp_path) as (url, _):
        proc = start_hpo(
            "launch", "--workers", "2", "--trials", "3", "--epochs", "25", *PLAIN,
            "--storage", url, cwd=tmp_path,
        )  # fmt: skip
        try:
            victim, killed = _wait_for_running_trial(database, lambda: children(proc.pid))
            os.kill(victim, signal.SIGKILL)
            _, stderr = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stderr
        assert "replacement started" in stderr and "Traceback" not in stderr
        assert _states(database) == {"COMPLETE": 3, "FAIL": 1}
        study = optuna.load_study(study_name="digits-cnn", storage=database)
        failed = study.trials[killed.number]
        assert failed.user_attrs["error"] == "worker stopped"  # the launch's own, at once
        retried = [t for t in study.trials if t.user_attrs.get("requeued_from") == killed.number]
        assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE


@pytest.mark.slow
def test_a_worker_whose_proxy_is_lost_stops_in_one_line_and_its_trial_is_reaped_later(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'studies.db'}"
    env = fast_heartbeats()
    created = run_hpo(
        "create", "--trials", "2", "--epochs", "40", *PLAIN, "--storage", database,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with running_proxy(database, tmp_path, env) as (url, proxy):
        lone = start_hpo("worker", "--study", "digits-cnn", "--storage", url, cwd=tmp_path, env=env)
        try:
            _, cut = _wait_for_running_trial(database, lambda: [lone.pid])
            proxy.kill()  # lost: no goodbye, its port closed
            _, err = lone.communicate(timeout=300)
        finally:
            if lone.poll() is None:
                lone.kill()
    assert lone.returncode == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines[-1].startswith(f"Error: no hpo proxy answers at {url}"), err
    assert "Traceback" not in err
    assert _states(database)["RUNNING"] == 1  # nobody can tell yet
    with running_proxy(database, tmp_path, env):  # a proxy again: it reaps the trial
        deadline = time.monotonic() + 30
        while _states(database).get("RUNNING"):
            assert time.monotonic() < deadline, "the cut trial stayed RUNNING"
            time.sleep(0.5)
    study = optuna.load_study(study_name="digits-cnn", storage=database)
    assert study.trials[cut.number].system_attrs["fail_reason"] == STALE_REASON
