"""`runbook report`: incidents, fixes that held, escalations and why, MTTA/MTTR, approval waits.

The data is made through the store's public API, as intake, workers and operators make it:
alerts received at chosen times (so incidents open, and resolve, when the test says), runs
claimed and finished, incidents acknowledged and resolved by hand, runs approved. What the
API stamps with the real clock (acknowledge, resolve by hand, approve) is read back from the
store to compute the exact figures expected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.alerts.sources import parse
from runner.catalog.live import CatalogHolder, Loaded
from runner.records import Incident, RunStatus
from runner.report import (
    NO_RUNBOOK,
    Group,
    Spread,
    build_report,
    percentile,
    reason_kind,
    reason_label,
    report_as_data,
)
from runner.runs.candidates import candidates, ownerships
from runner.store import Store
from runner.store.alerts import StoredAlert
from runner.store.queue import Lease
from tests.conftest import ROOT, catalog_owned_by

OWNERS = """apiVersion: runbook-runner/v1
kind: Owners
channels:
  hook: {type: webhook, url_env: T_REPORT_HOOK_URL, secret_env: T_REPORT_HOOK_SECRET}
teams:
  platform-ops:
    members: [{name: alice, email: alice@example.com}]
    primary: alice
    escalation: {levels: [{after: 0s, notify: [hook]}]}
  payments-dev:
    members: [{name: carol, email: carol@example.com}]
    primary: carol
    escalation: {levels: [{after: 0s, notify: [hook]}]}
  sre:
    members: [{name: erin, email: erin@example.com}]
    primary: erin
    escalation: {levels: [{after: 5m, notify: [hook]}]}
"""
# escalations 3, 2, then 1 each (2 incidents each: by name), then none
RUNBOOK_ORDER = ["breaks", "approve-me", NO_RUNBOOK, "limited", "fixes"]


def runbook(name: str, alertname: str, owner: str, *, max_runs: int = 10, approval: str = "none") -> str:
    return f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {name}
title: {name}
owner: {owner}
severity: warning
match:
  - alertname: {alertname}
params:
  host: {{from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}}
targets: {{hosts_from: host}}
authority:
  environments: [staging]
  max_hosts: 1
  max_runs: {{count: {max_runs}, per: 1h}}
  approval: {approval}
  timeout: 5m
steps:
  - name: ping
    task: {{ansible.builtin.ping: {{}}}}
"""


@pytest.fixture
def active(tmp_path: Path) -> Iterator[Loaded]:
    root = catalog_owned_by(tmp_path / "catalog", OWNERS, {
        "breaks.yaml": runbook("breaks", "Breaks", "platform-ops"),
        "fixes.yaml": runbook("fixes", "Fixes", "platform-ops"),
        "limited.yaml": runbook("limited", "Limited", "payments-dev", max_runs=1),
        "approve-me.yaml": runbook("approve-me", "ApproveMe", "payments-dev", approval="required"),
    }, default_owner="sre")
    holder = CatalogHolder(root)
    result = holder.reload()
    assert result.ok, result.error
    yield holder.active
    holder.close()


def post(store: Store, active: Loaded, alertname: str, fingerprint: str, at: datetime, *,
         status: str = "firing", host: str = "web-1", severity: str = "warning",
         window: timedelta | None = None) -> StoredAlert:
    """One alert, received at *at*, dispatched against the catalog as the intake does."""
    labels = {"alertname": alertname, "env": "staging", "instance": f"{host}:9100", "severity": severity}
    body = {"labels": labels, "annotations": {"summary": f"{alertname} on {host}"}, "status": status,
            "fingerprint": fingerprint}
    batch = parse("generic", body)
    extra: dict[str, Any] = {} if window is None else {"window": window}
    [stored] = store.record_alerts(batch, candidates=candidates(active, batch, at),
                                   owners=ownerships(active, batch), received_at=at, **extra)
    return stored


def run_id(stored: StoredAlert) -> str:
    assert stored.run is not None
    return stored.run.id


def finish(store: Store, run: str, status: RunStatus, at: datetime | None = None) -> None:
    """A worker claims the run and ends it in *status*."""
    assert store.claim(Lease("report-test", datetime.now(UTC) + timedelta(minutes=5)), run_id=run)
    assert store.set_status(run, status, detail=f"ended {status.value}", at=at)


@dataclass
class Scenario:
    t0: datetime
    incidents: dict[str, Incident]  # by name: b1 b2 f1 f2 f3 l1 l2 a1 a2 m1 m2
    approval_waits: list[float]


def build(store: Store, active: Loaded) -> Scenario:
    """Eleven incidents over the last day (and one 40 days ago), each with a story.

    breaks (platform-ops): b1 failed -> escalates, acknowledged, fires again, times out ->
      escalates again, resolved by hand; b2 interrupted -> escalates, the alert resolves 1h after.
    fixes (platform-ops): f1, f2, f3 fixed by a run, the alert resolving 10m, 30m and 20m after
      (f3 re-notified once: a repeat).
    limited (payments-dev, max_runs 1 per 1h): l1 runs, l2 rejected by max_runs -> escalates.
    approve-me (payments-dev, approval required): a1, a2 await approval -> escalate; both
      approved; a1 acknowledged.
    no runbook (sre, the default owner): m1 critical -> escalates; m2 a warning, does not.
    """
    t0 = datetime.now(UTC) - timedelta(days=1)
    minute, hour = timedelta(minutes=1), timedelta(hours=1)

    old = post(store, active, "Breaks", "old", datetime.now(UTC) - timedelta(days=40))
    finish(store, run_id(old), RunStatus.FAILED)  # escalates, but before the period

    b1 = post(store, active, "Breaks", "b1", t0)
    finish(store, run_id(b1), RunStatus.FAILED)
    assert b1.incident_id is not None
    store.acknowledge(b1.incident_id, "alice")
    again = post(store, active, "Breaks", "b1", t0 + hour, window=timedelta(0))  # not a repeat: a new run
    assert again.incident_id == b1.incident_id
    finish(store, run_id(again), RunStatus.TIMED_OUT)
    store.resolve_incident(b1.incident_id, "alice", "restarted the disk by hand")

    b2 = post(store, active, "Breaks", "b2", t0 + 2 * hour)
    finish(store, run_id(b2), RunStatus.INTERRUPTED, at=t0 + 2 * hour + 5 * minute)
    post(store, active, "Breaks", "b2", t0 + 3 * hour, status="resolved")

    fixed = {}
    for name, opened, after in (("f1", t0, 10), ("f2", t0 + hour, 30), ("f3", t0 + 2 * hour, 20)):
        stored = fixed[name] = post(store, active, "Fixes", name, opened)
        finish(store, run_id(stored), RunStatus.SUCCEEDED)
        if name == "f3":
            assert post(store, active, "Fixes", name, opened + minute).repeat_of == stored.id
        post(store, active, "Fixes", name, opened + after * minute, status="resolved")

    l1 = post(store, active, "Limited", "l1", t0 + 4 * hour)
    l2 = post(store, active, "Limited", "l2", t0 + 4 * hour + minute, host="web-2")
    assert l2.run is not None and l2.run.reason.startswith("max_runs: 1 run(s) of limited")

    a1 = post(store, active, "ApproveMe", "a1", t0 + 5 * hour)
    a2 = post(store, active, "ApproveMe", "a2", t0 + 6 * hour, host="web-2")
    waits = []
    for stored in (a1, a2):
        assert stored.run is not None and stored.run.status is RunStatus.AWAITING_APPROVAL
        assert store.decide(stored.run.id, "carol", approve=True) is RunStatus.QUEUED
        record = store.get_run(stored.run.id)
        assert record is not None
        stamps = {e.event: e.at for e in record.timeline}
        waits.append((stamps["approved"] - stamps["awaiting_approval"]).total_seconds())
    assert a1.incident_id is not None
    store.acknowledge(a1.incident_id, "carol")

    m1 = post(store, active, "Mystery", "m1", t0 + 7 * hour, severity="critical")
    m2 = post(store, active, "Mystery2", "m2", t0 + 7 * hour)

    stored_by_name = {"b1": b1, "b2": b2, **fixed, "l1": l1, "l2": l2, "a1": a1, "a2": a2, "m1": m1, "m2": m2}
    incidents = {}
    for name, stored in stored_by_name.items():
        assert stored.incident_id is not None
        found = store.get_incident(stored.incident_id)
        assert found is not None
        incidents[name] = found
    assert len({i.id for i in incidents.values()}) == 11
    return Scenario(t0, incidents, waits)


def seconds(start: datetime, end: datetime | None) -> float:
    assert end is not None
    return (end - start).total_seconds()


def group(groups: tuple[Group, ...], name: str) -> Group:
    return next(g for g in groups if g.name == name)


def close(spread: Spread, count: int, median: float | None, p90: float | None) -> bool:
    return spread == Spread(count, pytest.approx(median), pytest.approx(p90))


def test_the_report_counts_each_runbook_and_team_and_puts_the_most_escalating_first(
    store_url: str, active: Loaded
) -> None:
    with Store(store_url) as store:
        scenario = build(store, active)
        report = build_report(store, datetime.now(UTC) - timedelta(days=30))
    inc = scenario.incidents
    assert [g.name for g in report.runbooks] == RUNBOOK_ORDER
    assert [g.name for g in report.teams] == ["platform-ops", "payments-dev", "sre"]
    assert report.top_escalating is not None and report.top_escalating.name == "breaks"

    breaks = group(report.runbooks, "breaks").stats
    assert (breaks.alerts_received, breaks.incidents, breaks.fixes_held, breaks.escalations) == (4, 2, 0, 3)
    assert breaks.escalation_reasons == {"failed": 1, "interrupted": 1, "timed_out": 1}
    b1 = inc["b1"]
    b1_ack, b1_resolve = seconds(b1.opened_at, b1.acknowledged_at), seconds(b1.opened_at, b1.resolved_at)
    assert close(breaks.mtta, 1, b1_ack, b1_ack)
    assert close(breaks.mttr, 2, (3600 + b1_resolve) / 2, 3600 + 0.9 * (b1_resolve - 3600))
    assert breaks.approval_wait == Spread(0, None, None)

    fixes = group(report.runbooks, "fixes").stats
    assert (fixes.alerts_received, fixes.incidents, fixes.fixes_held, fixes.escalations) == (7, 3, 3, 0)
    assert fixes.escalation_reasons == {}
    assert fixes.mtta == Spread(0, None, None)
    assert fixes.mttr == Spread(3, 1200.0, 1680.0)  # 600, 1200, 1800: p90 between 1200 and 1800

    limited = group(report.runbooks, "limited").stats
    assert (limited.alerts_received, limited.incidents, limited.escalations) == (2, 2, 1)
    assert limited.escalation_reasons == {"rejected:max_runs": 1}
    assert limited.mttr == Spread(0, None, None)

    approvals = group(report.runbooks, "approve-me").stats
    assert (approvals.alerts_received, approvals.incidents, approvals.escalations) == (2, 2, 2)
    assert approvals.escalation_reasons == {"awaiting_approval": 2}
    a1_ack = seconds(inc["a1"].opened_at, inc["a1"].acknowledged_at)
    assert close(approvals.mtta, 1, a1_ack, a1_ack)
    wait_a1, wait_a2 = scenario.approval_waits  # a1 waited about an hour longer
    assert wait_a1 > wait_a2 + 3500
    assert close(approvals.approval_wait, 2, (wait_a1 + wait_a2) / 2, wait_a2 + 0.9 * (wait_a1 - wait_a2))

    unmatched = group(report.runbooks, NO_RUNBOOK).stats
    assert (unmatched.alerts_received, unmatched.incidents, unmatched.escalations) == (2, 2, 1)
    assert unmatched.escalation_reasons == {"no_runbook": 1}

    ops = group(report.teams, "platform-ops").stats
    assert (ops.alerts_received, ops.incidents, ops.fixes_held, ops.escalations) == (11, 5, 3, 3)
    mttrs = sorted([3600, 600, 1800, 1200, b1_resolve])  # b1 (resolved by hand, now) is the longest
    assert close(ops.mttr, 5, 1800, mttrs[3] + 0.6 * (mttrs[4] - mttrs[3]))
    payments = group(report.teams, "payments-dev").stats
    assert (payments.alerts_received, payments.incidents, payments.escalations) == (4, 4, 3)
    assert payments.escalation_reasons == {"awaiting_approval": 2, "rejected:max_runs": 1}
    sre = group(report.teams, "sre").stats
    assert (sre.incidents, sre.escalations, sre.escalation_reasons) == (2, 1, {"no_runbook": 1})

    total = report.total
    assert (total.alerts_received, total.incidents, total.fixes_held, total.escalations) == (17, 11, 3, 7)
    assert total.mtta.count == 2 and total.mttr.count == 5 and total.approval_wait.count == 2


def test_since_counts_only_the_incidents_opened_from_then(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        scenario = build(store, active)
        later = build_report(store, scenario.t0 + timedelta(hours=4))  # l1 opened exactly then
        everything = build_report(store, scenario.t0 - timedelta(days=60))
    assert [g.name for g in later.runbooks] == ["approve-me", NO_RUNBOOK, "limited"]
    assert (later.total.incidents, later.total.alerts_received, later.total.escalations) == (6, 6, 4)
    assert [g.name for g in later.teams] == ["payments-dev", "sre"]
    old = group(everything.runbooks, "breaks").stats  # the incident of 40 days ago, and its failure
    assert (old.incidents, old.escalations, old.escalation_reasons["failed"]) == (3, 4, 2)


def test_a_fix_that_did_not_hold_is_its_own_kind_stored_beside_the_reason(
    store_url: str, active: Loaded
) -> None:
    t0 = datetime.now(UTC) - timedelta(hours=1)
    with Store(store_url) as store:
        stored = post(store, active, "Fixes", "fp-nf", t0)
        finish(store, run_id(stored), RunStatus.SUCCEEDED, at=t0 + timedelta(minutes=1))
        store.fire_due_escalations(t0 + timedelta(minutes=12))  # past the 10 min verify window: still fires
        [started] = store.report_rows(t0).escalations
        report = build_report(store, t0)
    assert started.kind == "fix_did_not_hold"  # data beside the text, not read back out of it
    assert started.reason.startswith("the fix did not hold: the alert still fires 10 min after run")
    fixes = group(report.runbooks, "fixes").stats
    assert fixes.escalation_reasons == {"fix_did_not_hold": 1}
    assert report.total.escalation_reasons == {"fix_did_not_hold": 1}
    assert reason_label("fix_did_not_hold") == "the fix did not hold"


def test_an_empty_period_reports_zeros_and_no_medians(store_url: str) -> None:
    with Store(store_url) as store:
        report = build_report(store, datetime.now(UTC) - timedelta(days=30))
    assert report.runbooks == () and report.teams == () and report.top_escalating is None
    assert report.total.incidents == 0 and report.total.mttr == Spread(0, None, None)
    data = report_as_data(report)
    assert data["total"]["mtta"] == {"count": 0, "median": None, "p90": None}
    assert data["top_escalating_runbook"] is None


@pytest.mark.parametrize(("reason", "kind"), [
    ("run 3f2a9c0b1d2e failed: step 'Remove them' failed on web-1 (rc 1): boom", "failed"),
    ("run 3f2a9c0b1d2e timed out: the run took longer than 5m", "timed_out"),
    ("run 3f2a9c0b1d2e interrupted: worker w stopped without finishing the run", "interrupted"),
    ("run 3f2a9c0b1d2e of disk-full-cleanup was rejected: max_runs: 3 run(s) of disk-full-cleanup in the "
     "last 1h (limit 3 per 1h)", "rejected:max_runs"),
    ("run 3f2a9c0b1d2e of x was rejected: cooldown: the last run on web-1 ended at ...", "rejected:cooldown"),
    ("run 3f2a9c0b1d2e of x was rejected: concurrency: 1 run(s) of x already queued", "rejected:concurrency"),
    ("run 3f2a9c0b1d2e of x was rejected: 4 hosts exceed max_hosts 3", "rejected:max_hosts"),
    ("run 3f2a9c0b1d2e of x was rejected: environment 'staging' is outside the runbook's authority (prod)",
     "rejected:environment"),
    ("run 3f2a9c0b1d2e of x was rejected: param host: 'web 1' does not match", "rejected"),
    ("run 3f2a9c0b1d2e of restart-service awaits approval: the runbook requires approval",
     "awaiting_approval"),
    ("no runbook matches this critical alert", "no_runbook"),
    ("the fix did not hold: the alert still fires 10 min after run 3f2a9c0b1d2e succeeded",
     "fix_did_not_hold"),
    ("something new", "other"),
])
def test_escalation_reasons_sort_into_kinds(reason: str, kind: str) -> None:
    """Escalations an older version stored without their trigger: the kind is read from the words."""
    assert reason_kind(reason) == kind


@pytest.mark.parametrize(("reason", "trigger", "kind"), [
    ("worded in a way no pattern knows", "failed", "failed"),
    ("worded in a way no pattern knows", "fix_did_not_hold", "fix_did_not_hold"),
    ("worded in a way no pattern knows", "unmatched", "no_runbook"),  # the report's name for it
    # a rejection's limit is its kind, stored beside the words, never read back out of them
    ("worded in a way no pattern knows", "rejected:cooldown", "rejected:cooldown"),
    ("run 3f2a9c0b1d2e of x was rejected: cooldown: the last run on web-1 ended at ...", "rejected",
     "rejected"),
])
def test_the_stored_trigger_decides_the_kind(reason: str, trigger: str, kind: str) -> None:
    assert reason_kind(reason, trigger) == kind


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert percentile([float(n) for n in range(1, 11)], 0.9) == pytest.approx(9.1)


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNBOOK_DB_URL": db_url}
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_the_command_prints_json_and_tables(sqlite_store_url: str, active: Loaded) -> None:
    with Store(sqlite_store_url) as store:
        build(store, active)

    proc = cli(sqlite_store_url, "report", "--since", "30d", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["runbook"] for r in data["runbooks"]] == RUNBOOK_ORDER
    assert [t["team"] for t in data["teams"]] == ["platform-ops", "payments-dev", "sre"]
    assert data["top_escalating_runbook"] == "breaks"
    fixes = data["runbooks"][-1]
    assert (fixes["alerts_received"], fixes["incidents"], fixes["fixes_held"]) == (7, 3, 3)
    assert fixes["mttr"] == {"count": 3, "median": 1200.0, "p90": 1680.0}
    assert data["runbooks"][0]["escalation_reasons"] == {"failed": 1, "interrupted": 1, "timed_out": 1}
    assert data["total"]["escalations"] == 7
    since = datetime.fromisoformat(data["since"])
    assert abs(since - (datetime.now(UTC) - timedelta(days=30))) < timedelta(minutes=5)

    text = cli(sqlite_store_url, "report")  # 30d by default
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].endswith(": 11 incident(s), 17 alert(s) received, 3 automated fix(es) held, "
                             "7 escalation(s).")
    header = lines.index(next(line for line in lines if line.startswith("RUNBOOK ")))
    assert [line.split()[0] for line in lines[header + 1:header + 6]] == [
        "breaks", "approve-me", "(no", "limited", "fixes"]
    fixes_line = lines[header + 5].split()
    assert fixes_line[1:5] == ["7", "3", "3", "0"] and "20m / 28m" in lines[header + 5]
    assert "rejected (max_runs) 1" in lines[header + 4]
    assert any(line.startswith("TEAM ") for line in lines)
    assert ("Top escalating runbook: breaks, 3 escalation(s) (failed 1, interrupted 1, timed out 1): "
            "the structural work for developers.") in lines

    bad = cli(sqlite_store_url, "report", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_report_as_data_names_every_figure(sqlite_store_url: str, active: Loaded) -> None:
    with Store(sqlite_store_url) as store:
        build(store, active)
        report = build_report(store, datetime.now(UTC) - timedelta(days=30))
    data = report_as_data(report)
    json.dumps(data)  # JSON-ready as it is
    first = data["runbooks"][0]
    assert set(first) == {"runbook", "alerts_received", "incidents", "fixes_held", "escalations",
                          "escalation_reasons", "mtta", "mttr", "approval_wait"}
    assert set(data) == {"since", "until", "total", "runbooks", "teams", "top_escalating_runbook"}
