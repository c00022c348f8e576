"""The study store: opened and checked in one place (its URL: :mod:`hpo.store_url`).

SQLite is set up for many processes at once (WAL journal, a long busy timeout,
schema creation under a file lock) so that eight workers starting together
never see "database is locked". A SQLite file is read and checked before
anything writes to it, so a damaged, foreign or read-only store is one error
line and stays as it was; a failure of the store met later in a command is
explained by :func:`store_failure`. Every worker's trials carry a heartbeat; a
trial whose worker died is failed after the grace period and its parameters are
queued again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import zlib
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, unquote

from hpo.errors import (
    DamagedStoreError,
    HpoError,
    NotWritableError,
    StorageError,
    StudyNotFoundError,
)
from hpo.store_url import (  # noqa: F401  (re-exported: callers use store.mask, store.resolve_url)
    DEFAULT_URL,
    ENV_VAR,
    mask,
    normalize_url,
    parse,
    resolve_url,
    sqlite_path,
)

HEARTBEAT_INTERVAL = 5  # seconds between a running trial's heartbeats ($HPO_HEARTBEAT_INTERVAL)
GRACE_PERIOD = 20  # seconds without a heartbeat before a trial counts as dead ($HPO_GRACE_PERIOD)
MAX_RETRY = 3  # times a dead worker's trial is queued again
#: Why a trial failed when its worker vanished (SIGKILL, a lost machine) without saying so.
STALE_REASON = "its worker stopped sending heartbeats (killed, or its machine was lost)"
_SQLITE_TIMEOUT = 120  # seconds a SQLite writer waits for the lock
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
_IMMUTABLE = "?immutable=1&uri=true"  # how a read-only SQLite store is opened

_log = logging.getLogger(__name__)


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace period) in seconds; the environment can shorten them (tests, fast LANs)."""
    try:
        interval = int(os.environ.get("HPO_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL))
        grace = int(os.environ.get("HPO_GRACE_PERIOD", GRACE_PERIOD))
    except ValueError:
        raise StorageError(
            "HPO_HEARTBEAT_INTERVAL and HPO_GRACE_PERIOD must be whole seconds"
        ) from None
    if interval < 1 or grace <= interval:
        raise StorageError(
            "need HPO_HEARTBEAT_INTERVAL >= 1 and HPO_GRACE_PERIOD > HPO_HEARTBEAT_INTERVAL"
        )
    return interval, grace


@contextlib.contextmanager
def sqlite_lock(db: Path) -> Iterator[None]:
    """An exclusive lock beside a SQLite file, for the few steps that must not interleave."""
    try:
        handle = open(f"{db}.lock", "a+")
    except OSError as exc:
        raise NotWritableError(
            f"cannot create the lock file {db}.lock beside the study store ({exc.strerror}): "
            "hpo writes the store and its lock file, so its directory must be writable"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` (a read-only mount, mode or immutable flag: no)."""
    return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))


def _sqlite_access(db: Path, create: bool, write: bool) -> tuple[bool, bool]:
    """Check that a SQLite store can be opened as the command needs: (new, read as immutable).

    A read-only store (its file or its directory) is still read, as ``immutable``:
    nobody can be writing it, and a reader that cannot write would leave -wal and
    -shm files behind, or fail to open a WAL file at all.
    """
    folder = db.parent if str(db.parent) else Path(".")
    if not db.exists():
        if not create:
            raise StorageError(
                f"no study store at {db}: run `hpo launch` first, or pass --storage URL"
            )
        if not folder.is_dir():
            raise StorageError(f"cannot create {db}: directory {folder} does not exist")
        if not _writable(folder):
            raise NotWritableError(
                f"cannot create the study store {db}: directory {folder} is read-only; run hpo "
                "where it can write, or pass --storage sqlite:////a/writable/path/studies.db"
            )
        return True, False
    if db.is_dir():
        raise StorageError(f"{db} is a directory, not a SQLite study store")
    if not db.is_file():
        raise StorageError(f"{db} is not a regular file, so not a SQLite study store")
    if not os.access(db, os.R_OK):
        raise StorageError(f"cannot read the study store {db}: permission denied")
    folder_writable, file_writable = _writable(folder), _writable(db)
    if write and not (folder_writable and file_writable):
        what = f"the file {db}" if folder_writable else f"its directory {folder}"
        raise NotWritableError(
            f"the study store {db} is read-only ({what} cannot be written), and this command "
            "writes to it: make it writable, or copy it somewhere writable and pass --storage; "
            "hpo status, studies, best and export only read it"
        )
    wal = Path(f"{db}-wal")
    immutable = not (folder_writable and file_writable) and not (
        wal.exists() and wal.stat().st_size
    )
    return False, immutable


def use_wal(url: str | None) -> None:
    """Switch a SQLite store to WAL (once; the mode stays in the file) before workers share it.

    WAL lets readers (status, the dashboard) and one writer work at the same time.
    """
    db = sqlite_path(resolve_url(url))
    if db is not None:
        _switch_to_wal(db)


def _switch_to_wal(db: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=_SQLITE_TIMEOUT)) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise _failure(f"sqlite:///{db}", str(exc)) from None


def _inspect_sqlite(db: Path, immutable: bool) -> None:
    """Refuse a file that is not a healthy Optuna store, reading it only (header, quick_check, tables).

    Nothing writes to an existing store before this and the command's own checks
    have passed (WAL comes later, from :func:`use_wal`), so a refused command
    leaves the file byte for byte as it was.
    """
    with open(db, "rb") as handle:
        header = handle.read(16)
    if not header:
        return  # an empty file: SQLite makes it a new database
    url = f"sqlite:///{db}"
    if header != b"SQLite format 3\x00":
        raise DamagedStoreError(
            f"{db} is not a SQLite database (it does not start with the SQLite header): "
            "pass the right --storage, or move the file away to start a new store"
        )
    uri = f"file:{quote(str(db.resolve()))}{'?immutable=1' if immutable else ''}"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=_SQLITE_TIMEOUT)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.Error as exc:
        raise _failure(url, str(exc)) from None
    if problems != ["ok"]:
        raise _failure(url, "; ".join(problems))
    _check_tables(url, tables)


def _check_tables(url: str, tables: set[str]) -> None:
    """A store holds all of Optuna's tables or none (then it is new); anything else is refused."""
    if not tables or OPTUNA_TABLES <= tables:
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


def _failure(url: str, reason: str) -> HpoError:
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
            f"{_SQLITE_TIMEOUT} s ({reason}); try again when it is done"
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
    cause = exc
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        cause = exc.__cause__
    url = _opened[-1] if _opened else resolve_url(None)
    if isinstance(cause, SQLAlchemyError):
        return _failure(url, str(getattr(cause, "orig", None) or cause).splitlines()[0])
    if isinstance(cause, (sqlite3.Error, optuna.exceptions.StorageInternalError)):
        return _failure(url, str(cause).splitlines()[0] if str(cause) else type(cause).__name__)
    if isinstance(
        exc, (ValueError, UnicodeDecodeError, RuntimeError, KeyError, TypeError)
    ) and _raised_in_store(exc):
        return _failure(url, f"a stored value cannot be read: {type(exc).__name__}: {exc}")
    return None


def _raised_in_store(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while Optuna's storage code was reading the database."""
    tb = exc.__traceback__
    marker = f"{os.sep}optuna{os.sep}storages{os.sep}"
    while tb is not None:
        if marker in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def open_storage(
    url: str | None = None,
    *,
    create: bool = False,
    heartbeat: bool = True,
    write: bool | None = None,
):
    """An Optuna RDBStorage for the URL, checked and ready for concurrent workers.

    ``create`` allows a new SQLite file; read-only commands pass False so that
    a mistyped path reports an error instead of creating an empty store.
    ``write`` (default: ``create``) says the command will write: a read-only store
    is then refused before anything is done, with one clear line.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    url = resolve_url(url)
    write = create if write is None else write
    parsed = parse(url)
    engine_kwargs: dict = {}
    db = sqlite_path(url)
    with warnings_silenced():
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    interval, grace = heartbeat_settings()
    kwargs = (
        dict(heartbeat_interval=interval, grace_period=grace, heartbeat_stale_trial_callback=retry)
        if heartbeat
        else {}
    )
    opened, new, immutable = url, False, False
    if db is not None:
        new, immutable = _sqlite_access(db, create, write)
        engine_kwargs["connect_args"] = {"timeout": _SQLITE_TIMEOUT}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
    elif parsed.get_backend_name() == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    _opened[:] = [url]
    try:
        if db is None and create:
            _check_server_tables(url, engine_kwargs)
        # Opening a store writes Optuna's version rows when they are missing, so even a
        # read-only open waits while a launch creates the schema (its lock file exists then);
        # a store being created must not be taken for a damaged one either.
        lock = Path(f"{db}.lock")
        locked = db is not None and (create or (lock.exists() and _writable(lock)))
        with sqlite_lock(db) if locked else contextlib.nullcontext():
            if new:
                _switch_to_wal(db)
            elif db is not None:
                _inspect_sqlite(db, immutable)
                if immutable:
                    opened = f"sqlite:///file:{quote(str(db.resolve()))}{_IMMUTABLE}"
            with warnings_silenced():
                return optuna.storages.RDBStorage(
                    opened, engine_kwargs=engine_kwargs, skip_table_creation=not create, **kwargs
                )
    except ImportError as exc:
        raise StorageError(f"no database driver for {mask(url)!r}: {exc}") from None
    except RuntimeError as exc:  # Optuna: the tables were made by an incompatible version
        raise StorageError(
            f"cannot use the study store {mask(url)}: "
            f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None
    except (SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError) as exc:
        cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
        reason = (str(getattr(cause, "orig", None) or cause).strip().splitlines() or ["?"])[0]
        if "connect" in reason.lower() or "resolve host" in reason:
            raise StorageError(f"cannot open study store {mask(url)}: {reason}") from None
        if not create and (
            "no such table" in reason or "does not exist" in reason or "doesn't exist" in reason
        ):
            raise StorageError(
                f"{mask(url)} holds no study store yet: run `hpo launch` with this --storage first"
            ) from None
        raise _failure(url, reason) from None


def _check_server_tables(url: str, engine_kwargs: dict) -> None:
    """Before Optuna creates its tables on a server, refuse a database holding only some of them."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url, **engine_kwargs)
    try:
        _check_tables(url, set(inspect(engine).get_table_names()))
    finally:
        engine.dispose()


@contextlib.contextmanager
def warnings_silenced() -> Iterator[None]:
    """Hide Optuna's experimental-feature warnings (heartbeats) from users."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def shown_url(storage) -> str:
    """The store's URL as the user gave it, masked (a read-only SQLite store is opened otherwise)."""
    url = str(storage.url)
    if url.startswith("sqlite:///file:") and url.endswith(_IMMUTABLE):
        url = "sqlite:///" + unquote(url[len("sqlite:///file:") : -len(_IMMUTABLE)])
    return mask(url)


def load_study(name: str, storage):
    """Load an existing study or raise a clear StudyNotFoundError."""
    import optuna

    try:
        with warnings_silenced():
            return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        listed = ", ".join(names) if names else "none yet"
        raise StudyNotFoundError(
            f"no study named {name!r} in {shown_url(storage)} (studies there: {listed})"
        ) from None


def study_names(storage) -> list[str]:
    """The names of the studies in a store."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def reap_stale_trials(study) -> int:
    """Fail trials whose worker stopped sending heartbeats; return how many were reaped.

    Each gets the reason first (the system attribute ``fail_reason``, which the
    retry of its parameters does not inherit), so that no failure is shown without one.
    """
    import optuna
    from optuna.trial import TrialState

    before = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    backend = study._storage
    with warnings_silenced():
        stale = (
            backend._get_stale_trial_ids(study._study_id)
            if hasattr(backend, "_get_stale_trial_ids") and backend.get_heartbeat_interval()
            else []
        )
        for trial_id in stale:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                backend.set_trial_system_attr(trial_id, "fail_reason", STALE_REASON)
        optuna.storages.fail_stale_trials(study)
    after = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if before - after:
        _log.info("reaped %d stale trial(s) whose worker stopped", before - after)
    return before - after


def live_running_trials(study) -> list:
    """The RUNNING trials whose worker still sends heartbeats (all of them without heartbeats)."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    backend = study._storage
    if (
        not running
        or not hasattr(backend, "_get_stale_trial_ids")
        or not backend.get_heartbeat_interval()
    ):
        return running
    stale = set(backend._get_stale_trial_ids(study._study_id))
    return [t for t in running if t._trial_id not in stale]


class admission_lock:
    """A lock shared by every worker of one study, wherever the workers run.

    SQLite: a file lock beside the database (its workers share a machine).
    PostgreSQL: a session advisory lock. MySQL/MariaDB: ``GET_LOCK``.
    Held only while a worker decides to start a trial and creates it.
    """

    def __init__(self, storage, study_name: str):
        self._db = sqlite_path(storage.url)
        self._engine = getattr(storage, "engine", None)
        self._key = zlib.crc32(f"hpo:{study_name}".encode()) & 0x7FFFFFFF
        self._name = f"hpo:{study_name}"[:64]
        self._held: contextlib.ExitStack | None = None
        self._conn = None

    def acquire(self) -> None:
        if self._db is not None:
            self._held = contextlib.ExitStack()
            self._held.enter_context(sqlite_lock(self._db))
            return
        from sqlalchemy import text

        self._conn = self._engine.connect()
        if self._engine.dialect.name == "postgresql":
            self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        else:
            self._conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": self._name})
        self._conn.commit()

    def release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
            return
        if self._conn is None:
            return
        from sqlalchemy import text

        try:
            if self._engine.dialect.name == "postgresql":
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            else:
                self._conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._name})
            self._conn.commit()
        finally:
            self._conn.close()
            self._conn = None
