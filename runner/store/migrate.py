"""Schema revisions: apply the Alembic migrations kept in this package, or say why not."""

from __future__ import annotations

import logging
import threading
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from runner.errors import StoreError

log = logging.getLogger("runner.store.migrate")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_TIMEOUT_S = 10.0  # PostgreSQL: how long a migration waits for a table lock before it gives up


def _not_context_chatter(record: logging.LogRecord) -> bool:
    """Alembic says which dialect it uses each time it reads the schema's revision (every /readyz
    probe); keep what it says about migrations it runs, drop that."""
    return not str(record.msg).startswith(("Context impl ", "Will assume "))


logging.getLogger("alembic.runtime.migration").addFilter(_not_context_chatter)

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
    """Migrate the database up to *revision* (the latest by default); nothing to do is fine.

    A database a newer runbook-runner already migrated is left as it is, when its schema still
    serves this version (see :func:`problem`); otherwise StoreError says why.
    """
    if revision == "head":
        found = current(engine)
        if found is not None and not known(found):
            _refuse_unless_compatible(engine, found)
            return
    with _ALEMBIC_LOCK, engine.connect() as connection:
        command.upgrade(_config(connection), revision)


def problem(engine: sa.Engine, where: str) -> str | None:
    """Why this version cannot use the database now, or None.

    At our revision: fine. At an older one of ours: it needs ``runbook db upgrade``. At one we do
    not know, a newer runbook-runner migrated it: fine while its ``schema_compat.min_revision``
    is one we know (migrations only add, so older processes keep working during a rolling
    upgrade), refused once a newer migration removed or changed what we use.
    """
    revision = current(engine)
    expected = head()
    if revision is None or revision == expected:
        return None
    if known(revision):
        return (f"the database {where} is at schema revision {revision} but this runbook-runner needs "
                f"{expected}: run `runbook db upgrade`")
    minimum = min_revision(engine)
    if minimum is not None and known(minimum):
        return None
    needs = f"needs runbook-runner with migration {minimum} or later" if minimum else \
        "was migrated by a newer version"
    return (f"the database {where} is at schema revision {revision}, unknown to this runbook-runner "
            f"(which knows up to {expected}): it {needs}; upgrade this process")


def min_revision(engine: sa.Engine) -> str | None:
    """The oldest code revision the schema serves (migration 0007), None before that table existed."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("schema_compat"):
            return None
        value = connection.execute(sa.text("SELECT min_revision FROM schema_compat WHERE id = 1")).scalar()
    return None if value is None else str(value)


def _refuse_unless_compatible(engine: sa.Engine, revision: str, where: str | None = None) -> None:
    where = where or engine.url.render_as_string(hide_password=True)
    reason = problem(engine, where)
    if reason is not None:
        raise StoreError(reason)
    log.warning("the database %s is at schema revision %s, newer than this runbook-runner's %s; it still "
                "serves this version (migrations only add): using it as it is", where, revision, head())


def ensure_current(engine: sa.Engine, where: str) -> None:
    """Migrate a database never migrated before; refuse one this version cannot use (:func:`problem`)."""
    revision = current(engine)
    if revision is None:
        upgrade(engine)
    elif revision != head():
        _refuse_unless_compatible(engine, revision, where)
