"""``hpo proxy``: one process in front of the study store, so that a fleet of workers holds no
database connections of its own.

It opens the store as every command does (:func:`hpo.storage.store.open_storage`: checked,
the same errors), then serves Optuna's gRPC storage proxy and hpo's own service beside it
(:mod:`hpo.storage.proxy`): heartbeats written into the database's heartbeat table for the
trials of proxied workers, the trial-admission lock taken on the database for them (held at
most :func:`lease` seconds, in case its holder died holding it), and, every heartbeat
interval, the trials of every study whose worker stopped sending heartbeats failed and
queued again, as a launch's workers do on the database. Ctrl-C or SIGTERM stops it
(exit 130 / 143).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hpo.errors import ConfigError, StorageError
from hpo.runner.processes import StopSignals
from hpo.storage import proxy, store
from hpo.storage.url import is_proxy
from hpo.study import records

_log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 13000
STOP_GRACE = 5  # seconds calls in flight get to end when the proxy stops


def lease() -> float:
    """Seconds the proxy holds a study's admission lock for one holder at most: a worker that
    held it longer is taken for dead (a live worker holds it well under a second)."""
    return 3.0 * store.heartbeat_settings()[1]


class AdmissionLocks:
    """The admission locks the proxy holds on the database for its clients, one per study."""

    def __init__(self, storage, hold_for: float):
        self._rdb = storage
        self._hold_for = hold_for
        self._held: dict[str, tuple[str, store.admission_lock, float]] = {}
        self._mutex = threading.Lock()

    def try_lock(self, request: dict[str, Any]) -> bool:
        name, holder = str(request["study"]), str(request["holder"])
        with self._mutex:
            held = self._held.get(name)
            if held is not None:
                if held[0] == holder:
                    return True
                if time.monotonic() - held[2] < self._hold_for:
                    return False
                _log.warning(
                    "a worker held study %r's admission lock for over %.0f s: taken for dead, "
                    "its lock is released",
                    name,
                    self._hold_for,
                )
                self._release(name)
            lock = store.admission_lock(self._rdb, name)
            if not lock.try_acquire():  # a worker on the database holds it
                return False
            self._held[name] = (holder, lock, time.monotonic())
            return True

    def unlock(self, request: dict[str, Any]) -> None:
        name, holder = str(request["study"]), str(request["holder"])
        with self._mutex:
            held = self._held.get(name)
            if held is not None and held[0] == holder:
                self._release(name)

    def _release(self, name: str) -> None:
        _, lock, _ = self._held.pop(name)
        try:
            lock.release()
        except (OSError, SQLAlchemyError) as exc:  # the database went away, and the lock with it
            _log.warning("releasing study %r's admission lock failed: %s", name, exc)

    def release_all(self) -> None:
        with self._mutex:
            for name in list(self._held):
                self._release(name)


def reap(served) -> int:
    """Fail (and queue again) the trials of every study whose worker stopped sending
    heartbeats; how many. A failure of the store is logged, and tried again next time."""
    import optuna

    reaped = 0
    try:
        for frozen in served.get_all_studies():
            with store.warnings_silenced():
                study = optuna.load_study(study_name=frozen.study_name, storage=served)
            reaped += records.reap_stale_trials(study)
    except Exception as exc:
        failure = store.store_failure(exc)
        if failure is None:
            raise
        _log.warning("reaping stale trials failed: %s", failure)
    return reaped


def _bind_error(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on (asked of the system: gRPC only says it failed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use (another hpo proxy?): choose another "
                "--port, or stop what uses it"
            )
        if exc.errno == errno.EACCES:
            return f"no permission to listen on port {port}: use a port above 1023"
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            return (
                f"cannot listen on {host!r}: use 127.0.0.1, 0.0.0.0 or an address of this machine"
            )
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return ""


def serve(
    storage_url: str | None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> int:
    """Serve the store until SIGINT or SIGTERM; the exit status (130 or 143)."""
    url = store.resolve_url(storage_url)
    if is_proxy(url):
        raise StorageError(
            f"hpo proxy serves a database, not another proxy ({store.mask(url)}): pass the "
            "store's own URL (sqlite:///..., postgresql://..., mysql+pymysql://...)"
        )
    if port and _bind_error(host, port):  # before the store is opened, and before gRPC says so
        raise ConfigError(_bind_error(host, port))
    rdb = store.open_storage(url, create=True, write=True)
    store.use_wal(url)  # many workers, through one process, still read while one writes
    served = proxy.served_storage(rdb)
    locks = AdmissionLocks(rdb, lease())
    interval, grace = store.heartbeat_settings()
    handlers: dict[str, Callable[[Any], Any]] = {
        "Hello": lambda _: {"protocol": proxy.PROTOCOL, "heartbeat": [interval, grace]},
        "TryLock": locks.try_lock,
        "Unlock": locks.unlock,
        **proxy.heartbeat_handlers(rdb),
    }
    try:
        server, bound = proxy.make_server(served, host, port, handlers)
    except RuntimeError:
        raise ConfigError(_bind_error(host, port) or f"cannot listen on {host}:{port}") from None
    if host in ("0.0.0.0", "::", ""):
        warn(
            f"Warning: listening on every network of this machine ({host}) with no TLS and no "
            f"authentication: whoever reaches port {bound} can read, change and delete every "
            "study in the store; keep it to a trusted private network, or bind 127.0.0.1 and "
            "tunnel (ssh -L)"
        )
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    join = f"grpc://[{shown}]:{bound}" if ":" in shown else f"grpc://{shown}:{bound}"
    with StopSignals() as signals:
        server.start()
        echo(
            f"hpo proxy for {store.mask(url)} listening on {host}:{bound}; workers join with: "
            f"hpo worker --study NAME --storage {join} (Ctrl-C stops it)"
        )
        try:
            due = time.monotonic()
            while signals.code is None:
                if time.monotonic() >= due:
                    reaped = reap(served)
                    if reaped:
                        echo(
                            f"Marked {reaped} trial(s) of stopped workers as FAIL; their "
                            "parameters are queued again."
                        )
                    due = time.monotonic() + interval
                time.sleep(0.2)
        finally:
            server.stop(STOP_GRACE).wait()
            locks.release_all()
            with contextlib.suppress(Exception):
                rdb.engine.dispose()
    echo("hpo proxy stopped.")
    return signals.code
