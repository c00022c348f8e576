"""``hpo launch`` / ``hpo worker`` end to end: real worker processes on a real SQLite store."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from runner import (
    PLAIN,
    assert_stopped_cleanly,
    children,
    error_line,
    file_digest,
    run_hpo,
    start_hpo,
    stop_and_wait,
)
from sqlalchemy.exc import SQLAlchemyError

from hpo.storage import sqlite_lock

optuna.logging.set_verbosity(optuna.logging.WARNING)


def load(tmp_path: Path, name: str = "digits-cnn") -> optuna.Study:
    """The study, read as `hpo status` reads it: under the store's lock while a launch creates it."""
    db = tmp_path / "studies.db"
    with sqlite_lock(db) if Path(f"{db}.lock").exists() else contextlib.nullcontext():
        return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def by_state(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.mark.slow
def test_two_workers_reach_the_trial_total_then_resume_adds_nothing(tmp_path):
    result = run_hpo("launch", "--study", "digits-cnn", "--workers", "2", "--trials", "6", "--epochs", "3", *PLAIN,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = load(tmp_path)  # plain Optuna reads the store
    assert by_state(study) == {"COMPLETE": 6}
    trials = study.get_trials()
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers
    # the two processes ran at the same time: some trials of different workers overlap
    overlaps = [
        (a.number, b.number) for a in trials for b in trials
        if a.user_attrs["worker"] != b.user_attrs["worker"]
        and a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
    ]
    assert overlaps
    for t in trials:
        for key in ("val_accuracy", "train_accuracy", "epochs", "train_seconds", "n_params",
                    "inference_ms", "worker", "seed", "versions"):
            assert key in t.user_attrs, key
        assert t.value == t.user_attrs["val_accuracy"]
        assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
    assert study.metric_names == ["validation accuracy"]
    assert "Best: trial" in result.stdout and "hpo status --study digits-cnn" in result.stdout

    again = run_hpo("launch", "--study", "digits-cnn", "--workers", "2", "--trials", "6", "--epochs", "3", *PLAIN,
                    cwd=tmp_path)
    assert again.returncode == 0 and "nothing to run" in again.stderr
    assert by_state(load(tmp_path)) == {"COMPLETE": 6}

    more = run_hpo("launch", "--study", "digits-cnn", "--workers", "2", "--trials", "8", "--epochs", "3", *PLAIN,
                   cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert by_state(load(tmp_path)) == {"COMPLETE": 8}

    status = run_hpo("status", "--study", "digits-cnn", cwd=tmp_path)
    assert status.returncode == 0 and "8 complete" in status.stdout and "Best: trial" in status.stdout
    studies = run_hpo("studies", cwd=tmp_path)
    assert "digits-cnn" in studies.stdout and " 8 " in studies.stdout


@pytest.mark.slow
def test_a_worker_joins_an_existing_study(tmp_path):
    assert run_hpo("launch", "--workers", "1", "--trials", "1", "--epochs", "2", *PLAIN,
                   cwd=tmp_path).returncode == 0
    joined = run_hpo("worker", "--study", "digits-cnn", "--trials", "3", "--storage", "sqlite:///studies.db",
                     cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    study = load(tmp_path)
    assert by_state(study) == {"COMPLETE": 3}
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def _wait_for_running(tmp_path: Path, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (tmp_path / "studies.db").exists():
            try:
                if by_state(load(tmp_path)).get("RUNNING", 0) >= count:
                    return
            except (KeyError, SQLAlchemyError, optuna.exceptions.StorageInternalError):
                pass  # the launch is still creating the store
        time.sleep(0.3)
    raise AssertionError("no trial started running in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, group", [
    (signal.SIGINT, 130, False),
    (signal.SIGTERM, 143, False),
    (signal.SIGINT, 130, True),  # Ctrl-C in a terminal signals the launcher and its workers at once
], ids=["sigint", "sigterm", "ctrl-c-group"])
def test_a_stop_signal_leaves_no_running_trial_and_no_orphan_then_resumes(tmp_path, sig, code, group):
    proc = start_hpo("launch", "--workers", "2", "--trials", "40", "--epochs", "30", *PLAIN,
                     cwd=tmp_path, new_session=group)
    try:
        _wait_for_running(tmp_path, 2)
        workers = children(proc.pid)
        assert len(workers) == 2
        stderr = stop_and_wait(proc, sig, group)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_stopped_cleanly(proc, code, stderr, workers)
    study = load(tmp_path)
    states = by_state(study)
    assert "RUNNING" not in states, states
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted and all("interrupted" in t.user_attrs.get("error", "") or
                               t.user_attrs.get("error") == "worker stopped" for t in interrupted)
    assert states.get("WAITING", 0) == len(interrupted)  # their parameters are queued again

    finished_before = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    target = finished_before + len(interrupted)
    resumed = run_hpo("launch", "--workers", "2", "--trials", str(target), "--epochs", "30", *PLAIN,
                      cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = load(tmp_path)
    states = by_state(after)
    assert states.get("COMPLETE", 0) == target and "RUNNING" not in states and "WAITING" not in states
    retried = {tuple(sorted(t.params.items())) for t in after.trials if t.state == TrialState.COMPLETE}
    assert all(tuple(sorted(t.params.items())) in retried for t in interrupted if t.params)


def _study_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "unknown study": (["launch", "--study", "cifar-cnn"], "unknown study 'cifar-cnn'"),
    "zero workers": (["launch", "--workers", "0"], "--workers must be at least 1"),
    "malformed storage": (["launch", "--storage", "postgres//nohost"], "malformed storage URL"),
    "unsupported storage": (["launch", "--storage", "redis://localhost/0"], "unsupported storage"),
    "unreachable storage": (["launch", "--storage", "postgresql://u:hunter2@127.0.0.1:1/db"], "cannot open study store"),
    "missing svhn file": (["launch", "--study", "svhn-cnn", "--data", "missing.h5"], "the digits-cnn study runs without"),
    "bad yaml": (["launch", "--config", "{study}"], "not valid YAML"),
    "impossible space": (["launch", "--config", "{impossible}"], "must be below high"),
    "missing config": (["launch", "--config", "nope.yaml"], "no such study file"),
    "unknown study status": (["status", "--study", "nope"], "no study named 'nope'"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_the_store_is_unchanged(tmp_path, case):
    # an existing store with one study, to prove it is left exactly as it was
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    optuna.create_study(study_name="keep-me", storage=storage)
    storage.engine.dispose()
    before = file_digest(tmp_path / "studies.db")
    files = {
        "study": _study_file(tmp_path, "name: [unclosed\n"),
        "impossible": str(tmp_path / "imp.yaml"),
    }
    (tmp_path / "imp.yaml").write_text(
        "name: imp\ndataset: digits\nmodel: cnn\nsearch_space: [filters]\n"
        "overrides:\n  filters_1: {low: 64, high: 16}\n")
    args, message = BAD_INPUTS[case]
    result = run_hpo(*[a.format(**files) for a in args], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert message in line
    assert "hunter2" not in result.stderr + result.stdout
    assert file_digest(tmp_path / "studies.db") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("studies")) == ["studies.db"]


def test_read_only_commands_do_not_create_a_store(tmp_path):
    result = run_hpo("studies", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "no study store at studies.db" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def test_models_lists_the_seed_architectures_with_their_counts(tmp_path):
    result = run_hpo("models", cwd=tmp_path, timeout=60)
    assert result.returncode == 0
    for name, count in [("svhn-ann-1", "68,010"), ("svhn-ann-2", "310,250"), ("svhn-cnn-1", "267,306"),
                        ("svhn-cnn-2", "164,362"), ("mnist-cnn-3conv", "241,546"), ("digits-cnn-uci", "102,794")]:
        assert any(name in line and count in line for line in result.stdout.splitlines()), name
