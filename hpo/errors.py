"""The errors ``hpo`` raises on purpose, and the one place that turns them into a line.

Every :class:`HpoError` is a user error: the CLI prints :func:`error_line` of it
(one ``Error: ...`` line, bounded in length) and exits with status 2. The
message says what was wrong and how to fix it. Each cause has its own class, so
callers and tests can tell them apart. Anything else that escapes is a bug.
"""

from __future__ import annotations

import reprlib
from typing import Any


class HpoError(Exception):
    """A user error: bad input, a missing file, an unknown name."""

    exit_code = 2


class UsageError(HpoError):
    """The command line itself is wrong: an unknown option, a missing or malformed value."""


class DataError(HpoError):
    """A dataset file is missing, unreadable or malformed."""


class DataMismatchError(DataError):
    """The data given is not the data a study was created on (its sha256 differs)."""


class SpaceError(HpoError):
    """A search space or one of its parameters is invalid."""


class ConfigError(HpoError):
    """A study configuration, YAML file or command-line combination is invalid."""


class LimitError(ConfigError):
    """An input is over what hpo reads: a file too large, nested too deeply, too many values."""


class StorageError(HpoError):
    """A storage URL is malformed or its database cannot be reached."""


class DamagedStoreError(StorageError):
    """The study store is reachable, but its content is damaged or not an Optuna store."""


class StudyNotFoundError(HpoError):
    """The named study does not exist in the store."""


class ArchitectureError(HpoError):
    """A model architecture cannot be built (for example, pooling below 1x1)."""


class ModelFunctionError(ArchitectureError):
    """A user's model function (``model: file.py:build``) is missing, fails or returns no model.

    Before a study exists it is a user error (one line, exit 2); in a trial it fails that trial
    and the search goes on.
    """


class NotWritableError(HpoError):
    """A file or folder hpo has to write (the store, an output) is read-only, missing or full."""


#: The longest error line printed; a longer message keeps its start and its end (the advice).
MAX_LINE = 600

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable size: how a message echoes a value the user gave."""
    return _REPR.repr(value)


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """The message on one line (white space folded), at most ``limit`` characters."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    cut = len(text) - limit + 40
    head = (limit - 40) * 2 // 3
    return f"{text[:head]} ... ({cut:,} characters left out) ... {text[head + cut :]}"


def error_line(error: BaseException | str) -> str:
    """``Error: <message>``, as every command prints a user error (one line)."""
    return f"Error: {one_line(str(error)) or type(error).__name__}"
