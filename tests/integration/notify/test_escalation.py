"""Escalation: timers in the store, levels that fire once, the outbox, acknowledge, real delivery.

The notifications go to a real HTTP sink on loopback that records every request (the
generic webhook channel, signed), and the clock of the escalation levels is the caller's, so
a level 15 minutes away is reached without waiting; one test runs in real time.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.alerts.signing import verify_signature
from runner.alerts.sources import parse
from runner.catalog.live import CatalogHolder, Loaded
from runner.notify.escalator import Escalator
from runner.runs.candidates import candidates, ownerships
from runner.store import Store
from tests.conftest import CATALOG

SECRET = "sink-secret-3e9f"
OWNERS = """apiVersion: runbook-runner/v1
kind: Owners
channels:
  ops-hook: {type: webhook, url_env: T_OPS_HOOK_URL, secret_env: T_OPS_HOOK_SECRET}
  dev-hook: {type: webhook, url_env: T_DEV_HOOK_URL, secret_env: T_OPS_HOOK_SECRET}
  updates: {type: webhook, url_env: T_UPDATES_URL, secret_env: T_OPS_HOOK_SECRET}
teams:
  platform-ops:
    members:
      - {name: alice, email: alice@example.com}
      - {name: bob, email: bob@example.com}
    primary: alice
    updates: updates
    escalation:
      repeat: 0
      levels:
        - {after: 0s, notify: [ops-hook]}
        - {after: 15m, notify: [ops-hook], handoff: payments-dev}
  payments-dev:
    members:
      - {name: carol, email: carol@example.com}
    primary: carol
    escalation:
      levels:
        - {after: 0s, notify: [dev-hook]}
"""
REJECTED = """apiVersion: runbook-runner/v1
kind: Runbook
name: prod-only
title: Acts only in prod
owner: platform-ops
severity: high
match:
  - alertname: ProdOnly
params:
  host: {from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}
targets: {hosts_from: host}
authority: {environments: [prod], max_hosts: 1, max_runs: {count: 3, per: 1h}, cooldown: 10m, timeout: 5m}
steps:
  - name: ping
    task: {ansible.builtin.ping: {}}
"""

BREAKS = """apiVersion: runbook-runner/v1
kind: Runbook
name: breaks
title: A fix that fails
owner: platform-ops
severity: warning
match:
  - alertname: Breaks
params:
  host: {from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}
targets: {hosts_from: host}
authority: {environments: [staging], max_hosts: 1, max_runs: {count: 3, per: 1h}, timeout: 5m}
steps:
  - name: try the fix
    task: {ansible.builtin.fail: {msg: "disk still full after cleanup"}}
"""

HOLDS = BREAKS.replace("name: breaks", "name: pings").replace("Breaks", "Pings").replace(
    'task: {ansible.builtin.fail: {msg: "disk still full after cleanup"}}',
    "task: {ansible.builtin.ping: {}}")


class Sink:
    """An HTTP server on loopback that records requests and answers the statuses it is given."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: dict[str, list[int]] = {}  # per path, answered in turn; 200 once they run out
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                waiting = sink.statuses.get(self.path, [])
                status = waiting.pop(0) if waiting else 200
                sink.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                      "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies answered 2xx on *path*, in order."""
        return [json.loads(r["body"]) for r in self.requests if r["path"] == path and r["status"] < 300]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.server.shutdown()


APPROVAL = BREAKS.replace("name: breaks", "name: asks").replace("Breaks", "Asks").replace(
    "timeout: 5m}", "timeout: 5m, approval: required}")


@pytest.fixture(params=[0], ids=["no-repeat"])
def repeat(request: pytest.FixtureRequest) -> int:
    value: int = request.param
    return value


@pytest.fixture
def active(tmp_path: Path, repeat: int) -> Iterator[Loaded]:
    root = tmp_path / "catalog"
    root.mkdir()
    for name in ("policy.yaml", "inventory.yaml"):
        shutil.copy(CATALOG / name, root / name)
    (root / "owners.yaml").write_text(OWNERS.replace("repeat: 0", f"repeat: {repeat}"))
    (root / "asks.yaml").write_text(APPROVAL)
    (root / "prod-only.yaml").write_text(REJECTED)
    (root / "breaks.yaml").write_text(BREAKS)
    (root / "pings.yaml").write_text(HOLDS)
    holder = CatalogHolder(root)
    result = holder.reload()
    assert result.ok, result.error
    yield holder.active
    holder.close()


def environ(sink: Sink) -> dict[str, str]:
    return {"T_OPS_HOOK_URL": sink.url + "/ops", "T_DEV_HOOK_URL": sink.url + "/dev",
            "T_UPDATES_URL": sink.url + "/updates", "T_OPS_HOOK_SECRET": SECRET}


def post(store: Store, active: Loaded, alertname: str, *, severity: str = "warning",
         status: str = "firing", fingerprint: str = "fp-1") -> Any:
    labels = {"alertname": alertname, "env": "staging", "instance": "web-1:9100", "severity": severity}
    body = {"labels": labels, "annotations": {"summary": f"{alertname} on web-1"}, "status": status,
            "fingerprint": fingerprint}
    batch = parse("generic", body)
    runs, owners = candidates(active, batch), ownerships(active, batch)
    [stored] = store.record_alerts(batch, candidates=runs, owners=owners)
    return stored


def soon() -> datetime:
    """The tests' clock: a moment after everything done so far."""
    return datetime.now(UTC) + timedelta(seconds=1)


def test_a_rejected_run_escalates_level_by_level_with_context_then_hands_over(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as store:
        stored = post(store, active, "ProdOnly")  # staging: outside the runbook's authority
        assert stored.run.status.value == "rejected"
        escalator = Escalator(store, lambda: active, environ=environ(sink))
        t0 = soon()
        escalator.tick(t0)
        [first] = sink.delivered("/ops")
        assert first["kind"] == "escalation" and first["level"] == 1
        assert first["incident_id"] == stored.incident_id and first["severity"] == "high"
        context = first["context"]
        assert context["owner"] == {"team": "platform-ops", "primary": "alice"}
        rejected = f"run {stored.run.id[:12]} of prod-only was rejected: environment"
        assert context["reason"].startswith(rejected)
        assert context["alert"]["labels"]["instance"] == "web-1:9100"
        assert context["run"]["status"] == "rejected" and "ack" in context["next"]
        request = next(r for r in sink.requests if r["path"] == "/ops")
        verify_signature(SECRET, request["headers"], request["body"])  # the receiver can trust it

        escalator.tick(t0 + timedelta(minutes=10))  # level 2 is 15 minutes out: nothing yet
        assert len(sink.delivered("/ops")) == 1
        escalator.tick(t0 + timedelta(minutes=15, seconds=1))
        assert [m["level"] for m in sink.delivered("/ops")] == [1, 2]
        assert [m["level"] for m in sink.delivered("/dev")] == [2]  # the deliberate handoff
        escalator.tick(t0 + timedelta(hours=5))  # no repeat: nothing more
        assert len(sink.requests) == len([r for r in sink.requests if r["status"] < 300])
        incident = store.get_incident(stored.incident_id)
    assert incident is not None
    events = [e.event for e in incident.timeline]
    assert events.count("escalated") == 2 and "handoff" in events
    updates = [m["summary"] for m in sink.delivered("/updates")]
    assert updates[0].startswith("opened: ProdOnly on web-1 (high); owner alice of team platform-ops")


def test_acknowledge_stops_the_escalation_and_tells_who_was_told(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as store:
        stored = post(store, active, "ProdOnly")
        escalator = Escalator(store, lambda: active, environ=environ(sink))
        t0 = soon()
        escalator.tick(t0)
        store.acknowledge(stored.incident_id, "bob")
        escalator.tick(t0 + timedelta(minutes=16))
        escalator.tick(t0 + timedelta(minutes=17))
    kinds = [(m["kind"], m.get("level")) for m in sink.delivered("/ops")]
    assert kinds == [("escalation", 1), ("acknowledge", None)]
    assert sink.delivered("/dev") == []  # level 2 never came
    assert "acknowledged by bob" in [m["summary"] for m in sink.delivered("/updates")]


def test_a_severe_alert_no_runbook_matches_escalates_at_once_a_warning_does_not(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as store:
        warning = post(store, active, "Unknown", fingerprint="fp-w")
        critical = post(store, active, "Unknown2", severity="critical", fingerprint="fp-c")
        t0 = soon()
        Escalator(store, lambda: active, environ=environ(sink)).tick(t0)
    [message] = sink.delivered("/ops")
    assert message["incident_id"] == critical.incident_id != warning.incident_id
    assert message["context"]["reason"] == "no runbook matches this critical alert"


def test_a_sink_that_is_down_gets_every_message_once_in_order_when_it_comes_back(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    sink.statuses["/ops"] = [500, 503, 429]
    with Store(store_url) as store:
        stored = post(store, active, "ProdOnly")
        escalator = Escalator(store, lambda: active, environ=environ(sink))
        t0 = soon()
        escalator.tick(t0)  # level 1: 500
        store.acknowledge(stored.incident_id, "bob")  # queues an acknowledge behind it
        clock = t0
        for _ in range(8):
            clock += timedelta(minutes=1)  # past each backoff (2, 4, 8 s ...)
            escalator.tick(clock)
        assert [m["kind"] for m in sink.delivered("/ops")] == ["escalation", "acknowledge"]
        assert [r["status"] for r in sink.requests if r["path"] == "/ops"] == [500, 503, 429, 200, 200]
        assert all(m["status"] == "sent" for m in store.outbox(stored.incident_id))


def test_a_refusal_or_a_wrong_setting_is_a_dead_letter_with_the_reason(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    sink.statuses["/ops"] = [400]
    with Store(store_url) as store:
        post(store, active, "ProdOnly")
        env = {**environ(sink), "T_UPDATES_URL": "updates.example.com/hook"}  # set, but not a URL
        t0 = soon()
        Escalator(store, lambda: active, environ=env).tick(t0)
        letters: dict[str, dict[str, Any]] = {}
        for m in store.outbox():
            letters.setdefault(m["channel"], m)  # the first message of each channel
    assert letters["updates"]["status"] == "dead"
    assert "T_UPDATES_URL does not hold an http(s) URL" in letters["updates"]["last_error"]
    assert letters["ops-hook"]["status"] == "dead" and "400" in letters["ops-hook"]["last_error"]
    assert sink.url not in json.dumps([m["last_error"] for m in letters.values()])


def test_a_level_fires_once_across_restarts_and_concurrent_escalators(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as first:
        post(first, active, "ProdOnly")
    stores = [Store(store_url) for _ in range(4)]  # "restarted" processes, all at once
    try:
        barrier = threading.Barrier(4)

        def fire(store: Store) -> None:
            barrier.wait()
            t0 = soon()
            store.fire_due_escalations(t0)

        threads = [threading.Thread(target=fire, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        escalations = [m for m in stores[0].outbox() if m["kind"] == "escalation"]
    finally:
        for store in stores:
            store.close()
    assert [(m["channel"], m["message"]["level"]) for m in escalations] == [("ops-hook", 1)]


def test_in_real_time_the_first_level_arrives_within_seconds(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as store:
        escalator = Escalator(store, lambda: active, environ=environ(sink), interval=0.1).start()
        try:
            post(store, active, "ProdOnly")
            deadline = time.monotonic() + 10
            while not sink.delivered("/ops") and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            escalator.stop()
    assert [m["level"] for m in sink.delivered("/ops")] == [1]


def test_a_failed_run_escalates_with_each_step_and_its_output(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    from runner.runs.worker import WorkerPool

    with Store(store_url) as store:
        stored = post(store, active, "Breaks")
        assert stored.run.status.value == "queued"
        pool = WorkerPool(store, lambda: active, size=1, poll=0.05)
        assert pool.run_one()  # real Ansible on localhost: the step fails
        pool.heartbeat.stop()
        escalator, t0 = Escalator(store, lambda: active, environ=environ(sink)), soon()
        for tick in range(4):  # one message per channel per tick: in order
            escalator.tick(t0 + timedelta(seconds=tick))
    [message] = sink.delivered("/ops")
    context = message["context"]
    failed = f"run {stored.run.id[:12]} failed: step 'try the fix' failed on web-1"
    assert context["reason"].startswith(failed)
    [step] = context["run"]["steps"]
    assert (step["name"], step["host"], step["status"]) == ("try the fix", "web-1", "failed")
    assert step["message"] == "disk still full after cleanup"
    assert context["run"]["revision"] == {"commit": None, "dirty": False}
    updates = [m["summary"] for m in sink.delivered("/updates")]
    escalated = f"escalated, level 1: {context['reason']}"[:200]
    assert updates[1:] == [f"run {stored.run.id[:12]} running", escalated]


@pytest.mark.parametrize("resolves", [False, True], ids=["still-firing", "resolved-in-time"])
def test_the_verify_window_catches_a_fix_that_did_not_hold(
    store_url: str, active: Loaded, sink: Sink, resolves: bool
) -> None:
    from runner.runs.worker import WorkerPool

    with Store(store_url) as store:
        stored = post(store, active, "Pings")
        pool = WorkerPool(store, lambda: active, size=1, poll=0.05)
        assert pool.run_one()
        pool.heartbeat.stop()
        assert store.get_run(stored.run.id).status.value == "succeeded"  # type: ignore[union-attr]
        if resolves:
            post(store, active, "Pings", status="resolved")
        escalator, t0 = Escalator(store, lambda: active, environ=environ(sink)), soon()
        escalator.tick(t0 + timedelta(minutes=5))  # inside the window: nothing
        assert sink.delivered("/ops") == []
        for minute in (11, 11, 12):  # the window ends; the escalation starts; level 1 fires
            escalator.tick(t0 + timedelta(minutes=minute))
        incident = store.get_incident(stored.incident_id)
    assert incident is not None
    events = [e.event for e in incident.timeline]
    if resolves:
        assert sink.delivered("/ops") == [] and "fix_did_not_hold" not in events
        assert incident.resolution == f"the alert resolved after run {stored.run.id} succeeded"
    else:
        [message] = sink.delivered("/ops")
        assert message["context"]["reason"] == (
            f"the fix did not hold: the alert still fires 10 min after run {stored.run.id[:12]} succeeded")
        assert message["context"]["run"]["status"] == "succeeded"
        assert "fix_did_not_hold" in events and "escalated" in events


def test_no_secret_reaches_the_store_or_the_log(
    store_url: str, active: Loaded, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import sqlalchemy as sa

    from runner.store.engine import create_engine, parse_url
    from runner.store.tables import metadata

    secret_path = "/hooks/T0KEN-in-the-url-9f8e7d"
    sink.statuses[secret_path] = [500, 404]  # a retry, then a dead letter: both write a reason
    env = {**environ(sink), "T_OPS_HOOK_URL": sink.url + secret_path}
    caplog.set_level(logging.DEBUG)
    with Store(store_url) as store:
        post(store, active, "ProdOnly")
        escalator, t0 = Escalator(store, lambda: active, environ=env), soon()
        for minute in range(4):
            escalator.tick(t0 + timedelta(minutes=minute))
        assert [m["status"] for m in store.outbox() if m["channel"] == "ops-hook"] == ["dead"]
    engine = create_engine(parse_url(store_url))
    try:
        with engine.connect() as connection:
            dump = "\n".join(str(list(row)) for table in metadata.sorted_tables
                             for row in connection.execute(sa.select(table)))
    finally:
        engine.dispose()
    for secret in ("T0KEN-in-the-url-9f8e7d", SECRET):
        assert secret not in dump and secret not in caplog.text
    assert "HTTP 404" in dump  # the reason is there, without the URL


def test_a_run_awaiting_approval_escalates_and_messages_are_on_the_timeline(
    store_url: str, active: Loaded, sink: Sink
) -> None:
    with Store(store_url) as store:
        stored = post(store, active, "Asks")
        assert stored.run.status.value == "awaiting_approval"
        Escalator(store, lambda: active, environ=environ(sink)).tick(soon())
        incident = store.get_incident(stored.incident_id)
    [message] = sink.delivered("/ops")
    assert message["context"]["reason"] == (
        f"run {stored.run.id[:12]} of asks awaits approval: the runbook requires approval")
    assert incident is not None
    assert ("message_sent", "escalation to ops-hook") in [(e.event, e.detail) for e in incident.timeline]


@pytest.mark.parametrize("repeat", [1], ids=["repeat-once"], indirect=True)
def test_the_levels_repeat_as_the_policy_says_then_stop(store_url: str, active: Loaded, sink: Sink) -> None:
    with Store(store_url) as store:
        post(store, active, "ProdOnly")
        escalator, t0 = Escalator(store, lambda: active, environ=environ(sink)), soon()
        for minutes in (0, 16, 17, 40, 60, 120, 300):  # round 1: 0 and 15 min; round 2: again; no more
            escalator.tick(t0 + timedelta(minutes=minutes))
    assert [m["level"] for m in sink.delivered("/ops")] == [1, 2, 1, 2]


def test_a_team_chooses_its_triggers_severities_and_verify_window(
    store_url: str, sink: Sink, tmp_path: Path
) -> None:
    root = tmp_path / "configured"
    root.mkdir()
    for name in ("policy.yaml", "inventory.yaml"):
        shutil.copy(CATALOG / name, root / name)
    owners = OWNERS.replace("      repeat: 0\n", "      repeat: 0\n      triggers: [failed, unmatched]\n"
                            "      unmatched_severities: [warning]\n      verify_window: 2m\n", 1)
    (root / "owners.yaml").write_text(owners)
    (root / "prod-only.yaml").write_text(REJECTED)
    holder = CatalogHolder(root)
    assert holder.reload().ok, holder.error
    team = holder.active.catalog.owners.teams["platform-ops"]  # type: ignore[union-attr]
    assert (sorted(team.triggers), sorted(team.unmatched_severities), team.verify_window) == (
        ["failed", "unmatched"], ["warning"], timedelta(minutes=2))
    try:
        with Store(store_url) as store:
            rejected = post(store, holder.active, "ProdOnly", fingerprint="fp-r")  # not a trigger here
            warning = post(store, holder.active, "Unknown", fingerprint="fp-w")  # now one
            Escalator(store, lambda: holder.active, environ=environ(sink)).tick(soon())
    finally:
        holder.close()
    assert rejected.run.status.value == "rejected"
    assert [m["incident_id"] for m in sink.delivered("/ops")] == [warning.incident_id]
