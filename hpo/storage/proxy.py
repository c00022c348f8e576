"""An ``hpo proxy``'s two ends: Optuna's gRPC storage proxy, with hpo's own small service beside it.

Optuna's proxy (``optuna.storages.GrpcStorageProxy`` and the server of
``run_grpc_proxy_server``) carries Optuna's storage API only: no heartbeats and no
lock, and its calls wait for ever on a server that stopped answering. hpo serves one
more gRPC service on the same port, ``hpo.Proxy`` (JSON messages, no generated code):

- ``Hello``: that this is an ``hpo proxy``, and its heartbeat interval and grace period;
- ``Heartbeat`` and ``Stale``: a running trial's heartbeat, written into the database's
  own heartbeat table by the proxy, and the study's trials whose heartbeat stopped, so a
  worker on ``grpc://`` is reaped exactly as one on the database;
- ``TryLock`` and ``Unlock``: the trial-admission lock (:class:`hpo.storage.store.admission_lock`),
  taken by the proxy on the database for its client, so proxied workers and workers on the
  database share one lock and a study still stops at exactly its total.

:class:`ProxyStorage` is the client (Optuna's, with those calls, a deadline on every call and
a clear error for a proxy that does not answer); :func:`make_server` builds the server that
:mod:`hpo.runner.proxy` runs. Like :mod:`hpo.storage.optuna_internals`, this module may use
Optuna's private names (the proxy's servicer and generated stubs, the client's set-up);
``tests/storage/test_internals.py`` checks them on the installed Optuna.
"""

from __future__ import annotations

import collections
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from optuna.storages import GrpcStorageProxy, get_storage
from optuna.storages._grpc import servicer as optuna_servicer
from optuna.storages._grpc.auto_generated import api_pb2_grpc
from optuna.storages._grpc.client import GrpcClientCache
from optuna.storages._heartbeat import BaseHeartbeat

from hpo.errors import StorageError
from hpo.storage.url import mask, proxy_address

_log = logging.getLogger(__name__)

SERVICE = "hpo.Proxy"
PROTOCOL = 1  # the version of hpo's service; Hello says it
CONNECT_TIMEOUT = 10  # seconds a command waits for a proxy to answer at all
#: Seconds one call may take: the proxy's store may itself wait 120 s for SQLite's lock.
CALL_TIMEOUT = 150
SERVER_THREADS = 10  # calls served at once (Optuna's default): each may hold a database connection


def _encode(message: Any) -> bytes:
    return json.dumps(message).encode()


def _decode(data: bytes) -> Any:
    return json.loads(data) if data else None


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """A call's details, as gRPC's interceptors pass them."""


class _Deadline(grpc.UnaryUnaryClientInterceptor):
    """Every call without a deadline of its own gets :data:`CALL_TIMEOUT`: a proxy that stops
    answering is an error, not a worker waiting for ever."""

    def intercept_unary_unary(self, continuation, client_call_details, request):
        details = client_call_details
        timeout = CALL_TIMEOUT if details.timeout is None else details.timeout
        return continuation(
            _Details(
                details.method,
                timeout,
                details.metadata,
                details.credentials,
                getattr(details, "wait_for_ready", None),
                getattr(details, "compression", None),
            ),
            request,
        )


class ProxyStorage(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC storage client for an ``hpo proxy``: with heartbeats and hpo's lock.

    ``hpo_proxy`` says whether the server is an ``hpo proxy``; a plain Optuna proxy serves
    reads and writes but neither heartbeats nor the lock (``try_lock`` says so in one line).
    """

    def __init__(self, url: str, *, heartbeat: bool = True, stale_callback=None):
        host, port = proxy_address(url)
        self.url = url
        self.hpo_proxy = False
        self._heartbeat_on = heartbeat
        self._interval: int | None = None
        self._grace: int | None = None
        self._stale_callback = stale_callback
        super().__init__(host=host, port=port)  # runs _setup

    def _setup(self) -> None:
        super()._setup()
        self._channel = grpc.intercept_channel(self._channel, _Deadline())
        self._stub = api_pb2_grpc.StorageServiceStub(self._channel)
        self._cache = GrpcClientCache(self._stub)

    def _call(self, method: str, message: Any, timeout: float | None = None) -> Any:
        call = self._channel.unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_encode, response_deserializer=_decode
        )
        return call(message, timeout=timeout)

    def hello(self) -> None:
        """Ask the proxy what it is, within :data:`CONNECT_TIMEOUT` seconds (one clear error)."""
        try:
            answer = self._call("Hello", {}, timeout=CONNECT_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # a plain Optuna proxy
                return
            raise StorageError(unreachable(self.url, exc, connecting=True)) from None
        self.hpo_proxy = True
        self._interval, self._grace = answer["heartbeat"]

    # --- heartbeats (Optuna's BaseHeartbeat: its optimize loop sends them) -------------------

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self._call("Heartbeat", {"trial": trial_id})
        except grpc.RpcError as exc:  # the trial's own next call reports a proxy gone
            _log.debug("heartbeat of trial %d not sent: %s", trial_id, exc)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return list(self._call("Stale", {"study": study_id})) if self.hpo_proxy else []

    def get_heartbeat_interval(self) -> int | None:
        return self._interval if self._heartbeat_on and self.hpo_proxy else None

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback if self.get_heartbeat_interval() else None

    # --- hpo's trial-admission lock ------------------------------------------------------------

    def try_lock(self, study_name: str, holder: str) -> bool:
        """Take the study's admission lock for ``holder`` if it is free (True), else False."""
        if not self.hpo_proxy:
            raise StorageError(
                f"{mask(self.url)} is a plain Optuna gRPC proxy, not `hpo proxy`: hpo's workers "
                "and launches need hpo's (its lock and heartbeats); start `hpo proxy --storage "
                "DATABASE_URL` instead"
            )
        return bool(self._call("TryLock", {"study": study_name, "holder": holder}))

    def unlock(self, study_name: str, holder: str) -> None:
        self._call("Unlock", {"study": study_name, "holder": holder})


def new_holder() -> str:
    """A name for one holder of a lock, unique across machines and processes."""
    return uuid.uuid4().hex


def connect(url: str, *, heartbeat: bool = True, stale_callback=None) -> ProxyStorage:
    """The client of the proxy at ``url``, once it answered (else one StorageError)."""
    storage = ProxyStorage(url, heartbeat=heartbeat, stale_callback=stale_callback)
    try:
        storage.hello()
    except StorageError:
        storage.close()
        raise
    return storage


def unreachable(url: str, exc: grpc.RpcError, connecting: bool = False) -> str:
    """What a failed call to the proxy at ``url`` means for the user, in one line
    (``connecting``: the first call, which asks whether an hpo proxy is there at all)."""
    code = exc.code()
    detail = " ".join(str(exc.details() or code.name).split())
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        waited = f"within {CONNECT_TIMEOUT} s" if connecting else f"within {CALL_TIMEOUT} s"
        return (
            f"the hpo proxy at {mask(url)} did not answer {waited}: is it running, reachable "
            "and not stopped? Start or restart `hpo proxy` there and run the same command"
        )
    if connecting or code == grpc.StatusCode.UNAVAILABLE:
        return (
            f"no hpo proxy answers at {mask(url)} ({detail}): start it there with `hpo proxy "
            "--storage DATABASE_URL --host ... --port ...`, or check the host and port"
        )
    return f"the study store behind the proxy {mask(url)} failed: {detail}"


# --- the server ------------------------------------------------------------------------------


def make_server(
    served, host: str, port: int, handlers: dict[str, Callable[[Any], Any]]
) -> tuple[grpc.Server, int]:
    """A gRPC server (not started) with Optuna's proxy of ``served`` (:func:`served_storage`)
    and hpo's service made of ``handlers`` (method name -> function of the decoded request),
    bound to ``host:port``.

    Returns it and the port it is bound to (``port`` 0: any free one). Unlike Optuna's,
    it does not share its port with another server (gRPC's ``SO_REUSEPORT`` is off), so a
    port in use is refused. Raises RuntimeError when gRPC cannot bind.
    """
    server = grpc.server(
        ThreadPoolExecutor(max_workers=SERVER_THREADS, thread_name_prefix="hpo-proxy"),
        options=[("grpc.so_reuseport", 0)],
    )
    api_pb2_grpc.add_StorageServiceServicer_to_server(
        optuna_servicer.OptunaStorageProxyService(served), server
    )

    def method(function: Callable[[Any], Any]):
        def answer(request, context) -> Any:
            result = function(request)
            return {} if result is None else result  # gRPC sends no message for None

        return grpc.unary_unary_rpc_method_handler(
            answer,
            request_deserializer=_decode,
            response_serializer=_encode,
        )

    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {n: method(f) for n, f in handlers.items()})]
    )
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return server, bound


def heartbeat_handlers(storage) -> dict[str, Callable[[Any], Any]]:
    """The server's ``Heartbeat`` and ``Stale``, on the RDBStorage's own heartbeat table."""

    def heartbeat(request) -> None:
        storage.record_heartbeat(int(request["trial"]))

    def stale(request) -> list[int]:
        return [int(i) for i in storage._get_stale_trial_ids(int(request["study"]))]

    return {"Heartbeat": heartbeat, "Stale": stale}


def served_storage(storage):
    """What the proxy serves for an RDBStorage: Optuna's cache over it, as
    ``run_grpc_proxy_server`` advises (without it, each read of a study's new trials
    would read all of them)."""
    return get_storage(storage)
