"""A channel whose secrets are not in the environment: reported once, its messages skipped, not failed.

Real parts: a real HTTP sink on loopback for the channel that is configured, real Ansible for
the run that fails, a real server for /readyz and /metrics, the real store.
"""

from __future__ import annotations

import logging
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from runner.catalog.live import CatalogHolder, Loaded
from runner.notify.escalator import Escalator, report_channels
from runner.runs.worker import WorkerPool
from runner.store import Store
from runner.web import AppConfig
from runner.web.auth import WebhookAuth
from tests.conftest import CATALOG
from tests.integration.notify.test_escalation import BREAKS, SECRET, Sink, post, soon
from tests.integration.web.test_intake_server import Server
from tests.integration.web.test_service import metric

OWNERS = """apiVersion: runbook-runner/v1
kind: Owners
channels:
  ops-hook: {type: webhook, url_env: T_OPS_HOOK_URL, secret_env: T_OPS_HOOK_SECRET}
  ops-pager: {type: pagerduty, routing_key_env: T_PD_KEY}
  updates: {type: slack, url_env: T_SLACK_UPDATES_URL}
teams:
  platform-ops:
    members:
      - {name: alice, email: alice@example.com}
    primary: alice
    updates: updates
    escalation:
      levels:
        - {after: 0s, notify: [ops-hook, ops-pager]}
        - {after: 15m, notify: [ops-pager]}
"""
WEBHOOK = "hook-token-0c3d"


@pytest.fixture
def catalog_root(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    root.mkdir()
    for name in ("policy.yaml", "inventory.yaml"):
        shutil.copy(CATALOG / name, root / name)
    (root / "owners.yaml").write_text(OWNERS)
    (root / "breaks.yaml").write_text(BREAKS)
    return root


@pytest.fixture
def holder(catalog_root: Path) -> Iterator[CatalogHolder]:
    loaded = CatalogHolder(catalog_root)
    assert loaded.reload().ok, loaded.error
    yield loaded
    loaded.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.server.shutdown()


def only_the_hook(sink: Sink) -> dict[str, str]:
    """The webhook channel configured to the sink; the PagerDuty and Slack channels' variables unset."""
    return {"T_OPS_HOOK_URL": sink.url + "/ops", "T_OPS_HOOK_SECRET": SECRET}


def test_a_failing_run_escalates_to_the_configured_channel_and_skips_the_other_without_an_error(
    store_url: str, holder: CatalogHolder, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    active: Loaded = holder.active
    with Store(store_url) as store:
        stored = post(store, active, "Breaks")
        pool = WorkerPool(store, lambda: active, size=1, poll=0.05)
        assert pool.run_one()  # real Ansible on localhost: the step fails
        pool.heartbeat.stop()
        escalator, t0 = Escalator(store, lambda: active, environ=only_the_hook(sink)), soon()
        for tick in range(6):  # one message per channel per tick
            escalator.tick(t0 + timedelta(seconds=tick))
        outbox = store.outbox(stored.incident_id)
        incident = store.get_incident(stored.incident_id)
        last = store.last_events([stored.incident_id])[stored.incident_id]

        # The operator sets the variables and restarts: later messages go out; the skipped one stays so.
        configured = {**only_the_hook(sink), "T_PD_KEY": "pd-routing-key",
                      "RUNBOOK_PAGERDUTY_EVENTS_URL": sink.url + "/pd"}
        restarted = Escalator(store, lambda: active, environ=configured)
        for tick in range(3):
            restarted.tick(t0 + timedelta(minutes=15, seconds=1 + tick))
        after = store.outbox(stored.incident_id)

    [message] = sink.delivered("/ops")
    assert message["kind"] == "escalation" and message["level"] == 1
    assert message["context"]["reason"].startswith(f"run {stored.run.id[:12]} failed")
    [paged] = [m for m in outbox if m["channel"] == "ops-pager"]
    assert (paged["kind"], paged["status"], paged["attempts"]) == ("escalation", "skipped", 0)
    assert paged["last_error"] == "pagerduty channel ops-pager: environment variable T_PD_KEY is not set"
    updates = [m for m in outbox if m["channel"] == "updates"]
    assert updates and {m["status"] for m in updates} == {"skipped"}
    assert {m["status"] for m in outbox if m["channel"] == "ops-hook"} == {"sent"}
    assert "dead" not in {m["status"] for m in outbox}

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert incident is not None
    events = [(e.event, e.detail) for e in incident.timeline]
    assert "message_failed" not in [event for event, _ in events]
    assert ("message_skipped", "escalation to ops-pager not sent: pagerduty channel ops-pager: "
            "environment variable T_PD_KEY is not set") in events
    assert ("message_sent", "escalation to ops-hook") in events
    assert not any("to updates" in detail for _, detail in events)  # updates are chatter, sent or not
    assert last.event in ("message_sent", "message_skipped")  # the dashboard's "last event": no error

    [event] = sink.delivered("/pd")  # level 2 only: the skipped level 1 is not sent late
    assert (event["event_action"], event["dedup_key"]) == ("trigger", stored.incident_id)
    assert [m["status"] for m in after if m["channel"] == "ops-pager"] == ["skipped", "sent"]


def test_readyz_lists_the_channel_that_is_not_configured_and_metrics_count_its_skipped_messages(
    store_url: str, holder: CatalogHolder, sink: Sink
) -> None:
    env = only_the_hook(sink)
    store = Store(store_url)
    store.upgrade()
    server = Server(AppConfig(store=store, auth=WebhookAuth(token=WEBHOOK), catalog=holder, environ=env))
    try:
        status, ready, _ = server.get("/readyz")
        assert status == 200 and ready["status"] == "ready"  # a channel not configured is no outage
        assert ready["channels"] == {"ops-hook": "configured", "ops-pager": "not configured: set T_PD_KEY",
                                     "updates": "not configured: set T_SLACK_UPDATES_URL"}
        alert = {"labels": {"alertname": "NoRunbookForThis", "severity": "critical", "instance": "web-1"}}
        status, answer, _ = server.post("/api/v1/alerts", alert, {"Authorization": f"Bearer {WEBHOOK}"})
        assert status == 202, answer  # no runbook, critical: escalates at once
        escalator, t0 = Escalator(store, lambda: holder.active, environ=env), soon()
        for tick in range(3):
            escalator.tick(t0 + timedelta(seconds=tick))
        with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
            text = response.read().decode()
    finally:
        server.close()
        store.close()
    assert metric(text, "runbook_outbox_messages", channel="ops-pager", status="skipped") == 1
    # "opened" and "escalated" to the updates channel
    assert metric(text, "runbook_outbox_messages", channel="updates", status="skipped") == 2
    assert metric(text, "runbook_outbox_messages", channel="ops-hook", status="sent") == 1
    assert metric(text, "runbook_outbox_messages", channel="ops-pager", status="dead") == 0
    assert len(sink.delivered("/ops")) == 1


def test_the_channels_that_cannot_send_are_logged_once_per_start_and_per_reload_that_changes_them(
    catalog_root: Path, holder: CatalogHolder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runner.escalation")
    report_channels(holder, {"T_OPS_HOOK_URL": "http://127.0.0.1:9/ops", "T_OPS_HOOK_SECRET": "s"})
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "notification channels not configured, their messages are skipped: "
                    "ops-pager (set T_PD_KEY), updates (set T_SLACK_UPDATES_URL)")]
    caplog.clear()
    assert holder.reload().ok  # the same catalog: nothing new to say
    assert caplog.records == []
    without_pager = OWNERS.replace("ops-hook, ops-pager", "ops-hook").replace("[ops-pager]", "[ops-hook]")
    without_pager = without_pager.replace("  ops-pager: {type: pagerduty, routing_key_env: T_PD_KEY}\n", "")
    (catalog_root / "owners.yaml").write_text(without_pager)
    assert holder.reload().ok, holder.error
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "notification channels not configured, their messages are skipped: "
                    "updates (set T_SLACK_UPDATES_URL)")]
