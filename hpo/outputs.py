"""Files hpo writes for the user (exports, reports, retrain results, KerasTuner state).

A command that ends by writing a file checks first that it can: the folder
exists, and a file can really be created there (a probe, since a read-only
mount or an immutable flag stops even root), so a mistake costs a second, not
the training before it. Files are written whole (a temporary file renamed into
place), so an interrupted write never leaves half a file. Every failure is one
:class:`~hpo.errors.NotWritableError` that names the path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hpo.errors import NotWritableError


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """Check that the ``what`` (e.g. "export file") can be written at ``path``; return it."""
    path = Path(path)
    if path.is_dir():
        raise NotWritableError(f"cannot write the {what} {path}: it is a directory; name a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise NotWritableError(
            f"cannot write the {what} {path}: directory {folder} does not exist; create it first"
        )
    if not folder.is_dir():
        raise NotWritableError(f"cannot write the {what} {path}: {folder} is not a directory")
    _probe(folder, what, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise NotWritableError(f"cannot write the {what} {path}: the file is read-only")
    return path


def check_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Check that the ``what`` (e.g. "output directory") can hold files; nothing is created yet.

    A folder that does not exist yet needs its nearest existing parent to be writable.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise NotWritableError(
            f"cannot use the {what} {path}: {existing} is a file, not a directory"
        )
    _probe(existing, what, path)
    return path


def write_text(path: str | os.PathLike[str], text: str, what: str) -> Path:
    """Write ``text`` to ``path`` whole: a temporary file beside it, renamed into place."""
    path = check_file(path, what)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NotWritableError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    return path


def _probe(folder: Path, what: str, target: Path) -> None:
    try:
        handle, name = tempfile.mkstemp(prefix=".hpo-write-check-", dir=folder)
    except OSError as exc:
        raise NotWritableError(
            f"cannot write the {what} {target}: directory {folder} is not writable "
            f"({exc.strerror or exc})"
        ) from None
    os.close(handle)
    os.unlink(name)
