"""The errors ``hpo`` raises on purpose.

Every :class:`HpoError` is a user error: the CLI prints its message as one line
and exits with status 2. The message says what was wrong and how to fix it.
Anything else that escapes is a bug.
"""

from __future__ import annotations


class HpoError(Exception):
    """A user error: bad input, a missing file, an unknown name."""

    exit_code = 2


class DataError(HpoError):
    """A dataset file is missing, unreadable or malformed."""


class SpaceError(HpoError):
    """A search space or one of its parameters is invalid."""


class ConfigError(HpoError):
    """A study configuration, YAML file or command-line combination is invalid."""


class StorageError(HpoError):
    """A storage URL is malformed or its database cannot be reached."""


class StudyNotFoundError(HpoError):
    """The named study does not exist in the store."""


class ArchitectureError(HpoError):
    """A model architecture cannot be built (for example, pooling below 1x1)."""
