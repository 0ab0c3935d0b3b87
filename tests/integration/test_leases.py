"""Leases across machines: on PostgreSQL their times come from the database's clock, not the hosts'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from runner.service import Loaded
from runner.store import Store, queue
from runner.store.engine import create_engine, parse_url
from runner.store.queue import Lease
from runner.store.tables import runs
from tests.integration.test_queue import active, manual  # noqa: F401 (the fixture)


def lease(seconds: float) -> Lease:
    """A lease of one worker, ending *seconds* from now by this host's clock."""
    return Lease("worker@a:1:1:x", datetime.now(UTC) + timedelta(seconds=seconds))


def test_a_host_whose_clock_runs_ahead_does_not_take_over_a_live_lease(
    postgresql_store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(postgresql_store_url) as store:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(15), run_id=record.id)
    engine = create_engine(parse_url(postgresql_store_url))
    try:
        with engine.begin() as connection:
            db_now, until = connection.execute(sa.select(sa.func.now(), runs.c.lease_until)
                                               .where(runs.c.id == record.id)).one()
            assert timedelta(seconds=13) < until - db_now < timedelta(seconds=16)  # 15 s by the database
            skewed = datetime.now(UTC) + timedelta(minutes=2)  # a recovering host two minutes ahead
            assert queue.recover(connection, skewed, idempotent=lambda name: False) == []
            queue.renew(connection, lease(-1), [record.id])  # the worker renews once more, too late
            [(run_id, status, _)] = queue.recover(connection, datetime.now(UTC), idempotent=lambda _: False)
        assert (run_id, status.value) == (record.id, "interrupted")
    finally:
        engine.dispose()


def test_on_sqlite_one_machine_has_one_clock(sqlite_store_url: str, active: Loaded) -> None:  # noqa: F811
    with Store(sqlite_store_url) as store:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(15), run_id=record.id)
    engine = create_engine(parse_url(sqlite_store_url))
    try:
        with engine.begin() as connection:
            assert queue.recover(connection, datetime.now(UTC), idempotent=lambda name: False) == []
            later = datetime.now(UTC) + timedelta(seconds=16)
            [(run_id, _, _)] = queue.recover(connection, later, idempotent=lambda name: False)
        assert run_id == record.id
    finally:
        engine.dispose()
