"""Every migration only adds: old workers still running keep working while ``runbook db upgrade`` runs.

A rolling upgrade migrates the database while processes of the previous version are still up;
they insert and update with the columns they know. So a migration may add tables, indexes and
columns that are nullable or have a server default, and may not drop, rename or retype what the
previous revision had, nor make a column NOT NULL without a default. Checked here for each step.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from runner.errors import StoreError
from runner.store import Store, migrate
from runner.store.engine import create_engine, parse_url

Schema = dict[str, dict[str, dict[str, Any]]]  # table -> column -> what matters of it


def revisions() -> list[str]:
    """Our revisions, oldest first."""
    return [s.revision for s in reversed(list(migrate._scripts().walk_revisions()))]


def schema(engine: sa.Engine) -> Schema:
    """Tables and columns as the database describes them (alembic's own table left out)."""
    inspector = sa.inspect(engine)
    found: Schema = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        found[table] = {c["name"]: {"type": str(c["type"]).split("(")[0], "nullable": c["nullable"],
                                    "default": c.get("default")} for c in inspector.get_columns(table)}
    return found


def test_there_are_migrations_to_check() -> None:
    assert len(revisions()) >= 6 and revisions()[-1] == migrate.head()


@pytest.mark.parametrize("step", range(1, len(revisions())), ids=lambda i: f"{revisions()[i]}")
def test_each_migration_only_adds(store_url: str, step: int) -> None:
    before_revision, after_revision = revisions()[step - 1], revisions()[step]
    engine = create_engine(parse_url(store_url))
    try:
        migrate.upgrade(engine, before_revision)
        before = schema(engine)
        migrate.upgrade(engine, after_revision)
        after = schema(engine)
    finally:
        engine.dispose()
    problems = []
    for table, columns in before.items():
        if table not in after:
            problems.append(f"table {table} dropped")
            continue
        for name, column in columns.items():
            now = after[table].get(name)
            if now is None:
                problems.append(f"{table}.{name} dropped or renamed")
            elif now["type"] != column["type"]:
                problems.append(f"{table}.{name} retyped {column['type']} -> {now['type']}")
            elif column["nullable"] and not now["nullable"] and now["default"] is None:
                problems.append(f"{table}.{name} made NOT NULL without a default")
        for name in after[table].keys() - columns.keys():
            added = after[table][name]
            if not added["nullable"] and added["default"] is None:
                problems.append(f"{table}.{name} added NOT NULL without a server default: "
                                f"inserts of the previous version fail")
    assert problems == [], f"{before_revision} -> {after_revision}: " + "; ".join(problems)


def test_an_upgrade_blocked_by_a_running_worker_gives_up_instead_of_stalling_everyone(
    postgresql_store_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(parse_url(postgresql_store_url))
    try:
        migrate.upgrade(engine, "0003")  # the old version's schema, with its workers up
        monkeypatch.setattr(migrate, "LOCK_TIMEOUT_S", 0.5)
        with engine.connect() as old_worker, old_worker.begin():
            old_worker.execute(sa.text("SELECT count(*) FROM runs"))  # a long transaction on runs
            with Store(postgresql_store_url) as store, pytest.raises(StoreError) as blocked:
                store.upgrade()
        assert "cannot upgrade the database schema: canceling statement due to lock timeout" in str(
            blocked.value)
        assert migrate.current(engine) == "0003"  # nothing half done: the migration rolled back
        with Store(postgresql_store_url) as store:  # the transaction ended: the upgrade goes through
            store.upgrade()
        assert migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()
