"""Fixtures shared by the test modules: throw-away databases on the local servers, and a
temporary folder that an unprivileged user may use too."""

from databases import postgres_url, server_url  # noqa: F401  (pytest fixtures)
from readonly import shared_tmp  # noqa: F401  (pytest fixture)
