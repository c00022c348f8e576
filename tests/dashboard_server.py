"""A real ``hpo dashboard`` (or launch) process for the browser and HTTP tests, and its API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from hpo_command import hpo_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def study_names(port: int) -> list[str]:
    answer = get_json(f"http://127.0.0.1:{port}/api/studies")
    return [s["study_name"] for s in answer["study_summaries"]]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """``python -m hpo ARGS``, its output in files so that a long run never fills a pipe."""
    with open(cwd / "stdout.txt", "w") as out, open(cwd / "stderr.txt", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "hpo", *args], cwd=cwd, env=hpo_env(), stdout=out, stderr=err
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until_serving(proc: subprocess.Popen, port: int, cwd: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (cwd / "stderr.txt").read_text()
        try:
            study_names(port)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"no dashboard on port {port} after {timeout}s")
