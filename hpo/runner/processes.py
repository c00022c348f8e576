"""Worker processes as the launcher sees them: start, forward their messages, signal, stop.

The exit statuses here are the contract between a launch and its workers.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from hpo.training.tf_quiet import is_chatter

FATAL_EXIT = 3  # a worker's status when its trials keep failing: replacing it would not help
RECYCLE_EXIT = 4  # a worker ran its --max-trials and stopped to free its memory: start a fresh one
#: A launched worker's status when its work is done. Not 0: a user's code that ends the process
#: (sys.exit, os._exit) exits 0 too, and must not be taken for a worker that finished.
DONE_EXIT = 5

#: Python code that runs ``hpo`` as ``python -P -m hpo`` does, for Pythons without ``-P`` (3.10):
#: the working folder ('') is taken off sys.path before anything is imported from it.
_SAFE_START = (
    "import sys; sys.path = [p for p in sys.path if p]; "
    "import runpy; runpy.run_module('hpo', run_name='__main__')"
)


def hpo_command(*args: str, safe_flag: bool | None = None) -> list[str]:
    """The command that runs ``hpo ARGS`` in a new Python process (a launch's workers).

    ``python -m hpo`` would put the working folder first on sys.path, where a user's file named
    ``hpo.py`` (a model function's file, say) would be run instead of hpo. Python's ``-P``
    (3.11+, or ``safe_flag``) leaves it off; ``hpo/__main__.py`` then searches it last, so
    the user's own modules named by dotted path still import.
    """
    if safe_flag is None:
        safe_flag = sys.version_info >= (3, 11)
    if safe_flag:
        return [sys.executable, "-P", "-m", "hpo", *args]
    return [sys.executable, "-c", _SAFE_START, *args]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 15  # seconds workers get to fail their trial and exit after a stop signal


class StopSignals:
    """Records SIGINT/SIGTERM as the exit status (130/143) a process stops with."""

    def __init__(self):
        self.code: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            self._old[sig] = signal.signal(sig, self._handler(code))
        return self

    def _handler(self, code: int):
        def handle(signum, frame):
            self.on_signal(code)

        return handle

    def on_signal(self, code: int) -> None:
        """The first signal decides the exit status."""
        if self.code is None:
            self.code = code

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class WorkerSignals(StopSignals):
    """SIGINT/SIGTERM stop a worker (or a retrain) cleanly.

    The handler only raises a flag on ``target`` (``stop_requested``). Training
    checks it after every batch and stops with KeyboardInterrupt, which fails that
    trial (and queues its parameters again); between trials the loop starts no
    other. Raising from the handler itself is not safe: it can land in a
    garbage-collection callback, where Python prints and swallows it.
    """

    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_signal(self, code: int) -> None:
        super().on_signal(code)
        self.target.stop_requested = True


def start_process(command: list[str], env: dict[str, str], out, stdout=None) -> subprocess.Popen:
    """Start a worker process whose stderr is copied to ``out`` (a stream or a Progress)."""
    proc = subprocess.Popen(
        command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    threading.Thread(target=_forward_stderr, args=(proc, out), daemon=True).start()
    return proc


def _forward_stderr(proc: subprocess.Popen, out) -> None:
    """Copy a worker's stderr to ``out``, minus TensorFlow's start-up chatter."""
    for line in proc.stderr:
        if not is_chatter(line):
            out.write(line)
            out.flush()


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the live processes, wait for them, and kill any that outlast the grace period."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
