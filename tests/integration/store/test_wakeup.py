"""LISTEN/NOTIFY wakes idle workers on PostgreSQL when any process queues a run; polling is the fallback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from runner.catalog.live import Loaded
from runner.records import RunStatus
from runner.runs.worker import WorkerPool
from runner.store import Store, wakeup
from runner.store.engine import create_engine, parse_url
from tests.integration.conftest import POSTGRES_URL
from tests.integration.store.test_queue import active, manual  # noqa: F401 (the fixture)

WAIT = 30.0  # seconds a test waits for what should come at once; far below any poll it sets


def wait_for(event: threading.Event | None = None, *, until: object = None) -> bool:
    """Wait up to WAIT seconds for *event*, or for the callable *until* to answer True."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if event is not None and event.is_set():
            return True
        if callable(until) and until():
            return True
        time.sleep(0.02)
    return False


class Counter:
    """Counts wake-ups; ``woken`` is set at each."""

    def __init__(self) -> None:
        self.count = 0
        self.woken = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.woken.set()


@pytest.fixture
def listening(postgresql_store_url: str) -> Iterator[tuple[Store, Counter, wakeup.Listener]]:
    """A store on PostgreSQL and a started listener on it, with its first (catch-up) wake-up consumed."""
    store = Store(postgresql_store_url)
    store.upgrade()
    counter = Counter()
    listener = store.listener(counter)
    assert listener is not None
    listener.start()
    assert wait_for(listener.listening) and wait_for(counter.woken)  # a new session catches up once
    counter.woken.clear()
    yield store, counter, listener
    listener.stop()
    store.close()


def test_sqlite_has_no_listener(sqlite_store_url: str) -> None:
    with Store(sqlite_store_url) as store:
        assert store.listener(lambda: None) is None


def test_a_run_queued_by_another_process_wakes_the_listener_on_commit_only(
    listening: tuple[Store, Counter, wakeup.Listener], postgresql_store_url: str, active: Loaded,  # noqa: F811
) -> None:
    _, counter, _ = listening
    with Store(postgresql_store_url) as other:  # its own engine and sessions, as on another machine
        engine = create_engine(parse_url(postgresql_store_url))  # announce, then roll back
        with engine.connect() as connection, connection.begin() as transaction:
            wakeup.announce(connection)
            transaction.rollback()
        engine.dispose()
        time.sleep(0.5)  # a notification of the rolled-back transaction would have arrived by now
        assert not counter.woken.is_set()
        record = manual(other, active, "plain", "web-1")
        assert record.status is RunStatus.QUEUED
        assert wait_for(counter.woken)
    assert counter.count >= 2


def test_the_listener_comes_back_after_its_session_is_killed(
    listening: tuple[Store, Counter, wakeup.Listener], postgresql_admin: sa.Engine, active: Loaded,  # noqa: F811
) -> None:
    store, counter, listener = listening
    with postgresql_admin.connect() as connection:
        killed = connection.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE :listen AND pid <> pg_backend_pid()"),
            {"listen": f'LISTEN "{wakeup.CHANNEL}:%'}).scalar()
    assert killed >= 1
    assert wait_for(until=lambda: not listener.listening.is_set())
    assert wait_for(listener.listening)  # reconnected, and caught up: one wake-up for what it missed
    assert wait_for(counter.woken)
    counter.woken.clear()
    manual(store, active, "plain", "web-2")
    assert wait_for(counter.woken)


def test_an_idle_worker_is_woken_by_notify_not_by_its_poll(
    postgresql_store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(postgresql_store_url) as store, Store(postgresql_store_url) as other:
        pool = WorkerPool(store, lambda: active, size=1, poll=WAIT * 4, listen=True)
        assert pool.idle_wait == WAIT * 4
        pool.start()
        try:
            assert pool.listener is not None and wait_for(pool.listener.listening)
            time.sleep(0.5)  # the thread found the queue empty and sleeps for a poll far beyond WAIT
            record = manual(other, active, "plain", "web-1")
            assert wait_for(until=lambda: store.get_run(record.id).status is not RunStatus.QUEUED)  # type: ignore[union-attr]
            claimed = store.get_run(record.id)
            assert claimed is not None and claimed.claimed_by == pool.name
        finally:
            pool.stop(grace=30)
        assert store.get_run(record.id).status is RunStatus.SUCCEEDED  # type: ignore[union-attr]


def test_without_listen_a_worker_polls(postgresql_store_url: str, active: Loaded) -> None:  # noqa: F811
    with Store(postgresql_store_url) as store:
        pool = WorkerPool(store, lambda: active, size=1, poll=0.05, listen=False)
        assert pool.listener is None and pool.idle_wait == 0.05
        pool.start()
        try:
            record = manual(store, active, "plain", "web-1")
            assert wait_for(until=lambda: store.get_run(record.id).status is RunStatus.SUCCEEDED)  # type: ignore[union-attr]
        finally:
            pool.stop(grace=30)


def test_a_run_queued_in_another_schema_wakes_nobody_here(
    listening: tuple[Store, Counter, wakeup.Listener], postgresql_admin: sa.Engine, active: Loaded,  # noqa: F811
) -> None:
    _, counter, _ = listening
    other = "runbook_test_other_deployment"
    with postgresql_admin.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{other}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={other}"})
    try:
        with Store(url.render_as_string(hide_password=False)) as elsewhere:
            assert manual(elsewhere, active, "plain", "web-1").status is RunStatus.QUEUED
        time.sleep(0.5)  # its notification would have arrived by now
        assert not counter.woken.is_set()
    finally:
        with postgresql_admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
