"""Where a study's artifacts live: a directory, or S3 (or an S3-compatible server like MinIO).

``--artifacts`` wins, then the ``HPO_ARTIFACTS`` environment variable, then the study's own
``artifacts`` setting; with none of them a study keeps no artifacts. A directory is shared by
mounting it on every machine (a Kubernetes volume, an NFS share); ``s3://bucket/prefix`` is
reached with boto3, which reads its endpoint (``AWS_ENDPOINT_URL`` for MinIO), keys and region
from its usual environment variables and files. The store is Optuna's own
(:class:`optuna.artifacts.FileSystemArtifactStore`, :class:`~optuna.artifacts.Boto3ArtifactStore`),
so optuna-dashboard reads what hpo writes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, Any

from hpo.errors import ConfigError, NotWritableError, StorageError

ENV_VAR = "HPO_ARTIFACTS"
#: How ``--artifacts`` is described wherever a command takes it.
ARTIFACTS_HELP = (
    f"Artifact store for models and plots: a directory or s3://bucket/prefix "
    f"[env {ENV_VAR}; default: the study's `artifacts` setting, else none]."
)
_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


def location(given: str | None, study_setting: str | None = None) -> str | None:
    """The artifact store to use: ``given``, else $HPO_ARTIFACTS, else the study's setting."""
    found = (given or os.environ.get(ENV_VAR) or study_setting or "").strip()
    return check_location(found) if found else None


def for_models(study_setting: str | None, given: str | None = None) -> Any:
    """The store a study that saves its trials' models writes to (one clear line when none)."""
    where = location(given, study_setting)
    if where is None:
        raise ConfigError(
            "the study saves its trials' models (save_models) but names no artifact store: "
            f"pass --artifacts DIR|s3://bucket/prefix, or set {ENV_VAR}"
        )
    return open_store(where, write=True)


def check_location(value: str) -> str:
    """``value`` if it names a store (a path, or s3:// with a valid bucket name); else raise."""
    if "://" in value and not _S3.match(value):
        raise ConfigError(
            f"artifact store {value!r} is neither a directory nor s3://bucket/prefix (a bucket "
            "name is 3-63 lower-case letters, digits, '.' and '-')"
        )
    return value


def open_store(where: str, *, write: bool) -> Any:
    """Optuna's artifact store at ``where``; checked, so that a wrong place fails in one line.

    ``write`` creates a missing directory (or checks the bucket takes files); a store only read
    must exist already.
    """
    check_location(where)
    match = _S3.match(where)
    if match is not None:
        return _s3_store(where, match["bucket"], (match["prefix"] or "").strip("/"))
    from optuna.artifacts import FileSystemArtifactStore

    path = Path(where).expanduser()
    if write:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NotWritableError(
                f"cannot use the artifact directory {path}: {exc.strerror or exc}"
            ) from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise NotWritableError(f"cannot write to the artifact directory {path}")
    elif not path.is_dir():
        raise StorageError(
            f"the artifact directory {path} does not exist: pass the directory the study's "
            f"artifacts were written to (--artifacts or {ENV_VAR})"
        )
    return FileSystemArtifactStore(path.resolve())


def _s3_store(where: str, bucket: str, prefix: str) -> Any:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ConfigError(
            f"the artifact store {where} needs boto3: pip install 'hpo[s3]'"
        ) from None
    from optuna.artifacts import Boto3ArtifactStore

    client = boto3.client("s3")
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as exc:
        endpoint = client.meta.endpoint_url
        raise StorageError(
            f"cannot use the artifact store {where} at {endpoint}: {exc}; check the bucket, "
            "AWS_ENDPOINT_URL and the credentials"
        ) from None
    s3 = Boto3ArtifactStore(bucket, client=client)
    return _Prefixed(s3, prefix) if prefix else s3


class _Prefixed:
    """An artifact store whose objects are kept under ``prefix/`` of another store's keys."""

    def __init__(self, store: Any, prefix: str):
        self._store, self._prefix = store, prefix

    def _key(self, artifact_id: str) -> str:
        return f"{self._prefix}/{artifact_id}"

    def open_reader(self, artifact_id: str) -> IO[bytes]:
        return self._store.open_reader(self._key(artifact_id))

    def write(self, artifact_id: str, content_body: IO[bytes]) -> None:
        self._store.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._key(artifact_id))
