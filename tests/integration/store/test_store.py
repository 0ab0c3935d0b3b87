"""The run store against real databases: a SQLite file and a private PostgreSQL schema."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from runner.errors import StoreError, UsageError
from runner.records import (
    GitRevision,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    TimelineEntry,
    Trigger,
    tail,
)
from runner.store import Store, migrate
from runner.store.engine import create_engine, parse_url
from runner.store.tables import runs
from tests.conftest import ROOT

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store on an empty database (SQLite, then PostgreSQL)."""
    with Store(store_url) as store:
        yield store


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """A bare engine on the same database, to prepare it behind the store's back."""
    engine = create_engine(parse_url(store_url))
    yield engine
    engine.dispose()


def run(run_id: str, *, runbook: str = "disk-full-cleanup", status: RunStatus = RunStatus.QUEUED,
        created_at: datetime = T0, steps: list[StepRecord] | None = None) -> RunRecord:
    """A small run record."""
    return RunRecord(
        id=run_id, runbook=runbook, status=status, trigger=Trigger(kind="manual", actor="alice"),
        revision=GitRevision(commit=None), params={}, hosts=["web-1"], verdict="allow", reason="",
        created_at=created_at, steps=steps or [],
    )


def full_run(run_id: str = "7f3a9c2e4b1d4e6f8a0b1c2d3e4f5a6b") -> RunRecord:
    """A run with every field set, unicode everywhere, timestamps in another zone than UTC."""
    big = tail("ligne de sortie ✓ 磁盘已满 🚒\n" * 2000)
    return RunRecord(
        id=run_id,
        runbook="disk-full-cleanup",
        status=RunStatus.SUCCEEDED,
        trigger=Trigger(
            kind="alert",
            actor="alertmanager",
            alert={
                "labels": {"alertname": "DiskFull", "instance": "web-1:9100", "équipe": "plateforme ✓"},
                "annotations": {"summary": "磁盘已满 on /var", "runbook": ""},
                "fingerprint": "c0ffee1234567890",
                "values": [1, 2.5, None, True, {"nested": ["deep", 0]}],
            },
        ),
        revision=GitRevision(commit="1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c", dirty=True),
        params={"host": "web-1", "threshold": 90, "ratio": 0.75, "paths": ["/var/log", "/tmp"],
                "force": False, "note": "naïve café ☕", "extra": None},
        hosts=["web-1", "wéb-2"],
        verdict="allow",
        reason="within authority: 1/3 runs this hour ✓",
        dry_run=True,
        environment="prod",
        created_at=datetime(2025, 3, 14, 11, 0, 0, 123456, tzinfo=CEST),
        started_at=datetime(2025, 3, 14, 9, 0, 1, 5, tzinfo=UTC),
        finished_at=datetime(2025, 3, 14, 9, 2, 30, 999999, tzinfo=UTC),
        steps=[
            StepRecord(index=0, name="free space", kind="step", host="web-1", status=StepStatus.CHANGED,
                       changed=True, started_at=datetime(2025, 3, 14, 11, 0, 2, tzinfo=CEST),
                       finished_at=datetime(2025, 3, 14, 9, 1, 0, 250000, tzinfo=UTC), rc=0,
                       stdout=big, stderr="avertissement ⚠", message="2 fichiers supprimés", retries=2),
            StepRecord(index=0, name="free space", kind="step", host="wéb-2", status=StepStatus.UNREACHABLE,
                       message="ssh: connexion refusée"),
            StepRecord(index=1, name="disk below 80%", kind="verify", host="web-1", status=StepStatus.OK,
                       rc=None, stdout="78%"),
        ],
        timeline=[
            TimelineEntry(at=datetime(2025, 3, 14, 11, 0, 0, 123456, tzinfo=CEST), event="queued",
                          detail="alerte reçue ✓"),
            TimelineEntry(at=datetime(2025, 3, 14, 9, 0, 1, 5, tzinfo=UTC), event="running"),
            TimelineEntry(at=datetime(2025, 3, 14, 9, 2, 30, 999999, tzinfo=UTC), event="succeeded",
                          detail="vérifié"),
        ],
    )


def timestamps(record: RunRecord) -> list[datetime]:
    """Every timestamp of a record."""
    found = [record.created_at, record.started_at, record.finished_at]
    for step in record.steps:
        found += [step.started_at, step.finished_at]
    found += [entry.at for entry in record.timeline]
    return [t for t in found if t is not None]


# --- round trips -----------------------------------------------------------------------------------


def test_full_record_comes_back_equal(store: Store) -> None:
    record = full_run()
    assert len(record.steps[0].stdout) == 4096 + len("[...]")
    store.create_run(record)
    got = store.get_run(record.id)
    assert got == record
    assert all(t.tzinfo is UTC for t in timestamps(got))
    assert got.created_at == datetime(2025, 3, 14, 9, 0, 0, 123456, tzinfo=UTC)


def test_created_at_defaults_to_now(store: Store) -> None:
    record = run("run-0001")
    record.created_at = None
    before = datetime.now(UTC)
    store.create_run(record)
    got = store.get_run("run-0001")
    assert got is not None and got.created_at is not None
    assert before <= got.created_at <= datetime.now(UTC)
    assert got.trigger.alert is None and got.revision.commit is None and got.environment is None


def test_nul_in_output_is_replaced_the_same_everywhere(store: Store) -> None:
    store.create_run(run("run-0001"))
    store.save_step("run-0001", StepRecord(0, "cat", "step", "web-1", StepStatus.OK, stdout="a\x00b"))
    got = store.get_run("run-0001")
    assert got is not None and got.steps[0].stdout == "a\ufffdb"


def test_duplicate_run_is_refused(store: Store) -> None:
    store.create_run(run("run-0001"))
    with pytest.raises(StoreError, match="cannot create run run-0001"):
        store.create_run(run("run-0001"))


def test_naive_timestamp_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="timezone-aware"):
        store.create_run(run("run-0001", created_at=datetime(2025, 1, 1)))
    assert store.get_run("run-0001") is None  # nothing half-written


# --- status, steps, timeline --------------------------------------------------------------------------


def test_status_transitions_stamp_start_and_finish_once(store: Store) -> None:
    store.create_run(run("run-0001"))
    t = [T0 + timedelta(minutes=i) for i in range(6)]

    store.set_status("run-0001", RunStatus.AWAITING_APPROVAL, at=t[1])
    got = store.get_run("run-0001")
    assert got is not None and (got.started_at, got.finished_at) == (None, None)

    store.set_status("run-0001", RunStatus.RUNNING, detail="approved by bob", at=t[2])
    store.set_status("run-0001", RunStatus.RUNNING, detail="retry", at=t[3])
    got = store.get_run("run-0001")
    assert got is not None
    assert (got.status, got.started_at, got.finished_at) == (RunStatus.RUNNING, t[2], None)

    assert store.set_status("run-0001", RunStatus.SUCCEEDED, at=t[4].astimezone(CEST)) is True
    # A final status is final: a late writer (a worker that lost its lease) changes nothing.
    assert store.set_status("run-0001", RunStatus.INTERRUPTED, detail="late signal", at=t[5]) is False
    got = store.get_run("run-0001")
    assert got is not None
    assert (got.status, got.started_at, got.finished_at) == (RunStatus.SUCCEEDED, t[2], t[4])
    assert [(e.event, e.detail, e.at) for e in got.timeline] == [
        ("awaiting_approval", "", t[1]),
        ("running", "approved by bob", t[2]),
        ("running", "retry", t[3]),
        ("succeeded", "", t[4]),
    ]


def test_status_of_unknown_run_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no run nope"):
        store.set_status("nope", RunStatus.RUNNING)


def test_set_status_defaults_to_now(store: Store) -> None:
    store.create_run(run("run-0001"))
    before = datetime.now(UTC)
    store.set_status("run-0001", RunStatus.RUNNING)
    got = store.get_run("run-0001")
    assert got is not None and got.started_at is not None
    assert before <= got.started_at <= datetime.now(UTC)
    assert got.timeline[-1].at == got.started_at


def test_save_step_inserts_then_updates(store: Store) -> None:
    store.create_run(run("run-0001"))
    started = T0 + timedelta(seconds=1)
    first = StepRecord(0, "clean", "step", "web-1", StepStatus.RUNNING, started_at=started)
    store.save_step("run-0001", first)
    store.save_step("run-0001", StepRecord(1, "check", "verify", "web-1", StepStatus.RUNNING))
    done = StepRecord(0, "clean", "step", "web-1", StepStatus.CHANGED, changed=True, started_at=started,
                      finished_at=started + timedelta(seconds=3), rc=0, stdout="freed 2 GB", stderr="w",
                      message="ok", retries=1)
    store.save_step("run-0001", done)
    got = store.get_run("run-0001")
    assert got is not None
    assert got.steps == [done, StepRecord(1, "check", "verify", "web-1", StepStatus.RUNNING)]


def test_steps_are_ordered_by_index_then_host(store: Store) -> None:
    store.create_run(run("run-0001"))
    hosts = ["web-b", "Web-a", "web-a", "ébène", "db-1"]
    for index in (1, 0):
        for host in hosts:
            store.save_step("run-0001", StepRecord(index, "s", "step", host, StepStatus.OK))
    got = store.get_run("run-0001")
    assert got is not None
    # Code-point order on both databases, whatever the PostgreSQL locale.
    assert [(s.index, s.host) for s in got.steps] == [(i, h) for i in (0, 1) for h in sorted(hosts)]


def test_step_of_unknown_run_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="cannot save step 0 on web-1 of run nope"):
        store.save_step("nope", StepRecord(0, "s", "step", "web-1", StepStatus.OK))


def test_timeline_keeps_the_order_of_writing(store: Store) -> None:
    store.create_run(run("run-0001"))
    for i, event in enumerate(["first", "second", "third"]):
        # Clocks may go backwards; the order of writing is what counts.
        store.add_timeline("run-0001", event, detail=f"#{i}", at=T0 - timedelta(minutes=i))
    store.add_timeline("run-0001", "fourth")
    got = store.get_run("run-0001")
    assert got is not None
    assert [(e.event, e.detail) for e in got.timeline] == [
        ("first", "#0"), ("second", "#1"), ("third", "#2"), ("fourth", "")]
    assert got.timeline[1].at == T0 - timedelta(minutes=1)


def test_timeline_of_unknown_run_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="run nope"):
        store.add_timeline("nope", "event")


# --- listing and lookup ------------------------------------------------------------------------------


def test_list_runs_filters_and_orders(store: Store) -> None:
    minute = timedelta(minutes=1)
    step = StepRecord(0, "s", "step", "web-1", StepStatus.OK)
    store.create_run(run("r1", runbook="a", status=RunStatus.SUCCEEDED, created_at=T0, steps=[step]))
    store.create_run(run("r2", runbook="b", status=RunStatus.FAILED, created_at=T0 + minute))
    store.create_run(run("r3", runbook="a", status=RunStatus.FAILED, created_at=T0 + 2 * minute))
    store.create_run(run("r4", runbook="a", status=RunStatus.RUNNING, created_at=T0 + 3 * minute))

    def ids(**filters: object) -> list[str]:
        return [r.id for r in store.list_runs(**filters)]  # type: ignore[arg-type]

    assert ids() == ["r4", "r3", "r2", "r1"]
    assert ids(runbook="a") == ["r4", "r3", "r1"]
    assert ids(runbook="c") == []
    assert ids(status=RunStatus.FAILED) == ["r3", "r2"]
    assert ids(status="failed") == ["r3", "r2"]
    assert ids(status=[RunStatus.RUNNING, RunStatus.SUCCEEDED]) == ["r4", "r1"]
    assert ids(since=T0 + minute) == ["r4", "r3", "r2"]  # inclusive
    assert ids(since=(T0 + 90 * timedelta(seconds=1)).astimezone(CEST)) == ["r4", "r3"]
    assert ids(limit=2) == ["r4", "r3"]
    assert ids(runbook="a", status=RunStatus.FAILED, since=T0) == ["r3"]
    listed = store.list_runs(runbook="a")
    assert all(r.steps == [] and r.timeline == [] for r in listed)
    assert listed[-1].created_at == T0
    with pytest.raises(UsageError, match="unknown run status 'done'"):
        store.list_runs(status="done")


def test_list_runs_default_limit(store: Store) -> None:
    for i in range(55):
        store.create_run(run(f"run-{i:04d}", created_at=T0 + timedelta(seconds=i)))
    listed = store.list_runs()
    assert len(listed) == 50 and listed[0].id == "run-0054"
    assert len(store.list_runs(limit=None)) == 55


def test_get_run_by_unique_prefix(store: Store) -> None:
    for run_id in ("a1b2c3d4e5f6", "a1b2c3ffffff", "0123456789ab", "short"):
        store.create_run(run(run_id))

    def found(key: str) -> str | None:
        record = store.get_run(key)
        return record.id if record else None

    assert found("a1b2c3d4") == "a1b2c3d4e5f6"
    assert found("a1b2c3ff") == "a1b2c3ffffff"
    assert found("012345") == "0123456789ab"
    assert found("short") == "short"  # a whole id may be shorter than a prefix
    assert found("01234") is None  # too short to stand for an id
    assert found("A1B2C3D4") is None  # ids are case-sensitive on both databases
    assert found("a1b2c_") is None  # no wildcards
    assert found("ffffffff") is None
    with pytest.raises(UsageError, match=r"ambiguous: a1b2c3d4e5f6, a1b2c3ffffff; give more characters"):
        store.get_run("a1b2c3")


# --- schema migrations --------------------------------------------------------------------------------


def test_empty_database_is_migrated_on_first_use(store_url: str) -> None:
    with Store(store_url) as store:
        assert store.revision() is None  # looking does not migrate
        assert store.list_runs() == []
        assert store.revision() == migrate.head()


def test_outdated_database_is_refused_until_upgraded(store_url: str, engine: sa.Engine) -> None:
    migrate.upgrade(engine, "0001")
    old = run("run-0001")
    with engine.begin() as connection:  # a run written by the previous version
        connection.execute(sa.insert(runs).values(
            id=old.id, runbook=old.runbook, status="succeeded", trigger_kind="manual", trigger_actor="alice",
            git_dirty=False, params={}, hosts=["web-1"], verdict="allow", reason="", dry_run=False,
            created_at=T0))
    with Store(store_url) as store:
        for use in (lambda: store.get_run("run-0001"), lambda: store.create_run(run("run-0002"))):
            with pytest.raises(StoreError, match=r"at schema revision 0001 .* run `runbook db upgrade`"):
                use()
        assert store.revision() == "0001"
        store.upgrade()
        assert store.revision() == migrate.head()
        got = store.get_run("run-0001")
        assert got is not None and got.status is RunStatus.SUCCEEDED and got.timeline == []
        store.add_timeline("run-0001", "noted")


def test_a_newer_schema_that_still_serves_this_version_is_used_as_it_is(
    store_url: str, engine: sa.Engine, caplog: pytest.LogCaptureFixture,
) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:  # a newer runbook-runner added a migration (only adding)
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0009'"))
    with Store(store_url) as store:  # an old process of a rolling upgrade keeps working
        store.create_run(full_run())
        assert store.get_run(full_run().id) == full_run()
        assert store.schema_problem() is None
        store.upgrade()  # nothing to do, and no downgrade either
        assert store.revision() == "ffff0009"
    assert "newer than this runbook-runner's" in caplog.text


def test_a_newer_schema_that_no_longer_serves_this_version_is_refused(
    store_url: str, engine: sa.Engine,
) -> None:
    migrate.upgrade(engine)
    with engine.begin() as connection:  # the newer version removed something we use
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0009'"))
        connection.execute(sa.text("UPDATE schema_compat SET min_revision = 'ffff0008'"))
    with Store(store_url) as store:
        needs = ("ffff0009, unknown to this runbook-runner .* needs runbook-runner with migration ffff0008 "
                 "or later")
        with pytest.raises(StoreError, match=needs):
            store.list_runs()
        with pytest.raises(StoreError, match=needs):
            store.upgrade()
        assert "needs runbook-runner with migration ffff0008" in (store.schema_problem() or "")


def test_a_schema_from_before_the_compat_table_at_an_unknown_revision_is_refused(
    store_url: str, engine: sa.Engine,
) -> None:
    migrate.upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0009'"))
    with Store(store_url) as store, pytest.raises(StoreError, match="ffff0009, unknown to this runbook"):
        store.list_runs()


def test_upgrade_is_idempotent(store_url: str) -> None:
    with Store(store_url) as store:
        store.upgrade()
        store.upgrade()
        store.create_run(full_run())
        store.upgrade()
        assert store.revision() == migrate.head()
        assert store.get_run(full_run().id) == full_run()


def test_concurrent_upgrades_of_an_empty_database(store_url: str) -> None:
    stores = [Store(store_url) for _ in range(3)]
    try:
        run_together([store.upgrade for store in stores])
        assert {store.revision() for store in stores} == {migrate.head()}
    finally:
        for store in stores:
            store.close()


def test_concurrent_first_use_from_several_processes(store_url: str) -> None:
    start = time.time() + 3  # past every child's imports: they all migrate at the same moment
    script = (
        "import sys, time; from runner.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "store.list_runs(); store.close()\n"
    )
    children = [subprocess.Popen([sys.executable, "-c", script, store_url, str(start)], cwd=ROOT,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    failures = [child.communicate(timeout=60)[1] for child in children if child.wait(timeout=60) != 0]
    assert failures == []
    with Store(store_url) as store:
        assert store.revision() == migrate.head()


# --- both databases, concurrency, settings, errors ---------------------------------------------------


def test_sqlite_and_postgresql_store_the_same(sqlite_store_url: str, postgresql_store_url: str) -> None:
    results = []
    for url in (sqlite_store_url, postgresql_store_url):
        with Store(url) as store:
            record = full_run()
            store.create_run(record)
            store.create_run(run("second-run", created_at=T0 - timedelta(days=1)))
            store.save_step(record.id, StepRecord(2, "Zeta ✓", "verify", "Web-3", StepStatus.FAILED, rc=3,
                                                  stderr="échec"))
            store.set_status(record.id, RunStatus.FAILED, detail="verify failed", at=T0)
            store.add_timeline(record.id, "notified", detail="#ops ✓", at=T0 + timedelta(seconds=1))
            results.append((store.get_run(record.id[:8]), store.list_runs(since=T0 - timedelta(days=2))))
    assert results[0] == results[1]
    got, listed = results[0]
    assert got is not None and [r.id for r in listed] == [got.id, "second-run"]


@pytest.mark.parametrize("shared", [False, True], ids=["store-per-thread", "shared-store"])
def test_concurrent_sqlite_writers_lose_nothing(sqlite_store_url: str, shared: bool) -> None:
    count = 60
    with Store(sqlite_store_url) as setup:
        setup.create_run(run("run-0001"))
    stores = [Store(sqlite_store_url)] * 2 if shared else [Store(sqlite_store_url) for _ in range(2)]

    def writer(n: int) -> Callable[[], None]:
        def write() -> None:
            store, host = stores[n], f"host-{n}"
            for i in range(count):
                store.save_step("run-0001", StepRecord(i, "s", "step", host, StepStatus.RUNNING))
                store.add_timeline("run-0001", f"{host}:{i}")
                store.save_step("run-0001", StepRecord(i, "s", "step", host, StepStatus.OK, retries=i))
                store.set_status("run-0001", RunStatus.RUNNING, detail=host)
        return write

    try:
        run_together([writer(0), writer(1)])
    finally:
        for store in stores:
            store.close()
    with Store(sqlite_store_url) as store:
        got = store.get_run("run-0001")
    assert got is not None
    assert len(got.steps) == 2 * count
    assert all(s.status is StepStatus.OK and s.retries == s.index for s in got.steps)
    for host in ("host-0", "host-1"):
        events = [e.event for e in got.timeline if e.event.startswith(host)]
        assert events == [f"{host}:{i}" for i in range(count)]
    assert sum(e.event == "running" for e in got.timeline) == 2 * count


def test_sqlite_connection_settings(sqlite_store_url: str) -> None:
    engine = create_engine(parse_url(sqlite_store_url))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_a_sqlite_file_is_created_in_its_directory_but_a_missing_directory_is_refused(tmp_path: Path) -> None:
    """A typo in --db must fail, not start an empty store in a directory nobody meant."""
    missing = tmp_path / "no-such-dir" / "runs.db"
    with pytest.raises(StoreError) as refused:
        Store(f"sqlite:///{missing}")
    assert str(refused.value).startswith(f"the directory of the SQLite store {missing} does not exist")
    assert not missing.parent.exists()
    path = tmp_path / "runs.db"
    with Store(f"sqlite:///{path}") as store:
        store.create_run(run("run-0001"))
    assert path.is_file()


def test_errors_never_show_the_password() -> None:
    url = "postgresql://runner:s3cr3t-Pa55@127.0.0.1:1/runbook"
    with Store(url) as store:
        assert "s3cr3t-Pa55" not in repr(store)
        with pytest.raises(StoreError) as caught:
            store.get_run("run-0001")
    message = str(caught.value)
    assert "s3cr3t-Pa55" not in message
    assert message.startswith("cannot read run run-0001: ")
    assert "runner:***@127.0.0.1:1/runbook" in message


@pytest.mark.parametrize("url, expected", [
    ("mysql://root:hunter2@db/runs", "unsupported database 'mysql'"),
    ("not a database url", "cannot parse the database URL"),
])
def test_unsupported_urls_are_refused(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=expected) as caught:
        Store(url)
    assert "hunter2" not in str(caught.value)


def run_together(functions: list[Callable[[], None]]) -> None:
    """Run *functions* in threads started at the same moment; re-raise the first error."""
    barrier = threading.Barrier(len(functions))
    errors: list[BaseException] = []

    def call(function: Callable[[], None]) -> None:
        barrier.wait()
        try:
            function()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=call, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
