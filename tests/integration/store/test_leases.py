"""Leases across machines: on PostgreSQL their times come from the database's clock, not the hosts'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from runner.catalog.live import Loaded
from runner.errors import StoreError
from runner.records import RunStatus, StepRecord, StepStatus
from runner.store import Store, queue
from runner.store.engine import create_engine, parse_url
from runner.store.queue import Lease
from runner.store.tables import runs
from tests.integration.store.test_queue import active, manual  # noqa: F401 (the fixture)

WORKER = "worker@a:1:1:x"


def lease(seconds: float) -> Lease:
    """A lease of one worker, ending *seconds* from now by this host's clock."""
    return Lease(WORKER, datetime.now(UTC) + timedelta(seconds=seconds))


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


def test_a_run_claimed_again_by_the_same_worker_fences_off_its_first_execution(
    store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(store_url) as store:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(-1), run_id=record.id)  # attempt 1; its lease lapses (a long stall)
        assert store.recover(idempotent=lambda _: True) == [(record.id, RunStatus.QUEUED, 1)]
        assert store.claim(lease(15), run_id=record.id)  # the same worker's idle thread takes it again
        # The stalled first execution renews: only the second claim is still held.
        assert store.renew(lease(15), [(record.id, 1), (record.id, 2)]) == {(record.id, 2): False}
        step = StepRecord(index=1, name="ping", kind="step", host="web-1", status=StepStatus.OK)
        store.save_step(record.id, step, worker=WORKER, attempt=1)  # ignored
        assert store.set_status(record.id, RunStatus.FAILED, worker=WORKER, attempt=1) is False
        current = store.get_run(record.id)
        assert current is not None and (current.status, current.attempts, current.steps) == (
            RunStatus.RUNNING, 2, [])
        store.save_step(record.id, step, worker=WORKER, attempt=2)
        assert store.set_status(record.id, RunStatus.SUCCEEDED, worker=WORKER, attempt=2) is True
        done = store.get_run(record.id)
        assert done is not None and done.status is RunStatus.SUCCEEDED and len(done.steps) == 1


def test_a_stalled_worker_cannot_write_steps_into_its_interrupted_run(
    store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(store_url) as store:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(-1), run_id=record.id)
        assert store.recover(idempotent=lambda _: False) == [(record.id, RunStatus.INTERRUPTED, 1)]
        step = StepRecord(index=1, name="ping", kind="step", host="web-1", status=StepStatus.OK)
        store.save_step(record.id, step, worker=WORKER, attempt=1)
        interrupted = store.get_run(record.id)
        assert interrupted is not None and interrupted.steps == []


def test_a_renewal_that_commits_while_recovery_decides_keeps_the_run(
    postgresql_store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(postgresql_store_url) as store, Store(postgresql_store_url) as worker:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(-1), run_id=record.id)
        renewed = []

        def renews_meanwhile(_: str) -> bool:  # called after recovery read the lapsed lease
            renewed.append(worker.renew(lease(15), [(record.id, 1)]))
            return True

        assert store.recover(idempotent=renews_meanwhile) == []
        assert renewed == [{(record.id, 1): False}]  # the renewal was told it still holds the run
        current = store.get_run(record.id)
        assert current is not None and (current.status, current.claimed_by) == (RunStatus.RUNNING, WORKER)


def test_a_renewal_that_would_wait_fails_instead_so_the_heartbeat_can_fence_itself(
    postgresql_store_url: str, active: Loaded, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setattr(queue, "RENEW_TIMEOUT_S", 0.5)
    with Store(postgresql_store_url) as store:
        record = manual(store, active, "plain", "web-1")
        assert store.claim(lease(15), run_id=record.id)
        engine = create_engine(parse_url(postgresql_store_url))
        try:
            with engine.connect() as other, other.begin():  # something holds the run's row, and hangs
                other.execute(sa.select(runs.c.id).where(runs.c.id == record.id).with_for_update())
                with pytest.raises(StoreError, match="cannot renew the lease: canceling statement due to "
                                                     "statement timeout"):
                    store.renew(lease(15), [(record.id, 1)])
            assert store.renew(lease(15), [(record.id, 1)]) == {(record.id, 1): False}  # and it recovers
        finally:
            engine.dispose()
