"""optuna-dashboard served on the study store, on its own or for the length of a launch.

The dashboard is optuna-dashboard's WSGI app on a threaded ``wsgiref`` server,
bound to 127.0.0.1 unless told otherwise. The app is built on the first request
that finds the store, so ``hpo launch --dashboard`` can start the server before
the launch has created a new store (requests until then get a "not yet" page).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hpo.artifacts import store as artifact_store
from hpo.errors import ConfigError, HpoError
from hpo.storage import store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

_log = logging.getLogger(__name__)


class _StoreApp:
    """optuna-dashboard's WSGI app, built once the study store can be opened."""

    def __init__(self, storage_url: str | None, artifacts: str | None = None):
        self.url = store.resolve_url(storage_url)
        self.artifacts = artifacts
        self._app: Callable | None = None
        self._lock = threading.Lock()

    def build(self) -> Callable:
        """Open the store and build the app; raises HpoError when the store is not usable."""
        with self._lock:
            if self._app is None:
                from optuna_dashboard import wsgi

                storage = store.open_storage(self.url, create=False, heartbeat=False)
                self.artifacts = artifact_store.location(self.artifacts, _studies_place(storage))
                kept = self.artifacts and artifact_store.open_store(self.artifacts, write=False)
                self._app = wsgi(storage, artifact_store=kept or None)
            return self._app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        try:
            app = self._app or self.build()
        except HpoError as exc:
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "2")],
            )
            return [f"The study store is not ready yet ({exc}); reload shortly.\n".encode()]
        return app(environ, start_response)


def _studies_place(storage) -> str | None:
    """The artifact store the store's studies name, when they all name the same one."""
    from hpo.study.records import CONFIG_ATTR

    places = {
        (study.user_attrs.get(CONFIG_ATTR) or {}).get("artifacts")
        for study in storage.get_all_studies()
    } - {None}
    return places.pop() if len(places) == 1 else None


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection must not hold up stopping


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not over the launch's progress output."""

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)


class Dashboard:
    """A bound dashboard server; ``serve_forever`` blocks, ``start``/``stop`` run it in a thread."""

    def __init__(
        self,
        storage_url: str | None,
        host: str | None = None,
        port: int | None = None,
        *,
        check_store: bool = True,
        artifacts: str | None = None,
    ):
        host = DEFAULT_HOST if host is None else host
        port = DEFAULT_PORT if port is None else port
        app = self._app = _StoreApp(storage_url, artifacts)
        if check_store:
            app.build()  # a wrong URL or missing store is an error now, not a 503 later
        self.storage_url = app.url
        try:
            self._server = make_server(
                host, port, app, server_class=_Server, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(_bind_error(host, port, exc)) from None
        self._thread: threading.Thread | None = None

    @property
    def artifacts(self) -> str | None:
        """The artifact store whose files the dashboard shows (known once the app is built)."""
        return self._app.artifacts

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        host, port = self._server.server_address[:2]
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{port}/dashboard/"

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def serve_until_signal(self) -> None:
        """Serve until SIGINT or SIGTERM.

        The handler asks the server loop to stop (from a thread, as ``shutdown``
        waits for the loop) instead of raising KeyboardInterrupt, which Python can
        swallow when it lands in a garbage-collection callback.
        """

        def stop(signum, frame):
            threading.Thread(target=self._server.shutdown, daemon=True).start()

        old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.serve_forever()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def start(self) -> Dashboard:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hpo-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


@contextlib.contextmanager
def alongside(
    storage_url: str | None,
    port: int | None,
    echo: Callable[[str], None],
    artifacts: str | None = None,
) -> Iterator[Dashboard]:
    """A dashboard in a background thread for the length of the block (``launch --dashboard``)."""
    board = Dashboard(storage_url, port=port, check_store=False, artifacts=artifacts).start()
    echo(f"Dashboard: {board.url}")
    try:
        yield board
    finally:
        board.stop()


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use: choose another port or stop what uses it"
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port}: use a port above 1023"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host!r}: use 127.0.0.1, 0.0.0.0 or an address of this machine"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
