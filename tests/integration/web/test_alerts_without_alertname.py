"""Alerts without an alertname label: accepted, owned by the default owner, escalated by severity.

Alertmanager does not require the label and does not retry a 4xx, so refusing such an alert
lost it. A real server on loopback takes each intake format; the escalator delivers to a real
HTTP sink; the team owning the runbook and the policy's default owner are different teams, so
"owned by the default owner" is told apart from "owned by whoever".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.catalog.live import CatalogHolder
from runner.notify.escalator import Escalator
from runner.store import Store
from runner.web import AppConfig
from runner.web.auth import WebhookAuth
from tests.conftest import catalog_owned_by
from tests.integration.notify.test_escalation import HOLDS, SECRET, Sink, soon
from tests.integration.web.test_intake_server import PAYLOADS, Server

TOKEN = "nameless-token-4e1f"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
OWNERS = """apiVersion: runbook-runner/v1
kind: Owners
channels:
  ops-hook: {type: webhook, url_env: T_OPS_HOOK_URL, secret_env: T_HOOK_SECRET}
  sre-hook: {type: webhook, url_env: T_SRE_HOOK_URL, secret_env: T_HOOK_SECRET}
teams:
  platform-ops:
    members: [{name: alice, email: alice@example.com}]
    primary: alice
    escalation: {levels: [{after: 0s, notify: [ops-hook]}]}
  sre:
    members: [{name: erin, email: erin@example.com}]
    primary: erin
    escalation: {levels: [{after: 0s, notify: [sre-hook]}]}   # unmatched: critical and high
"""
NAMELESS = {"env": "staging", "instance": "db-1:9100", "job": "node"}
TITLE = '(no alertname) {env="staging", instance="db-1:9100", job="node", severity="%s"}'


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.server.shutdown()


@pytest.fixture
def served(tmp_path: Path, store_url: str, sink: Sink) -> Iterator[tuple[Server, Store, Escalator]]:
    """The server on a catalog whose default owner (sre) owns no runbook; the escalator to the sink."""
    # platform-ops answers alertname Pings; alerts no runbook takes go to sre
    root = catalog_owned_by(tmp_path / "catalog", OWNERS, {"pings.yaml": HOLDS}, default_owner="sre")
    holder = CatalogHolder(root)
    assert holder.reload().ok, holder.error
    environ = {"T_OPS_HOOK_URL": sink.url + "/ops", "T_SRE_HOOK_URL": sink.url + "/sre",
               "T_HOOK_SECRET": SECRET}
    store = Store(store_url)
    store.upgrade()
    server = Server(AppConfig(store=store, auth=WebhookAuth(token=TOKEN), catalog=holder, environ=environ))
    try:
        yield server, store, Escalator(store, lambda: holder.active, environ=environ)
    finally:
        server.close()
        store.close()
        holder.close()


def alert(labels: dict[str, str], *, status: str = "firing", fingerprint: str) -> dict[str, Any]:
    """One alert as Alertmanager and Grafana write it (no summary annotation: the title is the labels)."""
    return {"status": status, "labels": labels, "annotations": {"description": "no name given"},
            "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T10:05:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint}


def webhook(source: str, alerts: list[dict[str, Any]], group: str) -> tuple[str, dict[str, Any]]:
    """The path and body of a real webhook of *source* carrying *alerts* (its sample, alerts replaced)."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    if source == "generic":
        return "/api/v1/alerts", {"alerts": alerts}
    body = copy.deepcopy(json.loads((PAYLOADS / source / "firing.json").read_text()))
    body.update(alerts=alerts, status=status, groupKey=group, groupLabels={"env": "staging"},
                commonLabels={"env": "staging"}, commonAnnotations={})
    return f"/api/v1/alerts/{source}", body


def deliver(escalator: Escalator) -> None:
    """Fire what is due and deliver it (one message per channel per tick)."""
    t0 = soon()
    for tick in range(3):
        escalator.tick(t0 + timedelta(seconds=tick))


def test_an_alertmanager_webhook_with_a_nameless_alert_and_a_named_one_stores_both(
    served: tuple[Server, Store, Escalator], sink: Sink
) -> None:
    server, store, escalator = served
    nameless = alert({**NAMELESS, "severity": "critical"}, fingerprint="fp-nameless")
    named = alert({"alertname": "Pings", "env": "staging", "instance": "web-1:9100"}, fingerprint="fp-pings")
    path, body = webhook("alertmanager", [nameless, named], '{}:{env="staging"}')
    status, answer, _ = server.post(path, body, BEARER)
    assert status == 202, answer
    assert answer["accepted"] == 2 and store.count_alerts() == 2
    first, second = answer["alerts"]
    assert (first["fingerprint"], first["run"]) == ("fp-nameless", None)  # no runbook selects it
    assert second["run"]["runbook"] == "pings"  # the named alert still runs its runbook
    assert first["incident"] == second["incident"]  # one Alertmanager group is one incident
    incident = store.get_incident(first["incident"])
    assert incident is not None
    assert (incident.owner_team, incident.owner, incident.runbook) == ("sre", "erin", None)
    assert (incident.severity, incident.title) == ("critical", TITLE % "critical")
    assert incident.timeline[0].detail == "alert (no alertname) (fp-nameless)"
    assert ("owner_assigned", "team sre, primary erin (no runbook matches: the default owner)") in [
        (e.event, e.detail) for e in incident.timeline]
    assert [a["alertname"] for a in incident.alerts] == ["", "Pings"]

    deliver(escalator)
    [message] = sink.delivered("/sre")
    assert message["kind"] == "escalation" and message["incident_id"] == incident.id
    assert message["summary"] == f"{TITLE % 'critical'}: no runbook matches this critical alert"
    assert message["source"] == "db-1:9100"
    context = message["context"]
    assert context["owner"] == {"team": "sre", "primary": "erin"}
    assert context["alert"]["alertname"] == "" and "alertname" not in context["alert"]["labels"]
    assert sink.delivered("/ops") == []


@pytest.mark.parametrize("source", ["alertmanager", "grafana", "generic"])
@pytest.mark.parametrize(("severity", "escalates"), [("critical", True), ("high", True), ("warning", False)])
def test_a_nameless_alert_opens_an_incident_of_the_default_owner_escalated_by_its_severity(
    served: tuple[Server, Store, Escalator], sink: Sink, source: str, severity: str, escalates: bool
) -> None:
    server, store, escalator = served
    labels = {**NAMELESS, "severity": severity}
    group = '{}:{alertname=""}'  # Alertmanager's group_by: [alertname] puts them in a group of their own
    path, body = webhook(source, [alert(labels, fingerprint=f"fp-{severity}")], group)
    status, answer, _ = server.post(path, body, BEARER)
    assert status == 202, answer
    [stored] = answer["alerts"]
    assert stored["run"] is None and store.count_alerts() == 1
    incident = store.get_incident(stored["incident"])
    assert incident is not None
    assert (incident.owner_team, incident.runbook, incident.severity) == ("sre", None, severity)
    assert incident.title == TITLE % severity

    deliver(escalator)
    escalations = sink.delivered("/sre")
    if escalates:
        [message] = escalations
        assert message["incident_id"] == incident.id
        assert message["context"]["reason"] == f"no runbook matches this {severity} alert"
    else:
        assert escalations == []  # sre escalates unmatched critical and high alerts only

    path, body = webhook(source, [alert(labels, status="resolved", fingerprint=f"fp-{severity}")], group)
    status, answer, _ = server.post(path, body, BEARER)
    assert status == 202 and answer["alerts"][0]["incident"] == incident.id
    resolved = store.get_incident(incident.id)
    assert resolved is not None and resolved.status.value == "resolved"
    assert resolved.timeline[-2].detail == f"alert (no alertname) (fp-{severity})"
