"""The study store: opened and checked in one place.

Its URL is resolved by :mod:`hpo.storage.url`; a SQLite file is locked, checked
and read before anything writes to it by :mod:`hpo.storage.sqlite`; a failure of
the store met later in a command is explained by :func:`store_failure`
(:mod:`hpo.storage.errors`). Every worker's trials carry a heartbeat; a trial whose
worker died is failed after the grace period and its parameters are queued again.
A ``grpc://HOST:PORT`` URL opens the client of an ``hpo proxy`` (:mod:`hpo.storage.proxy`),
which carries the heartbeats and the admission lock to the database for its workers.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from hpo.errors import StorageError, StudyNotFoundError
from hpo.storage.errors import (
    SQLITE_TIMEOUT,
    check_tables,
    failure,
    remember_opened,
    store_failure,
)
from hpo.storage.sqlite import (
    check_access,
    check_health,
    given_url,
    immutable_url,
    sqlite_lock,
    switch_to_wal,
    sync_at_checkpoints,
    wait_while_created,
    writable,
)
from hpo.storage.url import ENV_VAR, is_proxy, mask, parse, resolve_url, sqlite_path

__all__ = [
    "ENV_VAR",
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "admission_lock",
    "heartbeat_settings",
    "load_study",
    "mask",
    "open_storage",
    "resolve_url",
    "shown_url",
    "sqlite_lock",
    "sqlite_path",
    "store_failure",
    "study_names",
    "use_wal",
    "warnings_silenced",
]

HEARTBEAT_INTERVAL = 5  # seconds between a running trial's heartbeats ($HPO_HEARTBEAT_INTERVAL)
GRACE_PERIOD = 20  # seconds without a heartbeat before a trial counts as dead ($HPO_GRACE_PERIOD)
MAX_RETRY = 3  # times a dead worker's trial is queued again


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


def use_wal(url: str | None) -> None:
    """Switch a SQLite store to WAL (once; the mode stays in the file) before workers share it.

    WAL lets readers (status, the dashboard) and one writer work at the same time.
    """
    db = sqlite_path(resolve_url(url))
    if db is not None:
        switch_to_wal(db)


def _retry_class():
    """Optuna's retry of a stale trial's parameters, made without the failed trial's
    ``fail_reason`` (hpo gives the failed trial its reason before failing it; a retry that
    inherited it would show a reason on a trial that did not fail)."""
    import optuna

    class Retry(optuna.storages.RetryHeartbeatStaleTrialCallback):
        def __call__(self, study, trial) -> None:
            trial.system_attrs.pop("fail_reason", None)  # a copy Optuna made for the callback
            super().__call__(study, trial)

    return Retry


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
    with warnings_silenced():
        retry = _retry_class()(max_retry=MAX_RETRY)
    if is_proxy(url):  # the proxy opened and checked the store; its own errors are its own
        return _open_proxy(url, heartbeat, write, retry)
    parsed = parse(url)
    engine_kwargs: dict = {}
    db = sqlite_path(url)
    interval, grace = heartbeat_settings()
    kwargs = (
        {
            "heartbeat_interval": interval,
            "grace_period": grace,
            "heartbeat_stale_trial_callback": retry,
        }
        if heartbeat
        else {}
    )
    opened, new, immutable = url, False, False
    if db is not None:
        new, immutable = check_access(db, create, write)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        engine_kwargs["pool_pre_ping"] = True
    elif parsed.get_backend_name() == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    remember_opened(url)
    try:
        if db is None and create:
            _check_server_tables(url, engine_kwargs)
        # Opening a store writes Optuna's version rows when they are missing, so even a
        # read-only open waits while a launch creates the schema (its lock file exists then);
        # a store being created must not be taken for a damaged one either.
        lock = Path(f"{db}.lock")
        locked = db is not None and (create or (lock.exists() and writable(lock)))
        with sqlite_lock(db) if locked else contextlib.nullcontext():
            if new:
                switch_to_wal(db)
            elif db is not None:
                check_health(db, immutable)
                if immutable:
                    opened = immutable_url(db)
            storage = _rdb_storage(opened, db, engine_kwargs, create, kwargs)
            if db is not None and not immutable:
                sync_at_checkpoints(storage.engine)
            return storage
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
        raise failure(url, reason) from None


def _open_proxy(url: str, heartbeat: bool, write: bool, retry):
    """The client of the ``hpo proxy`` at ``url`` (``grpc://HOST:PORT``), once it answered.

    A plain Optuna proxy (``run_grpc_proxy_server``) is read, not written: hpo's writers
    need the heartbeats and the admission lock that only ``hpo proxy`` carries.
    """
    from hpo.storage import proxy

    proxy.proxy_address(url)  # a malformed URL is one line before anything else
    remember_opened(url)
    with warnings_silenced():  # Optuna calls its proxy experimental
        storage = proxy.connect(
            url, heartbeat=heartbeat, stale_callback=retry if heartbeat else None
        )
    if write and not storage.hpo_proxy:
        storage.close()
        raise StorageError(
            f"{mask(url)} is a plain Optuna gRPC proxy, not `hpo proxy`: hpo reads studies "
            "through it (status, studies, best, export, report, dashboard), but commands that "
            "write need hpo's, which carries heartbeats and the trial-admission lock; start "
            "`hpo proxy --storage DATABASE_URL` instead"
        )
    return storage


def _rdb_storage(url: str, db: Path | None, engine_kwargs: dict, create: bool, kwargs: dict):
    """Optuna's storage on ``url``, which creates its tables and version rows when missing.

    A plain Optuna client creating the same SQLite store at the same moment (it takes
    no hpo lock) can make that creation fail on a table or row the other one just
    wrote; the store is then waited for and opened again, not reported as failed.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    tries = 3
    while True:
        try:
            with warnings_silenced():
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, skip_table_creation=not create, **kwargs
                )
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            reason = str(getattr(exc, "orig", None) or exc.__cause__ or exc)
            raced = "already exists" in reason or "UNIQUE constraint failed" in reason
            tries -= 1
            if db is None or not raced or not tries:
                raise
            wait_while_created(db)


def _check_server_tables(url: str, engine_kwargs: dict) -> None:
    """Before Optuna creates its tables on a server, refuse a database holding only some of them."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url, **engine_kwargs)
    try:
        check_tables(url, set(inspect(engine).get_table_names()))
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
    """The store's URL as the user gave it, masked (even when opened read-only by another URL)."""
    return mask(given_url(str(storage.url)))


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
    # the storage's own list: Optuna's study summaries read every trial of every study to count them
    return [s.study_name for s in storage.get_all_studies()]


class admission_lock:
    """A lock shared by every worker of one study, wherever the workers run.

    SQLite: a file lock beside the database (its workers share a machine).
    PostgreSQL: a session advisory lock. MySQL/MariaDB: ``GET_LOCK``.
    Through an ``hpo proxy``: the proxy takes the same lock on the database for this
    holder (so proxied workers and workers on the database share it), asked again
    every few milliseconds while another holds it.
    Held only while a worker decides to start a trial and creates it.
    """

    def __init__(self, storage, study_name: str):
        self._proxy = storage if getattr(storage, "hpo_proxy", None) is not None else None
        self._db = None if self._proxy is not None else sqlite_path(storage.url)
        self._engine = getattr(storage, "engine", None)
        self._study = study_name
        self._key = zlib.crc32(f"hpo:{study_name}".encode()) & 0x7FFFFFFF
        self._name = f"hpo:{study_name}"[:64]
        self._held: contextlib.ExitStack | None = None
        self._conn = None
        self._holder: str | None = None

    def acquire(self) -> None:
        if self._proxy is not None:
            from hpo.storage.proxy import new_holder

            holder, pause = new_holder(), 0.005
            while not self._proxy.try_lock(self._study, holder):
                time.sleep(pause)
                pause = min(2 * pause, 0.1)
            self._holder = holder
            return
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

    def try_acquire(self) -> bool:
        """Take the lock if it is free now (True), else leave it (False); never waits.
        On the database only: an ``hpo proxy`` takes it so for its clients."""
        if self._db is not None:
            held = contextlib.ExitStack()
            if not held.enter_context(sqlite_lock(self._db, wait=False)):
                held.close()
                return False
            self._held = held
            return True
        from sqlalchemy import text

        conn = self._engine.connect()
        if self._engine.dialect.name == "postgresql":
            query, args = "SELECT pg_try_advisory_lock(:k)", {"k": self._key}
        else:
            query, args = "SELECT GET_LOCK(:n, 0)", {"n": self._name}
        try:
            taken = bool(conn.execute(text(query), args).scalar())
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        if self._holder is not None:
            holder, self._holder = self._holder, None
            self._proxy.unlock(self._study, holder)
            return
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
