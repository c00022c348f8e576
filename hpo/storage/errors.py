"""What a failure of the study store means for the user: one error line, by its cause.

The store can fail anywhere a command reads or writes it (a page damaged on
disk, a dropped table, a full disk, a server gone, a lock held too long); the
driver's message is turned here, in one place, into a :class:`~hpo.errors.HpoError`
that says what to do.
"""

from __future__ import annotations

import os
import sqlite3

from hpo.errors import (
    DamagedStoreError,
    HpoError,
    NotWritableError,
    StorageError,
    StudyNotFoundError,
)
from hpo.storage.url import mask, resolve_url, sqlite_path

SQLITE_TIMEOUT = 120  # seconds a SQLite writer waits for the lock
#: The tables of an Optuna store: a file holding some but not all of them is damaged.
OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_user_attributes",
        "study_system_attributes",
        "trials",
        "trial_params",
        "trial_values",
        "trial_intermediate_values",
        "trial_user_attributes",
        "trial_system_attributes",
        "trial_heartbeats",
        "version_info",
        "alembic_version",
    }
)


def check_tables(url: str, tables: set[str]) -> None:
    """A store holds all of Optuna's tables or none (then it is new); anything else is refused."""
    if not tables or tables >= OPTUNA_TABLES:
        return
    held = tables & OPTUNA_TABLES
    if not held:
        listed = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
        raise DamagedStoreError(
            f"{mask(url)} is a database of some other program (tables {listed}), not an Optuna "
            "study store: pass another --storage"
        )
    missing = ", ".join(sorted(OPTUNA_TABLES - tables))
    raise DamagedStoreError(
        f"the study store {mask(url)} is damaged: table(s) {missing} are missing; restore it from "
        "a backup, or move it away to start a new store"
    )


def failure(url: str, reason: str) -> HpoError:
    """The user error for a store that failed with ``reason`` (a driver's message), by cause."""
    reason = " ".join(str(reason).split()) or "no reason given"
    low = reason.lower()
    where = mask(url)
    db = sqlite_path(url) if url.startswith("sqlite") else None
    if (
        "readonly" in low
        or "read-only" in low
        or "permission denied" in low
        or "command denied" in low
        or "read only" in low
    ):
        return NotWritableError(
            f"the study store {where} refuses writes ({reason}): make it writable, or pass another "
            "--storage"
        )
    if (
        "disk is full" in low
        or "no space left" in low
        or "disk full" in low
        or "disk i/o error" in low
    ):
        return NotWritableError(
            f"the study store {where} cannot be written ({reason}): its disk "
            "is full or failing; free some space and run the same command"
        )
    if "database is locked" in low or "database table is locked" in low:
        return StorageError(
            f"the study store {where} stayed locked by another process for "
            f"{SQLITE_TIMEOUT} s ({reason}); try again when it is done"
        )
    damaged = (
        "malformed",
        "not a database",
        "no such table",
        "no such column",
        "corrupt",
        "does not exist",
        "doesn't exist",
        "stored value",
        "out of order",
        "btree",
    )
    if any(word in low for word in damaged):
        hint = (
            f"restore it from a backup; `sqlite3 {db} .recover` may save what is left, or "
            "move the file away to start a new store"
            if db
            else "restore it from a backup"
        )
        return DamagedStoreError(f"the study store {where} is damaged ({reason}): {hint}")
    if "unable to open database file" in low and db is not None:
        return StorageError(
            f"cannot open the study store {where} ({reason}): its directory {db.parent} must be "
            "writable while another process holds it open, or its -wal file holds unsaved changes"
        )
    return StorageError(f"the study store {where} failed: {reason}")


#: The last store opened in this process, named in errors met later in a command.
_opened: list[str] = []


def remember_opened(url: str) -> None:
    """Note the store a command opened, for :func:`store_failure` to name."""
    _opened[:] = [url]


def store_failure(exc: BaseException) -> HpoError | None:
    """The user error for a failure of the study store met in the middle of a command.

    The store can fail anywhere a command reads or writes it (a page damaged on
    disk, a dropped table, a full disk, a server gone): the CLI asks here, in
    one place, whether an exception is such a failure. None means it is not
    (a bug, which must show its traceback).
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, HpoError):
        return exc
    proxied = _proxy_failure(exc)
    if proxied is not None:
        return proxied
    cause = exc
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        cause = exc.__cause__
    url = _opened[-1] if _opened else resolve_url(None)
    if isinstance(cause, SQLAlchemyError):
        return failure(url, str(getattr(cause, "orig", None) or cause).splitlines()[0])
    if isinstance(cause, (sqlite3.Error, optuna.exceptions.StorageInternalError)):
        return failure(url, str(cause).splitlines()[0] if str(cause) else type(cause).__name__)
    if isinstance(exc, KeyError) and "Record does not exist" in str(exc) and _raised_in_store(exc):
        return StudyNotFoundError(  # Optuna's word for a study or trial id no longer stored
            f"the study store {mask(url)} no longer holds the study (or trial) this command was "
            "using: another process deleted it while the command ran; `hpo studies` lists what "
            "the store holds"
        )
    if isinstance(
        exc, (ValueError, UnicodeDecodeError, RuntimeError, KeyError, TypeError)
    ) and _raised_in_store(exc):
        return failure(url, f"a stored value cannot be read: {type(exc).__name__}: {exc}")
    return None


def _proxy_failure(exc: BaseException) -> HpoError | None:
    """The user error for a failed call to an ``hpo proxy`` (gone, silent, its store failing)."""
    import sys

    grpc = sys.modules.get("grpc")  # not imported: no proxy was used
    if grpc is None:
        return None
    from hpo.storage import proxy

    url = _opened[-1] if _opened else resolve_url(None)
    # the failed call itself, or the one under what it caused: Optuna's optimize loop, whose
    # record of a trial fails on a lost proxy, then fails on its own (UnboundLocalError)
    call: BaseException | None = exc
    for _ in range(4):
        if call is None or isinstance(call, grpc.RpcError):
            break
        call = call.__cause__ or call.__context__
    if not isinstance(call, grpc.RpcError) or not hasattr(call, "code"):
        return None
    if isinstance(exc, KeyError):  # the proxy's NOT_FOUND: Optuna's "no such study or trial"
        return StudyNotFoundError(
            f"the study store behind {mask(url)} no longer holds the study (or trial) this "
            "command was using: another process deleted it while the command ran; `hpo studies` "
            "lists what the store holds"
        )
    return StorageError(proxy.unreachable(url, call))


def _raised_in_store(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while Optuna's storage code was reading the database."""
    tb = exc.__traceback__
    marker = f"{os.sep}optuna{os.sep}storages{os.sep}"
    while tb is not None:
        if marker in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
