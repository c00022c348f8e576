"""Run the real ``hpo`` command in a subprocess, as a user would (shared by the CLI tests)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

#: Launch options for tests of the plumbing (workers, stores, faults) rather than the search: every
#: trial runs its epochs and the trial count is exactly --trials, with no confirmation re-runs.
PLAIN = ("--pruner", "none", "--confirm-top", "0")

#: The study of the plumbing tests that launch many trials, where a trial's network matters only
#: by what it costs: digits-cnn with the network fixed small (8,714 parameters, no augmentation;
#: dropout and the learning rate searched) and a 2-epoch retrain. A 3-epoch trial trains in
#: about 1.7 s, against 4 s and more for the recipe's networks; its retrain in seconds.
TINY = "digits-tiny"
_TINY_STUDY = f"""\
name: {TINY}
extends: digits-cnn
overrides: {{translate: 0, rotate: 0, zoom: 0, conv_blocks: 1, filters_1: 16, convs_per_block: 1,
  kernel_size: 3, batch_norm: false, conv_dropout: 0, head: flatten, dense_layers: 1,
  dense_units_1: 32, batch_size: 64, lr_schedule: constant, warmup_epochs: 0,
  label_smoothing: 0, activation: relu}}
retrain_epochs: 2
"""


def tiny_study(directory: Path) -> tuple[str, str]:
    """The ``--config`` option of :data:`TINY`, its file written into ``directory`` (the
    test's working directory: the option names it relative to there)."""
    (directory / "tiny.yaml").write_text(_TINY_STUDY)
    return ("--config", "tiny.yaml")


def hpo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}
    env.update({"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}, **extra)
    return env


def run_hpo(
    *args: str,
    cwd: Path,
    timeout: float = 300,
    env: dict | None = None,
    user: list[str] | tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """``hpo ARGS`` in a new process; ``user`` prefixes a command that switches user (setpriv)."""
    return subprocess.run(
        [*user, sys.executable, "-m", "hpo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or hpo_env(),
        check=False,  # callers assert on the return code and stderr themselves
    )


def start_hpo(
    *args: str, cwd: Path, env: dict | None = None, new_session: bool = False
) -> subprocess.Popen:
    """Start ``hpo`` in the background.

    ``new_session`` gives it its own process group, as a shell does.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or hpo_env(),
        start_new_session=new_session,
    )


def file_digest(path: Path) -> str | None:
    """Content hash of a store file (None when it does not exist), to prove it is unchanged."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``Error:`` line a failed command must print, and nothing else on stderr."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def stop_and_wait(proc: subprocess.Popen, sig: int, group: bool) -> str:
    """Send ``sig`` to the process, or its whole group as a terminal's Ctrl-C does; its stderr."""
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    return stderr


def assert_stopped_cleanly(proc: subprocess.Popen, code: int, stderr: str, pids: list[int]) -> None:
    """The stopped command exited with ``code``, printed no traceback and left none of ``pids``."""
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not [pid for pid in pids if alive(pid)], "processes outlived the launch"


def run_main(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``hpo`` in this process (``hpo.cli.main``, as the console script does), for the many
    commands that end before any worker or TensorFlow starts; quicker than a new interpreter."""
    import contextlib
    import io

    from hpo.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    code = 0
    try:
        sys.argv = ["hpo", *args]
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env or hpo_env())
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        _close_databases()  # as the end of a process would: no -wal or open file left
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["hpo", *args], code, out.getvalue(), err.getvalue())


def _close_databases() -> None:
    import gc

    from sqlalchemy.engine import Engine

    gc.collect()
    for thing in gc.get_objects():
        if isinstance(thing, Engine):
            thing.dispose()
