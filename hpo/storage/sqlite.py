"""A SQLite study store: locked, checked and read before anything writes to it.

SQLite is set up for many processes at once (WAL journal, a long busy timeout,
schema creation under a file lock) so that eight workers starting together
never see "database is locked". A file is read and checked before anything
writes to it, so a damaged, foreign or read-only store is one error line and
stays as it was; a read-only store is still read, opened as ``immutable``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

from hpo.errors import DamagedStoreError, NotWritableError, StorageError
from hpo.storage.errors import OPTUNA_TABLES, SQLITE_TIMEOUT, check_tables, failure

#: A store whose schema is unfinished is being created by another program (a plain Optuna
#: client takes no hpo lock) while it keeps changing; unchanged for this long, it is damaged.
CREATION_QUIET = 1.5  # seconds
CREATION_LIMIT = 60  # seconds at most waited for another program to finish creating a store
_FILE_URL = "sqlite:///file:"
_IMMUTABLE = "?immutable=1&uri=true"  # how a read-only SQLite store is opened


@contextlib.contextmanager
def sqlite_lock(db: Path, wait: bool = True) -> Iterator[bool]:
    """An exclusive lock beside a SQLite file, for the few steps that must not interleave.

    Yields True once it holds the lock; with ``wait=False``, False at once when another
    holds it (the block then runs without it).
    """
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(open(f"{db}.lock", "a+"))
        except OSError as exc:
            raise NotWritableError(
                f"cannot create the lock file {db}.lock beside the study store ({exc.strerror}): "
                "hpo writes the store and its lock file, so its directory must be writable"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def writable(path: Path) -> bool:
    """Whether this process may write ``path`` (a read-only mount, mode or immutable flag: no)."""
    return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))


def check_access(db: Path, create: bool, write: bool) -> tuple[bool, bool]:
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
        if not writable(folder):
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
    folder_writable, file_writable = writable(folder), writable(db)
    if write and not (folder_writable and file_writable):
        what = f"the file {db}" if folder_writable else f"its directory {folder}"
        raise NotWritableError(
            f"the study store {db} is read-only ({what} cannot be written), and this command "
            "writes to it: make it writable, or copy it somewhere writable and pass --storage; "
            "hpo status, studies, best, export and report only read it"
        )
    wal = Path(f"{db}-wal")
    immutable = not (folder_writable and file_writable) and not (
        wal.exists() and wal.stat().st_size
    )
    return False, immutable


def switch_to_wal(db: Path) -> None:
    """Put the store in WAL mode (it stays in the file).

    The switch needs the file to itself, and SQLite does not wait for that: while
    another program reads or writes it (a plain Optuna client, a dashboard), the
    switch is tried again for up to :data:`SQLITE_TIMEOUT` seconds.
    """
    deadline = time.monotonic() + SQLITE_TIMEOUT
    while True:
        try:
            with contextlib.closing(sqlite3.connect(db, timeout=SQLITE_TIMEOUT)) as conn:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise failure(f"sqlite:///{db}", str(exc)) from None
            time.sleep(0.05)
        except sqlite3.Error as exc:
            raise failure(f"sqlite:///{db}", str(exc)) from None


def sync_at_checkpoints(engine) -> None:
    """Each new connection of ``engine`` to a WAL store commits without waiting for the disk.

    ``PRAGMA synchronous=NORMAL``, SQLite's advice for WAL: the store stays consistent
    whatever happens, a killed process loses nothing, and a power cut can lose only the
    last commits; the disk is synced at each checkpoint instead of at each of the commits
    a trial makes. A store in another journal mode keeps its full syncs.
    """
    from sqlalchemy import event

    def on_connect(connection, _record) -> None:
        if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections made before the listener are made again


def check_health(db: Path, immutable: bool) -> None:
    """Refuse a file that is not a healthy Optuna store, only reading it (header, checks, tables).

    Nothing writes to an existing store before this and the command's own checks
    have passed (WAL comes later, from :func:`use_wal`), so a refused command
    leaves the file byte for byte as it was. A store another program is creating
    (Optuna's tables and version rows come one after another) is waited for, not
    taken for a damaged one.
    """
    if db.stat().st_size == 0:
        return  # an empty file: SQLite makes it a new database
    url = f"sqlite:///{db}"
    problems, tables = _read_health(db, immutable)
    if problems == ["ok"] and not immutable and _unfinished(tables):
        wait_while_created(db)
        problems, tables = _read_health(db, immutable)
    if problems != ["ok"]:
        raise failure(url, "; ".join(problems))
    check_tables(url, tables)


def wait_while_created(db: Path) -> None:
    """Wait while another program creates the store's schema (until it is whole, or stays as it is).

    Returns at once for a finished store; a store whose unfinished schema stops
    changing for :data:`CREATION_QUIET` seconds is left to the caller's checks.
    """
    state = _creation_state(db)
    quiet_since = started = time.monotonic()
    while state[0] is None or _unfinished(state[0], stamped=state[1]):
        now = time.monotonic()
        if now - quiet_since > CREATION_QUIET or now - started > CREATION_LIMIT:
            return
        time.sleep(0.05)
        now_state = _creation_state(db)
        if now_state != state:
            state, quiet_since = now_state, time.monotonic()


def _unfinished(tables: set[str] | frozenset[str], stamped: bool = True) -> bool:
    """Whether Optuna's schema is begun but not finished: some of its tables, and no other."""
    return bool(tables) and tables <= OPTUNA_TABLES and not (tables >= OPTUNA_TABLES and stamped)


def _creation_state(db: Path) -> tuple[frozenset[str] | None, bool, tuple]:
    """(the tables, whether the version rows are written, the files' sizes and times).

    The tables are None while the file cannot be read (it is being written).
    """
    files = tuple(
        (info.st_size, info.st_mtime_ns)
        for suffix in ("", "-journal", "-wal")
        if (info := _stat(Path(f"{db}{suffix}"))) is not None
    )
    try:
        with contextlib.closing(_connect(db, immutable=False)) as conn:
            tables = frozenset(_tables(conn))
            stamped = tables >= {"version_info", "alembic_version"} and all(
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                for table in ("version_info", "alembic_version")
            )
    except sqlite3.Error:
        return None, False, files
    return tables, stamped, files


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _read_health(db: Path, immutable: bool) -> tuple[list[str], set[str]]:
    """``PRAGMA quick_check``'s first problems (["ok"] when none) and the store's tables."""
    # Only SQLite opens the file: closing any other descriptor of it (Python's open()) would drop
    # every POSIX lock this process's SQLite connections hold on it (the dashboard of
    # `hpo launch --dashboard` opens the store beside the launcher's connections), and a worker
    # could then delete the WAL file with trials in it.
    url = f"sqlite:///{db}"
    try:
        with contextlib.closing(_connect(db, immutable)) as conn:
            return [row[0] for row in conn.execute("PRAGMA quick_check(3)")], _tables(conn)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise DamagedStoreError(
                f"{db} is not a SQLite database (it does not start with the SQLite header): "
                "pass the right --storage, or move the file away to start a new store"
            ) from None
        raise failure(url, str(exc)) from None
    except sqlite3.Error as exc:
        raise failure(url, str(exc)) from None


def _connect(db: Path, immutable: bool) -> sqlite3.Connection:
    uri = f"file:{quote(str(db.resolve()))}{'?immutable=1' if immutable else ''}"
    return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def immutable_url(db: Path) -> str:
    """The URL that opens ``db`` read-only as ``immutable`` (nobody can be writing it)."""
    return f"{_FILE_URL}{quote(str(db.resolve()))}{_IMMUTABLE}"


def given_url(url: str) -> str:
    """A store's URL as the user gave it (a read-only store is opened by another one)."""
    if url.startswith(_FILE_URL) and url.endswith(_IMMUTABLE):
        return "sqlite:///" + unquote(url[len(_FILE_URL) : -len(_IMMUTABLE)])
    return url
