"""The launch's watch over its workers, with real processes and a real SQLite study."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpo.io.progress import Progress
from hpo.runner.processes import DONE_EXIT
from hpo.runner.supervise import supervise

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _watch(tmp_path: Path, status: int) -> tuple[int, list[str], int]:
    """Supervise one worker slot whose processes all exit with ``status``: the exit code, what
    was said, and how many processes were started."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    started = []

    def start(slot: int) -> subprocess.Popen:
        started.append(slot)
        return subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({status})"])

    said: list[str] = []
    progress = Progress(3, "s", stream=io.StringIO())
    code = supervise([], start, study, progress, said.append, workers=1, restarts_allowed=2)
    return code, said, len(started)


def test_a_worker_that_exits_0_is_not_taken_for_one_that_finished(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A model function's os._exit(0) (or a user's hpo.py run in a worker's place) ended the
    launch with status 0 after 0 of its trials: exit 0 was read as "done"."""
    code, said, started = _watch(tmp_path, 0)
    assert code == 1 and started == 3  # replaced twice, then the launch stops
    assert said[-1].startswith("Error: worker processes keep failing")
    assert capfd.readouterr().err.count("ended with status 0 before its work was done") == 2


def test_a_worker_that_says_it_is_done_ends_the_launch(tmp_path: Path) -> None:
    code, said, started = _watch(tmp_path, DONE_EXIT)
    assert (code, started) == (0, 1) and not [s for s in said if s.startswith("Error")]


def test_a_trial_completed_without_hpo_s_record_gets_a_line_not_a_crash() -> None:
    """A plain Optuna client may complete a trial of the study without n_params: the launch
    watching the study said nothing of it and raised on formatting '?' with ':,'."""
    from hpo.runner.supervise import new_results

    bare = optuna.trial.create_trial(value=0.9)
    recorded = optuna.trial.create_trial(value=0.95, user_attrs={"n_params": 12_345})
    first, second = new_results([bare, recorded])
    assert "complete: val_accuracy 0.9000, size unknown" in first
    assert "complete: val_accuracy 0.9500, 12,345 params" in second
