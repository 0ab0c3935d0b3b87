"""``runbook db prune``: what is finished and old goes, with everything hanging from it; nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from runner.catalog.live import Loaded
from runner.records import RunStatus
from runner.store import Store, retention
from runner.store.engine import create_engine, parse_url
from runner.store.tables import alerts, incident_timeline, incidents, outbox, run_steps, run_timeline, runs
from tests.integration.notify.test_report import active, cli, finish, post, run_id  # noqa: F401 (the fixture)

NINETY_DAYS = timedelta(days=90)


def rows(url: str, table: sa.Table, column: sa.Column[str], value: str) -> int:
    """How many rows of *table* have *column* == *value*."""
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)
                                          .where(column == value)).scalar_one())
    finally:
        engine.dispose()


def test_prune_removes_old_finished_history_and_keeps_what_is_open_or_recent(
    store_url: str, active: Loaded,  # noqa: F811
) -> None:
    old, recent = datetime.now(UTC) - timedelta(days=100), datetime.now(UTC) - timedelta(days=1)
    with Store(store_url) as store:
        fixed = post(store, active, "Fixes", "old-fixed", old)  # fixed and resolved 100 days ago: goes
        finish(store, run_id(fixed), RunStatus.SUCCEEDED, at=old)
        resolved = post(store, active, "Fixes", "old-fixed", old + timedelta(minutes=10), status="resolved")
        escalated = post(store, active, "Breaks", "old-escalated", old)  # failed, escalated, resolved: goes
        finish(store, run_id(escalated), RunStatus.FAILED, at=old)
        broken = post(store, active, "Breaks", "old-open", old)  # failed, escalated, never resolved: stays
        finish(store, run_id(broken), RunStatus.FAILED, at=old)
        assert store.fire_due_escalations(now=old + timedelta(hours=1))  # both page their owner
        post(store, active, "Breaks", "old-escalated", old + timedelta(hours=2), status="resolved")
        waiting = post(store, active, "ApproveMe", "old-waiting", old, host="web-2")  # still awaits: stays
        new = post(store, active, "Fixes", "recent", recent)  # resolved yesterday: stays
        finish(store, run_id(new), RunStatus.SUCCEEDED, at=recent)
        post(store, active, "Fixes", "recent", recent + timedelta(minutes=5), status="resolved")
        assert fixed.incident_id and escalated.incident_id and broken.incident_id and waiting.incident_id
        assert new.incident_id
        gone = [(run_id(stored), stored.incident_id) for stored in (fixed, escalated)]
        for run, incident in gone:
            found = store.get_incident(incident)
            assert found is not None and found.status.value == "resolved"
            assert rows(store_url, run_timeline, run_timeline.c.run_id, run) > 0
            assert rows(store_url, incident_timeline, incident_timeline.c.incident_id, incident) > 0
        messages = len(store.outbox(escalated.incident_id))
        assert messages > 0 and store.outbox(broken.incident_id) != []  # the escalations paged

        would = store.prune(NINETY_DAYS, dry_run=True)
        assert would == retention.Pruned(incidents=2, runs=2, alerts=4, messages=messages)
        assert store.get_run(run_id(fixed)) is not None  # a dry run removes nothing

        assert store.prune(NINETY_DAYS) == would
        for run, incident in gone:
            assert store.get_run(run) is None and store.get_incident(incident) is None
            for table, column, value in (
                (runs, runs.c.id, run), (run_steps, run_steps.c.run_id, run),
                (run_timeline, run_timeline.c.run_id, run), (incidents, incidents.c.id, incident),
                (incident_timeline, incident_timeline.c.incident_id, incident),
                (outbox, outbox.c.incident_id, incident), (alerts, alerts.c.incident_id, incident),
            ):
                assert rows(store_url, table, column, value) == 0, table.name
        assert store.count_alerts(fingerprint="old-fixed") == 0 and resolved.id
        assert store.outbox(broken.incident_id) != []  # the open incident keeps its messages

        kept_failed, kept_waiting = store.get_run(run_id(broken)), store.get_run(run_id(waiting))
        assert kept_failed is not None and kept_failed.status is RunStatus.FAILED
        assert kept_waiting is not None and kept_waiting.status is RunStatus.AWAITING_APPROVAL
        assert store.get_run(run_id(new)) is not None
        for kept in (broken, waiting, new):
            assert kept.incident_id and store.get_incident(kept.incident_id) is not None
        assert store.count_alerts(fingerprint="old-open") == 1
        assert store.count_alerts(fingerprint="recent") == 2

        assert store.prune(NINETY_DAYS) == retention.Pruned()  # nothing more to do
        shorter = store.prune(timedelta(hours=1))  # yesterday's resolved incident is now old enough
        assert (shorter.incidents, shorter.runs, shorter.alerts) == (1, 1, 2)
        assert store.get_run(run_id(new)) is None and store.get_run(run_id(broken)) is not None


def test_prune_works_in_batches(sqlite_store_url: str, active: Loaded, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    old = datetime.now(UTC) - timedelta(days=100)
    monkeypatch.setattr(retention, "BATCH", 2)
    with Store(sqlite_store_url) as store:
        ids = []
        for n in range(5):
            stored = post(store, active, "Fixes", f"f{n}", old, host="web-1" if n % 2 else "web-2")
            finish(store, run_id(stored), RunStatus.SUCCEEDED, at=old)
            post(store, active, "Fixes", f"f{n}", old + timedelta(minutes=1), status="resolved")
            ids.append(run_id(stored))
        would = store.prune(NINETY_DAYS, dry_run=True)
        assert would == retention.Pruned(incidents=5, runs=5, alerts=10)
        assert store.prune(NINETY_DAYS) == would
        assert all(store.get_run(i) is None for i in ids)


def test_the_command_refuses_a_short_age_and_reports_counts(sqlite_store_url: str) -> None:
    short = cli(sqlite_store_url, "db", "prune", "--older-than", "10m")
    assert short.returncode == 2 and "less than a day: give at least 1d" in short.stderr
    bad = cli(sqlite_store_url, "db", "prune", "--older-than", "ninety days")
    assert bad.returncode == 2 and "is not a duration like" in bad.stderr
    dry = cli(sqlite_store_url, "db", "prune", "--older-than", "90d", "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {"dry_run": True, "older_than": "90d", "incidents": 0, "runs": 0,
                                      "alerts": 0, "messages": 0}
    done = cli(sqlite_store_url, "db", "prune", "--older-than", "90d")
    assert done.stdout.strip() == ("removed 0 run(s), 0 incident(s) with 0 message(s), 0 alert(s) "
                                   "older than 90d")
