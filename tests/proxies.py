"""A real ``hpo proxy`` process on a free port, for the tests of stores behind it (a helper)."""

from __future__ import annotations

import contextlib
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from hpo_command import hpo_env, start_hpo

_LISTENING = re.compile(r"listening on \S+:(\d+); workers join with: .* --storage (grpc://\S+)")


def wait_for_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The first line ``proc`` prints on stdout (its stderr if it ends without one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            raise AssertionError(f"hpo proxy ended ({proc.returncode}): {proc.stderr.read()}")
    raise AssertionError("hpo proxy printed nothing in time")


@contextlib.contextmanager
def running_proxy(
    storage: str, cwd: Path, env: dict[str, str] | None = None, *args: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``hpo proxy --storage STORAGE --port 0`` until the block ends (then Ctrl-C, exit 130):
    its ``grpc://`` URL, as it printed it, and its process."""
    proc = start_hpo("proxy", "--storage", storage, "--port", "0", *args, cwd=cwd, env=env)
    try:
        line = wait_for_line(proc)
        found = _LISTENING.search(line)
        assert found, line
        yield found[2], proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fast_heartbeats(**extra: str) -> dict[str, str]:
    """An environment whose heartbeats come every second and go stale after 3 (4 in CI's load)."""
    return hpo_env(HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="4", **extra)
