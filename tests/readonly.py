"""Read-only files and folders that stop root too, and commands run as an unprivileged user.

The tests run as root, for whom ``chmod`` does not stop a write. A read-only bind mount
does (writes fail with EROFS, as on a read-only disk); ``chattr +i`` is the fallback.
``setpriv`` runs a command as the user nobody, for whom permission bits apply again.
A test that needs one of these skips, saying why, only where none of them works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` (a file or a folder) read-only for every process, root included; yields how."""
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(path), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode == 0:
        try:
            yield "read-only bind mount"
        finally:  # lazily if a file is still open: a mount must never outlive the test
            unmounted = subprocess.run(["umount", str(path)], capture_output=True, check=False)
            if unmounted.returncode != 0:
                subprocess.run(["umount", "-l", str(path)], check=True)
        return
    frozen = subprocess.run(
        ["chattr", "+i", str(path)], capture_output=True, text=True, check=False
    )
    if frozen.returncode != 0:
        pytest.skip(
            f"cannot make {path} read-only for root here: mount said "
            f"{mounted.stderr.strip()!r}, chattr said {frozen.stderr.strip()!r}"
        )
    try:
        yield "chattr +i"
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def nobody_can_run() -> str | None:
    """None when commands can run as nobody here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "the tests do not run as root, so they cannot switch to another user"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import hpo"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"the user nobody cannot run this Python: {probe.stderr.strip()[-200:]}"
    return None


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary folder that the user nobody may use too (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="hpo-test-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
