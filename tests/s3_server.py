"""A real S3-compatible server for the artifact-store tests: moto's, over HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

#: What boto3 reads to reach the server: its endpoint and throwaway credentials.
BUCKET = "hpo-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[dict[str, str]]:
    """The environment that points boto3 at a running server holding an empty bucket BUCKET."""
    pytest.importorskip("moto", reason="the S3 tests need the test extras (moto[server])")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "hpo-test",
        "AWS_SECRET_ACCESS_KEY": "hpo-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    _client(env).create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        server.stop()


def _client(env: dict[str, str]):
    """A boto3 S3 client for the server ``env`` points at."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def objects(env: dict[str, str], prefix: str = "") -> dict[str, bytes]:
    """Every object in BUCKET under ``prefix``: key -> content."""
    client = _client(env)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listed
    }
