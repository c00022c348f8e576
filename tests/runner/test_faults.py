"""Faults leave the store whole and no trial RUNNING: killed workers, crashes, NaN losses, load."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from hpo_command import (
    PLAIN,
    TINY,
    children,
    hpo_env,
    run_hpo,
    start_hpo,
    stop_and_wait,
    tiny_study,
)
from made_studies import by_state, load, wait_for_running
from optuna.trial import TrialState

from hpo.study.records import STALE_REASON, failure_reason

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _running_trial_of(study: optuna.Study, pid: int) -> optuna.trial.FrozenTrial | None:
    worker = f"{socket.gethostname()}:{pid}"
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker") == worker and t.params:
            return t
    return None


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_trial_retried(tmp_path):
    proc = start_hpo(
        "launch", "--workers", "2", "--trials", "4", "--epochs", "25", *PLAIN, cwd=tmp_path
    )
    try:
        wait_for_running(tmp_path, 2)
        victim, killed = None, None
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline:
            for pid in children(proc.pid):
                killed = _running_trial_of(load(tmp_path), pid)
                if killed is not None:
                    victim = pid
                    break
            time.sleep(0.2)
        assert killed is not None
        os.kill(victim, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=900)  # a ceiling: a loaded 2-core CI machine is slow
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "replacement started" in stderr
    study = load(tmp_path)
    states = by_state(study)
    assert states == {"COMPLETE": 4, "FAIL": 1}, states
    failed = study.trials[killed.number]
    assert failed.state == TrialState.FAIL and failed.user_attrs["error"] == "worker stopped"
    retried = [t for t in study.trials if t.user_attrs.get("requeued_from") == killed.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == failed.params  # all of them (the snapshot may have caught a few)


@pytest.mark.slow
def test_a_killed_standalone_worker_is_reaped_by_heartbeat_and_retried(tmp_path):
    env = hpo_env(HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="4")
    assert (
        run_hpo(
            "create", "--trials", "3", "--epochs", "25", *PLAIN, cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    lone = start_hpo("worker", "--study", "digits-cnn", cwd=tmp_path, env=env)
    try:
        wait_for_running(tmp_path, 1)
        deadline = time.monotonic() + 60
        killed = None
        while killed is None and time.monotonic() < deadline:
            killed = _running_trial_of(load(tmp_path), lone.pid)
            time.sleep(0.2)
        assert killed is not None
        lone.kill()
        lone.wait()
    finally:
        if lone.poll() is None:
            lone.kill()
    assert load(tmp_path).trials[killed.number].state == TrialState.RUNNING  # nobody knows yet
    result = run_hpo("worker", "--study", "digits-cnn", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    study = load(tmp_path)
    assert by_state(study) == {"COMPLETE": 3, "FAIL": 1}
    failed = study.trials[killed.number]
    assert failed.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert (
        len(retries) == 1
        and retries[0].params == killed.params
        and retries[0].state == TrialState.COMPLETE
    )


def _arrays_study(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    import h5py

    with h5py.File(tmp_path / "data.h5", "w") as f:
        for split, n in (("train", 200), ("test", 50)):
            f[f"X_{split}"] = rng.integers(0, 255, size=(n, 8, 8)).astype("float32")
            f[f"y_{split}"] = np.arange(n) % 10
    lines = [
        "name: arrays-study",
        "dataset: arrays",
        "data: data.h5",
        "model: cnn",
        "search_space: [learning_rate]",
        "epochs: 1",
    ]
    (tmp_path / "study.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path / "study.yaml"


@pytest.mark.slow
def test_workers_that_keep_crashing_stop_the_launch_with_a_clear_message(tmp_path):
    config = _arrays_study(tmp_path)
    proc = start_hpo(
        "launch", "--config", str(config), "--workers", "1", "--trials", "3", cwd=tmp_path
    )
    try:
        for line in proc.stderr:
            if line.startswith("Starting"):
                (tmp_path / "data.h5").unlink()  # every worker now fails to load its data
                break
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "keep failing" in stderr and "data.h5: no such file" in stderr
    assert stderr.count("replacement started") == 2
    assert "RUNNING" not in by_state(load(tmp_path, "arrays-study"))


@pytest.mark.slow
def test_a_nan_loss_fails_that_trial_and_the_search_goes_on(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(
        "name: nan-study\nextends: digits-cnn\n"
        "search_space: [activation, learning_rate, optimizer]\n"
        "overrides: {activation: elu, optimizer: sgd, "
        "learning_rate: {low: 1.0e-3, high: 1.0e+11, log: true}}\n"
        "epochs: 2\nconfirm_top: 0\ntry_defaults_first: false\n"
    )
    assert run_hpo("create", "--config", str(config), cwd=tmp_path).returncode == 0
    study = load(tmp_path, "nan-study")
    study.enqueue_trial({"learning_rate": 1.0e10})  # SGD at this rate overflows to NaN at once
    study.enqueue_trial({"learning_rate": 0.01})
    study.enqueue_trial({"learning_rate": 0.02})
    result = run_hpo(
        "launch", "--config", str(config), "--workers", "1", "--trials", "2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path, "nan-study")
    assert by_state(study) == {"FAIL": 1, "COMPLETE": 2}
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL and "loss became nan" in failed.user_attrs["error"]
    assert "trial 0 failed: the loss became nan" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_eight_workers_start_at_once_on_one_sqlite_file_without_lock_errors(tmp_path):
    result = run_hpo(
        "launch",
        *tiny_study(tmp_path),
        "--workers",
        "8",
        "--trials",
        "16",
        "--epochs",
        "1",
        *PLAIN,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "database is locked" not in result.stderr + result.stdout
    study = load(tmp_path, TINY)
    assert by_state(study) == {"COMPLETE": 16}
    assert len({t.user_attrs["worker"] for t in study.trials}) == 8


@pytest.mark.slow
def test_a_whole_process_group_killed_leaves_a_resumable_study_and_every_failure_a_reason(tmp_path):
    """After `kill -9` of a launch and its workers, the trials they ran used to show "failed:  "."""
    env = hpo_env(HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="3")
    args = ["launch", "--workers", "2", "--trials", "3", "--epochs", "8", *PLAIN]
    proc = start_hpo(*args, cwd=tmp_path, env=env, new_session=True)
    try:
        wait_for_running(tmp_path, 2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert by_state(load(tmp_path)).get("RUNNING") == 2  # nobody could say they stopped
    resumed = run_hpo(*args, cwd=tmp_path, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "failed:  " not in resumed.stderr and "failed: in" not in resumed.stderr
    study = load(tmp_path)
    states = by_state(study)
    assert "RUNNING" not in states and states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 3
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2
    # reaped by this launch's start (it says how many), or by Optuna inside a worker (each one
    # shown): a trial whose last heartbeat is still within the grace period when the launch
    # starts is reaped by a worker later, so the two ways can share the two trials
    shown = resumed.stderr.count(f"failed: {STALE_REASON}")
    marked = re.search(r"Marked (\d+) trial\(s\) of stopped workers as FAIL", resumed.stderr)
    assert (int(marked.group(1)) if marked else 0) + shown == 2, resumed.stderr
    assert all(failure_reason(t) for t in failed)
    assert not [
        t for t in study.trials if t.state != TrialState.FAIL and "fail_reason" in t.system_attrs
    ]


@pytest.mark.slow
def test_two_launches_started_together_do_not_sample_the_same_configurations(tmp_path):
    args = ["launch", "--workers", "1", "--trials", "4", "--epochs", "1", *PLAIN]
    procs = [start_hpo(*args, cwd=tmp_path) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    study = load(tmp_path)
    assert study.user_attrs["hpo_launches"] == 2
    first_of = {}
    for t in sorted(study.trials, key=lambda t: t.number):
        first_of.setdefault(t.user_attrs["worker"], t.params)
    assert len(first_of) == 2
    one, two = first_of.values()
    assert one != two  # each launch's worker draws its own stream


@pytest.mark.slow
def test_the_first_launch_of_a_study_is_reproducible(tmp_path):
    chosen = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        result = run_hpo(
            "launch",
            "--workers",
            "1",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--seed",
            "3",
            "--confirm-top",
            "0",
            cwd=tmp_path / run,
        )  # the sampler's choices only
        assert result.returncode == 0, result.stderr
        chosen.append([t.params for t in load(tmp_path / run).trials])
    assert chosen[0] == chosen[1]


@pytest.mark.slow
def test_a_stopped_retrain_keeps_its_finished_seeds_and_says_what_was_lost(tmp_path):
    from made_studies import SMALL_CNN

    (tmp_path / "small.yaml").write_text(SMALL_CNN.replace("epochs: 15", "epochs: 40"))
    proc = start_hpo("retrain", "--config", "small.yaml", "--seeds", "3", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "runs" / "results.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        stderr = stop_and_wait(proc, signal.SIGTERM, group=False)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert (
        "Interrupted: stopped while training small-cnn seed 4, which is lost; 1 finished run(s) "
        "are saved in runs/results.json."
    ) in stderr
    import json

    document = json.loads((tmp_path / "runs" / "results.json").read_text())
    assert [(r["config"], r["seed"]) for r in document["results"]] == [("small-cnn", 3)]
    assert document["summary"][0]["seeds"] == [3]
    assert (tmp_path / "runs" / "small-cnn" / "seed-3" / "model.keras").is_file()
    assert not (tmp_path / "runs" / "small-cnn" / "seed-4").exists()
