"""A study store's URL: resolved, its password read whole, and masked wherever it is shown.

``--storage`` wins, then the ``HPO_STORAGE`` environment variable, then
``sqlite:///studies.db`` in the working directory. A password may hold any
character: it is percent-encoded before a driver parses the URL (so no part of
it is ever read as a host) and replaced whole by ``***`` in everything hpo
prints, logs or writes. ``grpc://HOST:PORT`` names an ``hpo proxy`` (Optuna's gRPC
storage proxy) in front of a database: it holds no password, and :func:`proxy_address`
reads it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from hpo.errors import StorageError

DEFAULT_URL = "sqlite:///studies.db"
ENV_VAR = "HPO_STORAGE"
#: How ``--storage`` is described wherever a command takes it.
STORAGE_HELP = (
    f"Study store URL, or grpc://HOST:PORT of an `hpo proxy` [env {ENV_VAR}; default "
    f"{DEFAULT_URL} in this directory]."
)
GRPC_SCHEME = "grpc://"
_GRPC = re.compile(r"^grpc://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})/?$")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")
_SECRET_QUERY = re.compile(r"(?i)((?:^|[?&;])(?:password|passwd|pwd|secret|token)=)[^&;#]*")


def resolve_url(url: str | None) -> str:
    """The storage URL to use: the argument, else $HPO_STORAGE, else the default SQLite file.

    A password may hold any character: ``@``, ``:``, ``/``, ``%``, ``#`` and ``?`` are
    percent-encoded here (escapes already there are kept), so that the database
    sees the password that was typed and no part of it is ever read as a host.
    """
    return normalize_url(url or os.environ.get(ENV_VAR) or DEFAULT_URL)


def _userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, user[:password], rest)``: the user part runs to the *last* ``@``."""
    match = _SCHEME.match(url)
    if (
        match is None
        or match["scheme"].lower().startswith("sqlite")
        or match["rest"].startswith("/")
    ):
        return None
    rest = match["rest"]
    at = rest.rfind("@")
    if at < 0:
        return None
    return match["scheme"], rest[:at], rest[at + 1 :]


def _encode(part: str) -> str:
    """Percent-encode every reserved character, keeping escapes that are already there."""
    return "".join(
        piece if _ESCAPE.fullmatch(piece) else quote(piece, safe="")
        for piece in _ESCAPE.split(part)
    )


def normalize_url(url: str) -> str:
    """The URL with its user name and password percent-encoded (see :func:`resolve_url`)."""
    parts = _userinfo(url)
    if parts is None:
        return url
    scheme, userinfo, rest = parts
    user, colon, password = userinfo.partition(":")
    return f"{scheme}{_encode(user)}{':' + _encode(password) if colon else ''}@{rest}"


def mask(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print, log and store.

    It does not parse the URL the way a driver would: everything between ``://``
    and the last ``@`` is the user part, so a password with ``@``, ``:``, ``/``,
    ``#`` or ``?`` in it is hidden whole; ``password=`` in the query is hidden too.
    """
    url = str(url)
    parts = _userinfo(url)
    if parts is None:
        return _SECRET_QUERY.sub(r"\1***", url)
    scheme, userinfo, rest = parts
    user, colon, _ = userinfo.partition(":")
    if "@" in user:  # user@secret@host: no telling what is the password
        user, colon = "***", ""
    rest = _SECRET_QUERY.sub(r"\1***", rest)
    return f"{scheme}{user}{':***' if colon else ''}@{rest}"


def is_proxy(url: str) -> bool:
    """Whether ``url`` names an ``hpo proxy`` (``grpc://...``) rather than a database."""
    return str(url)[: len(GRPC_SCHEME)].lower() == GRPC_SCHEME


def proxy_address(url: str) -> tuple[str, int]:
    """(host, port) of a ``grpc://HOST:PORT`` URL; anything else in it is refused in one line."""
    match = _GRPC.match(str(url).strip()) if is_proxy(url) else None
    port = int(match["port"]) if match else 0
    if match is None or not 0 < port < 65536:
        raise StorageError(
            f"malformed proxy URL {mask(url)!r}: use grpc://HOST:PORT as `hpo proxy` prints "
            "it (a port from 1 to 65535; no user, password, path or query: the proxy has none)"
        )
    return match["host"].strip("[]"), port


def parse(url: str):
    """A database URL as SQLAlchemy reads it (a ``grpc://`` proxy URL is no database URL)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(
            f"malformed storage URL {mask(url)!r}: use sqlite:///studies.db, "
            "postgresql://user:password@host/db, mysql+pymysql://user:password@host/db or "
            "grpc://HOST:PORT (an hpo proxy)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        raise StorageError(
            f"unsupported storage {parsed.get_backend_name()!r} in {mask(url)!r}: "
            "use sqlite, postgresql, mysql+pymysql or grpc (an hpo proxy)"
        )
    return parsed


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for other databases and proxies."""
    if is_proxy(url):
        proxy_address(url)  # a malformed one is refused here too
        return None
    parsed = parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise StorageError("an in-memory SQLite store cannot be shared by workers: name a file")
    return Path(parsed.database)
