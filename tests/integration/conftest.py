"""Fixtures for tests against real databases: a SQLite file, and a private PostgreSQL schema.

PostgreSQL is $RUNBOOK_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432/test, trust auth).
When it cannot be reached the PostgreSQL cases are skipped, except on CI (CI set) where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

POSTGRES_URL = os.environ.get("RUNBOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_url() -> URL:
    return make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgresql_admin() -> Iterator[sa.Engine]:
    """An engine on the test PostgreSQL database; skips (or fails on CI) when it is unreachable."""
    engine = sa.create_engine(_admin_url(), connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as e:
        engine.dispose()
        where = _admin_url().render_as_string(hide_password=True)
        reason = f"PostgreSQL unreachable at {where}: {' '.join(str(e.orig).split())}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: PostgreSQL is required)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_store_url(tmp_path: Path) -> str:
    """A store URL for a SQLite file that does not exist yet (in a directory that does)."""
    (tmp_path / "state").mkdir(exist_ok=True)
    return f"sqlite:///{tmp_path / 'state' / 'runs.db'}"


@pytest.fixture
def postgresql_store_url(postgresql_admin: sa.Engine) -> Iterator[str]:
    """A store URL for a fresh, empty PostgreSQL schema, dropped afterwards."""
    schema = f"runbook_test_{secrets.token_hex(6)}"
    with postgresql_admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with postgresql_admin.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A store URL for an empty database, once for SQLite and once for PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_store_url"))
