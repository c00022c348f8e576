"""Fixtures shared by the test modules: throw-away databases on the local servers."""

from databases import postgres_url, server_url  # noqa: F401  (pytest fixtures)
