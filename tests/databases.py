"""Throw-away PostgreSQL and MariaDB databases on the local servers, for real-database tests.

A test that uses them skips, with the reason, only when no server answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
MYSQL_ADMIN = {
    "host": "127.0.0.1",
    "port": 3306,
    "user": "root",
    "password": "",
    "connect_timeout": 3,
}


@contextmanager
def postgres_database(password: str = "") -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432 ({str(exc).strip()})")
    name = f"hpo_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    auth = f"postgres:{password}" if password else "postgres"
    try:
        yield f"postgresql://{auth}@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def mysql_database() -> Iterator[str]:
    import pymysql

    try:
        admin = pymysql.connect(**MYSQL_ADMIN, autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"no MariaDB/MySQL server answers at 127.0.0.1:3306 ({exc})")
    name = f"hpo_test_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request) -> Iterator[str]:
    with postgres_database() if request.param == "postgresql" else mysql_database() as url:
        yield url
