"""Schema revisions: apply the Alembic migrations kept in this package, or say why not."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from runner.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_TIMEOUT_S = 10.0  # PostgreSQL: how long a migration waits for a table lock before it gives up

# Alembic's command API works through module-level proxies (alembic.context, alembic.op):
# one migration at a time per process. Other processes are held off by env.py's database lock.
_ALEMBIC_LOCK = threading.Lock()


def _config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration built in code: no alembic.ini at runtime."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this version of runbook-runner expects."""
    revision = _scripts().get_current_head()
    if revision is None:  # only if the package lost its migrations
        raise StoreError(f"no schema migrations found in {MIGRATIONS}")
    return revision


def known(revision: str) -> bool:
    """True when *revision* is one of our migrations."""
    return any(script.revision == revision for script in _scripts().walk_revisions())


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at, None when it has never been migrated."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(heads) if heads else None


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the database up to *revision* (the latest by default); nothing to do is fine."""
    with _ALEMBIC_LOCK, engine.connect() as connection:
        command.upgrade(_config(connection), revision)


def ensure_current(engine: sa.Engine, where: str) -> None:
    """Migrate a database never migrated before; refuse one at any other revision than ours."""
    revision = current(engine)
    if revision is None:
        upgrade(engine)
        return
    expected = head()
    if revision == expected:
        return
    if known(revision):
        raise StoreError(
            f"the database {where} is at schema revision {revision} but this runbook-runner needs "
            f"{expected}: run `runbook db upgrade`"
        )
    raise StoreError(
        f"the database {where} is at schema revision {revision}, unknown to this runbook-runner "
        f"(which needs {expected}): was it migrated by a newer version?"
    )
