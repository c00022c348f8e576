"""``hpo delete``: the documented way out for a study that cannot go on. It asks first."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from hpo_command import PLAIN, error_line, file_digest, hpo_env, run_main, start_hpo
from made_studies import GOOD_PARAMS, make_study, trial

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _names(tmp_path: Path) -> list[str]:
    return optuna.get_all_study_names(f"sqlite:///{tmp_path / 'studies.db'}")


def test_delete_with_yes_removes_the_study_and_its_keras_tuner_state(tmp_path):
    make_study(tmp_path, [trial(GOOD_PARAMS, 0.97)])
    make_study(tmp_path, [], name="other")
    state = tmp_path / "kt" / "digits-cnn"
    state.mkdir(parents=True)
    (state / "oracle.json").write_text("{}")
    result = run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Deleted study 'digits-cnn' (1 complete)" in result.stdout
    assert "its KerasTuner state kt/digits-cnn/" in result.stdout
    assert _names(tmp_path) == ["other"] and not state.exists()
    again = run_main("create", "--study", "digits-cnn", cwd=tmp_path)  # the name is free again
    assert again.returncode == 0, again.stderr


def test_delete_without_a_terminal_asks_for_yes_and_changes_nothing(tmp_path):
    make_study(tmp_path, [trial(GOOD_PARAMS, 0.97)])
    before = file_digest(tmp_path / "studies.db")
    result = run_main("delete", "--study", "digits-cnn", cwd=tmp_path)
    assert result.returncode == 2
    assert "hpo delete asks before it deletes study 'digits-cnn'" in error_line(result)
    assert "pass --yes" in error_line(result)
    assert file_digest(tmp_path / "studies.db") == before


def _answer(tmp_path: Path, answer: str) -> str:
    """Run `hpo delete` on a terminal (a pseudo-terminal) and answer its question."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "delete", "--study", "digits-cnn"],
        cwd=tmp_path,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=hpo_env(),
        close_fds=True,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    while b"[y/N]" not in shown and time.monotonic() < deadline:
        shown += os.read(leader, 1024)
    os.write(leader, f"{answer}\n".encode())
    proc.wait(timeout=60)
    try:
        while True:
            chunk = os.read(leader, 1024)
            if not chunk:
                break
            shown += chunk
    except OSError:
        pass
    os.close(leader)
    assert proc.returncode == 0, shown
    return shown.decode()


def test_delete_asks_on_a_terminal(tmp_path):
    make_study(tmp_path, [trial(GOOD_PARAMS, 0.97)])
    before = file_digest(tmp_path / "studies.db")
    kept = _answer(tmp_path, "n")
    assert "Delete study 'digits-cnn' (1 complete) from sqlite:///studies.db? [y/N]" in kept
    assert "Nothing deleted." in kept
    assert file_digest(tmp_path / "studies.db") == before
    gone = _answer(tmp_path, "y")
    assert "Deleted study 'digits-cnn'" in gone and _names(tmp_path) == []


def test_delete_refuses_a_study_whose_workers_are_running(tmp_path):
    url = make_study(tmp_path, [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=120)
        study = optuna.load_study(study_name="digits-cnn", storage=storage)
        running = study.ask()  # a live worker's trial: its heartbeat is fresh
    storage.record_heartbeat(running._trial_id)
    running.set_user_attr("worker", "host:4242")
    storage.engine.dispose()
    before = file_digest(tmp_path / "studies.db")
    result = run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path)
    assert result.returncode == 2
    assert "has 1 trial(s) running in live workers (host:4242): stop them first" in error_line(
        result
    )
    assert file_digest(tmp_path / "studies.db") == before


def test_delete_of_an_unknown_study(tmp_path):
    make_study(tmp_path, [])
    result = run_main("delete", "--study", "nope", "--yes", cwd=tmp_path)
    assert result.returncode == 2 and "no study named 'nope'" in error_line(result)


def test_delete_refuses_a_study_a_live_launch_runs_before_any_trial(tmp_path):
    """It was accepted while the launch's workers started: the launch then said "damaged"."""
    from hpo.study.records import LAUNCH_GRACE, LIVE_LAUNCH_ATTR, mark_live_launch

    url = make_study(tmp_path, [])
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    assert mark_live_launch(study, "host:4242")  # what a launch does as its workers start
    study._storage._backend.engine.dispose()  # as a launch's own process would hold it
    before = file_digest(tmp_path / "studies.db")
    result = run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path)
    assert result.returncode == 2
    assert error_line(result).startswith(
        "Error: study 'digits-cnn' is being run by a launch (host:4242, seen 0 s ago): stop it "
        "first (Ctrl-C the launch), then delete it"
    )
    assert file_digest(tmp_path / "studies.db") == before
    killed = {"by": "host:4242", "at": time.time() - LAUNCH_GRACE - 1}  # its marks stopped
    study.set_user_attr(LIVE_LAUNCH_ATTR, killed)
    result = run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _names(tmp_path) == []
    assert not mark_live_launch(study, "host:4242")  # a deleted study cannot be marked


def test_a_study_deleted_under_a_command_is_not_called_damaged(tmp_path):
    """Optuna's "Record does not exist" for a study deleted meanwhile said "restore a backup"."""
    from hpo.storage.store import store_failure

    url = make_study(tmp_path, [])
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    optuna.delete_study(study_name="digits-cnn", storage=url)
    try:
        study.set_user_attr("x", 1)
    except KeyError as exc:
        failure = store_failure(exc)
    assert failure is not None and "damaged" not in str(failure)
    assert "no longer holds the study (or trial) this command was using: another process " in str(
        failure
    )


@pytest.mark.slow
def test_a_launch_refuses_delete_and_says_when_its_study_was_deleted(tmp_path):
    """Before any trial: `hpo delete` is refused; a study deleted by another program is named."""
    proc = start_hpo(
        "launch", "--trials", "2", "--workers", "1", "--epochs", "1", *PLAIN, cwd=tmp_path
    )
    seen = ""
    deadline = time.monotonic() + 120
    while "Starting" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    assert "Starting 1 worker(s)" in seen, seen
    refused = run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path)
    assert refused.returncode == 2
    assert "is being run by a launch" in error_line(refused)
    optuna.delete_study(study_name="digits-cnn", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 1, seen + rest
    assert (
        "Error: study 'digits-cnn' was deleted from sqlite:///studies.db while this launch ran"
    ) in rest
    assert "damaged" not in rest and "Traceback" not in rest
