"""Files hpo writes for the user (exports, reports, retrain results, KerasTuner state).

A command that ends by writing a file checks first that it can: the folder
exists, and a file can really be created there (a probe, since a read-only
mount or an immutable flag stops even root), so a mistake costs a second, not
the training before it. Files are written whole (a temporary file renamed into
place), so an interrupted write never leaves half a file. Every failure is one
:class:`~hpo.errors.NotWritableError` that names the path.

What the path names decides how it is written, as a shell's ``>`` would: a
symbolic link is followed and the file it names is replaced (created when the
link dangles); a character device (``/dev/null``, a terminal) or a FIFO is
written to as a stream, never replaced by a regular file; a block device or a
socket is refused.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from hpo.errors import NotWritableError


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """Check that the ``what`` (e.g. "export file") can be written at ``path``; return it."""
    path = Path(path)
    mode = _mode(path, what)
    if mode is not None and _streamed(mode):
        if not os.access(path, os.W_OK):
            raise NotWritableError(f"cannot write the {what} {path}: permission denied")
        return path
    target = _target(path)
    shown = _shown(path, target)
    if mode is not None and stat.S_ISDIR(mode):
        raise NotWritableError(f"cannot write the {what} {shown}: it is a directory; name a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise NotWritableError(
            f"cannot write the {what} {shown}: it is a {_kind(mode)}, not a file; name a file"
        )
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise NotWritableError(
            f"cannot write the {what} {shown}: directory {folder} does not exist; create it first"
        )
    if not folder.is_dir():
        raise NotWritableError(f"cannot write the {what} {shown}: {folder} is not a directory")
    _probe(folder, what, shown)
    if mode is not None and not os.access(target, os.W_OK):
        raise NotWritableError(f"cannot write the {what} {shown}: the file is read-only")
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
    """Write ``text`` to ``path`` whole: a temporary file beside it, renamed into place.

    A device or a FIFO is written to as it is (nothing can be renamed over it); a
    symbolic link keeps pointing where it did, at the file now written.
    """
    path = check_file(path, what)
    mode = _mode(path, what)
    if mode is not None and _streamed(mode):
        try:
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(text)
        except OSError as exc:
            raise NotWritableError(
                f"cannot write the {what} {path}: {exc.strerror or exc}"
            ) from None
        return path
    target = _target(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if mode is not None:  # the file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NotWritableError(
            f"cannot write the {what} {_shown(path, target)}: {exc.strerror or exc}"
        ) from None
    return path


def _mode(path: Path, what: str) -> int | None:
    """The mode of what ``path`` names, links followed; None when nothing is there yet."""
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None  # a new file, or a link to one
    except NotADirectoryError:
        return None  # under a file: the folder check says so
    except OSError as exc:  # a link that loops, a name too long, a folder that cannot be searched
        raise NotWritableError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None


def _streamed(mode: int) -> bool:
    """Whether a path of this mode is written as a stream: a character device or a FIFO."""
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _kind(mode: int) -> str:
    if stat.S_ISBLK(mode):
        return "block device"  # a disk: never written over by an export
    return "socket" if stat.S_ISSOCK(mode) else "special file"


def _target(path: Path) -> Path:
    """The file ``path`` names: itself, or where its symbolic links lead (relative if it was)."""
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if path.is_absolute():
        return target
    try:
        return target.relative_to(Path.cwd().resolve())
    except ValueError:
        return target


def _shown(path: Path, target: Path) -> str:
    return str(path) if path == target else f"{path} (a link to {target})"


def _probe(folder: Path, what: str, target: Path | str) -> None:
    try:
        handle, name = tempfile.mkstemp(prefix=".hpo-write-check-", dir=folder)
    except OSError as exc:
        raise NotWritableError(
            f"cannot write the {what} {target}: directory {folder} is not writable "
            f"({exc.strerror or exc})"
        ) from None
    os.close(handle)
    os.unlink(name)
