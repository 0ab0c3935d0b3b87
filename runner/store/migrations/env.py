"""Alembic environment of the run store: one transaction, one migrator at a time.

The store runs this with a connection in ``config.attributes["connection"]``;
no alembic.ini is involved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from runner.errors import StoreError
from runner.store import migrate
from runner.store.engine import WRITE_OPTION, create_engine, parse_url
from runner.store.tables import metadata

# Any fixed number: every runbook-runner migrating a PostgreSQL database waits on the same lock.
ADVISORY_LOCK_KEY = 0x72756E626F6F6B  # "runbook"


def run_migrations(connection: sa.Connection) -> None:
    """Apply the requested migrations in one transaction, holding the migration lock."""
    connection.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
    with connection.begin():
        if connection.dialect.name == "postgresql":
            # Held until commit: a concurrent migrator waits, then finds the database up to date.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            # A migration's ALTER TABLE queues behind the transactions of running workers, and every
            # query after it queues behind the ALTER: give up early rather than stall the fleet.
            connection.execute(sa.text(f"SET LOCAL lock_timeout = '{int(migrate.LOCK_TIMEOUT_S * 1000)}ms'"))
        context.configure(connection=connection, target_metadata=metadata)
        context.run_migrations()


def main() -> None:
    """Entry point alembic calls: use the given connection, or open one from sqlalchemy.url."""
    given = context.config.attributes.get("connection")
    if given is not None:
        run_migrations(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise StoreError("run the migrations through runner.store (runbook db upgrade)")
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


main()
