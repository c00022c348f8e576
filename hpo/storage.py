"""The study store: storage URLs resolved and checked in one place.

``--storage`` wins, then the ``HPO_STORAGE`` environment variable, then
``sqlite:///studies.db`` in the working directory. SQLite is set up for many
processes at once (WAL journal, a long busy timeout, schema creation under a
file lock) so that eight workers starting together never see "database is
locked". Every worker's trials carry a heartbeat; a trial whose worker died is
failed after the grace period and its parameters are queued again.
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

from hpo.errors import StorageError, StudyNotFoundError

DEFAULT_URL = "sqlite:///studies.db"
ENV_VAR = "HPO_STORAGE"
HEARTBEAT_INTERVAL = 5  # seconds between a running trial's heartbeats ($HPO_HEARTBEAT_INTERVAL)
GRACE_PERIOD = 20  # seconds without a heartbeat before a trial counts as dead ($HPO_GRACE_PERIOD)
MAX_RETRY = 3  # times a dead worker's trial is queued again
_SQLITE_TIMEOUT = 120  # seconds a SQLite writer waits for the lock

_log = logging.getLogger(__name__)


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace period) in seconds; the environment can shorten them (tests, fast LANs)."""
    try:
        interval = int(os.environ.get("HPO_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL))
        grace = int(os.environ.get("HPO_GRACE_PERIOD", GRACE_PERIOD))
    except ValueError:
        raise StorageError("HPO_HEARTBEAT_INTERVAL and HPO_GRACE_PERIOD must be whole seconds") from None
    if interval < 1 or grace <= interval:
        raise StorageError("need HPO_HEARTBEAT_INTERVAL >= 1 and HPO_GRACE_PERIOD > HPO_HEARTBEAT_INTERVAL")
    return interval, grace


def resolve_url(url: str | None) -> str:
    """The storage URL to use: the argument, else $HPO_STORAGE, else the default SQLite file."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def mask(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print and log."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return url.split("@")[-1] if "@" in url else url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def _parse(url: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(
            f"malformed storage URL {mask(url)!r}: use sqlite:///studies.db, "
            "postgresql://user:password@host/db or mysql+pymysql://user:password@host/db"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        raise StorageError(
            f"unsupported storage {parsed.get_backend_name()!r} in {mask(url)!r}: "
            "use sqlite, postgresql or mysql+pymysql"
        )
    return parsed


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for other databases."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise StorageError("an in-memory SQLite store cannot be shared by workers: name a file")
    return Path(parsed.database)


@contextlib.contextmanager
def sqlite_lock(db: Path) -> Iterator[None]:
    """An exclusive lock beside a SQLite file, for the few steps that must not interleave."""
    with open(f"{db}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_sqlite(db: Path, create: bool) -> None:
    """Check the file; for a store that workers write to, switch it to WAL once.

    WAL lets readers (status, the dashboard) and one writer work at the same time;
    the mode is stored in the file, so read-only opens leave the file untouched.
    """
    if not db.exists():
        if not create:
            raise StorageError(
                f"no study store at {db}: run `hpo launch` first, or pass --storage URL"
            )
        if not db.parent.exists():
            raise StorageError(f"cannot create {db}: directory {db.parent} does not exist")
    elif db.is_dir():
        raise StorageError(f"{db} is a directory, not a SQLite study store")
    if not create:
        return
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=_SQLITE_TIMEOUT)) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{db} is not a usable SQLite study store: {exc}") from None


def open_storage(url: str | None = None, *, create: bool = False, heartbeat: bool = True):
    """An Optuna RDBStorage for the URL, checked and ready for concurrent workers.

    ``create`` allows a new SQLite file; read-only commands pass False so that
    a mistyped path reports an error instead of creating an empty store.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    url = resolve_url(url)
    parsed = _parse(url)
    engine_kwargs: dict = {}
    db = sqlite_path(url)
    with warnings_silenced():
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    interval, grace = heartbeat_settings()
    kwargs = dict(heartbeat_interval=interval, grace_period=grace,
                  heartbeat_stale_trial_callback=retry) if heartbeat else {}
    if db is not None:
        _prepare_sqlite(db, create)
        engine_kwargs["connect_args"] = {"timeout": _SQLITE_TIMEOUT}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
    elif parsed.get_backend_name() == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        # Opening a store writes Optuna's version rows when they are missing, so even a
        # read-only open waits while a launch creates the schema (its lock file exists then).
        locked = db is not None and (create or Path(f"{db}.lock").exists())
        with sqlite_lock(db) if locked else contextlib.nullcontext():
            with warnings_silenced():
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, skip_table_creation=not create, **kwargs
                )
    except ImportError as exc:
        raise StorageError(f"no database driver for {mask(url)!r}: {exc}") from None
    except (SQLAlchemyError, sqlite3.Error, optuna.exceptions.StorageInternalError) as exc:
        cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        if not create and ("no such table" in reason or "does not exist" in reason
                           or "doesn't exist" in reason):
            raise StorageError(
                f"{mask(url)} holds no study store yet: run `hpo launch` with this --storage first"
            ) from None
        raise StorageError(f"cannot open study store {mask(url)}: {reason}") from None


@contextlib.contextmanager
def warnings_silenced() -> Iterator[None]:
    """Hide Optuna's experimental-feature warnings (heartbeats) from users."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def load_study(name: str, storage) :
    """Load an existing study or raise a clear StudyNotFoundError."""
    import optuna

    try:
        with warnings_silenced():
            return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        listed = ", ".join(names) if names else "none yet"
        raise StudyNotFoundError(
            f"no study named {name!r} in {mask(storage.url)} (studies there: {listed})"
        ) from None


def study_names(storage) -> list[str]:
    """The names of the studies in a store."""
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def reap_stale_trials(study) -> int:
    """Fail trials whose worker stopped sending heartbeats; return how many were reaped."""
    import optuna
    from optuna.trial import TrialState

    before = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    with warnings_silenced():
        optuna.storages.fail_stale_trials(study)
    after = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if before - after:
        _log.info("reaped %d stale trial(s) whose worker stopped", before - after)
    return before - after


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
