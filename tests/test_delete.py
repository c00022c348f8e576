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
from runner import error_line, file_digest, hpo_env, run_main
from test_export import GOOD_PARAMS, make_study, trial

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
