"""The service end to end: a real server on loopback with real workers, a git catalog, real Ansible.

An Alertmanager webhook goes in; the runbook executes on localhost; the record comes back
through the operator API. Also: roles and four-eyes approval, cancel, reload with a bad
revision, metrics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.catalog.live import CatalogHolder
from runner.runs.worker import WorkerPool
from runner.store import Store
from runner.web import AppConfig
from runner.web.auth import WebhookAuth
from runner.web.tokens import Tokens, hash_token
from tests.conftest import CATALOG
from tests.integration.web.test_intake_server import Server

WEBHOOK = "hook-token-5b1e"
PEOPLE = {  # name: (role, teams)
    "alice": ("operator", ["platform-ops"]), "bob": ("operator", ["platform-ops"]),
    "carol": ("operator", ["payments-dev"]), "dave": ("operator", ["payments-dev"]),
    "vic": ("viewer", []), "root": ("admin", []),
}


def token_of(name: str) -> str:
    return f"tok-{name}-0123456789"


def runbook(name: str, owner: str, alertname: str, step: str, *, approval: str = "none",
            max_runs: int = 10, authority: str | None = None) -> str:
    """A runbook that writes under the directory its alert's annotation names (/tmp only).

    *authority*, a YAML flow mapping, replaces the default one (staging, *approval*, *max_runs*).
    """
    if authority is None:
        authority = (f"{{environments: [staging], max_hosts: 1, approval: {approval}, timeout: 5m, "
                     f"max_runs: {{count: {max_runs}, per: 1h}}}}")
    return f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {name}
title: Test runbook {name}
owner: {owner}
severity: warning
match:
  - alertname: {alertname}
params:
  host: {{from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}}
  dir: {{from: annotations.dir, type: string, pattern: '/tmp(/[A-Za-z0-9_.-]+)+'}}
targets: {{hosts_from: host}}
authority: {authority}
steps:
{step}
"""


TOUCH = """  - name: leave a mark
    task: {ansible.builtin.file: {path: "{{ dir }}/touched", state: touch}}"""
SLEEP = """  - name: wait a long time
    task: {ansible.builtin.wait_for: {timeout: 60}}"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                           *args], check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def catalog_repo(tmp_path: Path) -> Path:
    """A git repository holding a catalog: the repo's policy, owners, inventory and test runbooks."""
    repo = tmp_path / "repo"
    root = repo / "runbooks"
    root.mkdir(parents=True)
    for name in ("policy.yaml", "owners.yaml", "inventory.yaml"):
        shutil.copy(CATALOG / name, root / name)
    (root / "touch.yaml").write_text(runbook("touch", "platform-ops", "TouchMe", TOUCH, max_runs=2))
    (root / "approve-me.yaml").write_text(runbook("approve-me", "payments-dev", "ApproveMe", TOUCH,
                                                  approval="required"))
    (root / "sleeper.yaml").write_text(runbook("sleeper", "platform-ops", "SleepLong", SLEEP))
    git(repo, "init", "-q")
    commit_all(repo, "runbooks")
    return root


def tokens_file(tmp_path: Path) -> Path:
    lines = ["tokens:"]
    for name, (role, teams) in PEOPLE.items():
        lines += [f"  - name: {name}", f"    sha256: {hash_token(token_of(name))}", f"    role: {role}",
                  f"    teams: [{', '.join(teams)}]"]
    file = tmp_path / "tokens.yaml"
    file.write_text("\n".join(lines) + "\n")
    return file


def alertmanager_group(alertname: str, instance: str, directory: Path, *, status: str = "firing",
                       fingerprint: str | None = None, annotations: dict[str, str] | None = None,
                       ) -> dict[str, Any]:
    """One alert in an Alertmanager webhook (version 4) body."""
    labels = {"alertname": alertname, "env": "staging", "instance": instance, "severity": "warning"}
    alert = {"status": status, "labels": labels,
             "annotations": {"dir": str(directory), **(annotations or {})},
             "startsAt": "2026-11-23T10:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-23T10:05:00Z",
             "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
             "fingerprint": fingerprint or f"fp-{alertname}-{instance}"}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{alertname}"}}', "truncatedAlerts": 0,
            "status": status, "receiver": "runbook-runner", "groupLabels": {"alertname": alertname},
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [alert]}


@dataclass
class Service:
    """A running server with its store, catalog holder and worker pool."""

    server: Server
    store: Store
    holder: CatalogHolder
    pool: WorkerPool
    repo: Path

    def call(self, method: str, path: str, who: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if who is not None:
            sent["Authorization"] = f"Bearer {token_of(who)}"
        request = urllib.request.Request(self.server.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                is_json = response.headers.get_content_type() == "application/json"
                return response.status, json.loads(raw) if is_json else raw.decode()
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def alert(self, alertname: str, instance: str, directory: Path, *, status: str = "firing",
              fingerprint: str | None = None) -> dict[str, Any]:
        """Post one alert as Alertmanager does (webhook version 4); the stored alert's answer."""
        group = alertmanager_group(alertname, instance, directory, status=status, fingerprint=fingerprint)
        status_code, answer = self.call("POST", "/api/v1/alerts/alertmanager", body=group,
                                        headers={"Authorization": f"Bearer {WEBHOOK}"})
        assert status_code == 202, answer
        stored: dict[str, Any] = answer["alerts"][0]
        return stored

    def wait_run(self, run_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            status, run = self.call("GET", f"/api/v1/runs/{run_id}", "vic")
            assert status == 200, run
            if until(run):
                return run
            assert time.monotonic() < deadline, f"run {run_id} stuck: {run['status']}"
            time.sleep(0.1)

    def finished(self, run_id: str) -> Any:
        final = {"succeeded", "failed", "timed_out", "canceled", "rejected", "interrupted"}
        return self.wait_run(run_id, lambda run: run["status"] in final)


@pytest.fixture
def service(catalog_repo: Path, store_url: str, tmp_path: Path) -> Iterator[Service]:
    store = Store(store_url)
    store.upgrade()
    holder = CatalogHolder(catalog_repo)
    assert holder.reload().ok
    tokens = Tokens.load(tokens_file(tmp_path))
    config = AppConfig(store=store, auth=WebhookAuth(token=WEBHOOK), catalog=holder, tokens=tokens)
    server = Server(config)
    state = server.app.extensions["runbook"]
    # As runbook serve: one worker, its default poll, woken in memory when intake or the API queues a run.
    pool = WorkerPool(store, lambda: holder.active, size=1, on_finish=state.metrics.run_finished)
    state.on_queued.append(pool.notify)
    try:
        yield Service(server, store, holder, pool, catalog_repo.parent)
    finally:
        pool.stop(grace=0)
        server.close()
        holder.close()
        store.close()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        got_name, _, got_labels = series.partition("{")
        got = ",".join(sorted(got_labels.rstrip("}").split(","))) if got_labels else ""
        if got_name == name and got == want:
            return float(value)
    return 0.0


def test_an_alert_runs_its_runbook_on_the_host_and_the_record_reads_back(
    service: Service, tmp_path: Path
) -> None:
    service.pool.start()
    head = git(service.repo, "rev-parse", "HEAD").strip()
    stored = service.alert("TouchMe", "web-1:9100", tmp_path)
    assert stored["run"]["runbook"] == "touch" and stored["run"]["status"] == "queued"
    run = service.finished(stored["run"]["id"])
    assert run["status"] == "succeeded", run
    assert (tmp_path / "touched").exists()  # Ansible really acted on the host
    assert run["hosts"] == ["web-1"] and run["environment"] == "staging"
    assert run["trigger"]["kind"] == "alert" and run["trigger"]["actor"] == "alertmanager"
    assert run["trigger"]["alert"]["fingerprint"] == "fp-TouchMe-web-1:9100"
    assert run["revision"] == {"commit": head, "dirty": False}
    assert run["alert_id"] == stored["id"] and run["attempts"] == 1
    assert run["claimed_by"].startswith("worker@")
    steps = [(s["name"], s["host"], s["status"]) for s in run["steps"]]
    assert steps == [("leave a mark", "web-1", "changed")]
    events = [e["event"] for e in run["timeline"]]
    assert events[:3] == ["created", "queued", "running"] and events[-1] == "succeeded"
    status, listed = service.call("GET", "/api/v1/runs?runbook=touch&status=succeeded", "vic")
    assert status == 200 and [r["id"] for r in listed["runs"]] == [run["id"]]

    # The same alert again is a repeat (no run); the limits count the first run.
    again = service.alert("TouchMe", "web-1:9100", tmp_path)
    assert again["repeat_of"] == stored["id"] and again["run"] is None
    second = service.alert("TouchMe", "web-2:9100", tmp_path)
    assert second["run"]["status"] == "queued"
    third = service.alert("TouchMe", "relay-1:9100", tmp_path)
    assert third["run"]["status"] == "rejected" and third["run"]["reason"].startswith("max_runs: 2 run(s)")

    status, text = service.call("GET", "/metrics")
    assert status == 200
    assert metric(text, "runbook_alerts_received_total", source="alertmanager", outcome="new") == 3
    assert metric(text, "runbook_alerts_received_total", source="alertmanager", outcome="repeat") == 1
    assert metric(text, "runbook_runs_rejected_total", reason="max_runs") == 1
    assert metric(text, "runbook_runs", runbook="touch", status="rejected") == 1
    service.finished(second["run"]["id"])
    deadline = time.monotonic() + 10  # the worker counts a run just after recording its end
    while metric(text := service.call("GET", "/metrics")[1], "runbook_runs_finished_total", runbook="touch",
                 status="succeeded") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metric(text, "runbook_runs_finished_total", runbook="touch", status="succeeded") == 2
    assert metric(text, "runbook_run_duration_seconds_count", runbook="touch", status="succeeded") == 2


def test_a_resolved_alert_cancels_the_run_it_queued(service: Service, tmp_path: Path) -> None:
    firing = service.alert("TouchMe", "web-1:9100", tmp_path)  # no worker yet: the run waits
    resolved = service.alert("TouchMe", "web-1:9100", tmp_path, status="resolved")
    assert resolved["canceled_runs"] == [firing["run"]["id"]]
    run = service.finished(firing["run"]["id"])
    assert run["status"] == "canceled" and run["started_at"] is None
    assert run["timeline"][-1]["detail"] == "the alert resolved before the run started"
    service.pool.start()
    time.sleep(0.5)  # a worker that would take it has had its chance
    assert not (tmp_path / "touched").exists()


def test_credentials_and_roles_of_the_operator_api(service: Service, tmp_path: Path) -> None:
    body = {"params": {"host": "web-1", "dir": str(tmp_path)}, "environment": "staging"}
    assert service.call("GET", "/api/v1/runs")[0] == 401
    status, answer = service.call("GET", "/api/v1/runs", headers={"Authorization": "Bearer nope"})
    assert (status, answer["error"]) == (401, "invalid bearer token")
    assert service.call("GET", "/api/v1/runbooks", "vic")[1]["runbooks"][2]["name"] == "touch"

    status, answer = service.call("POST", "/api/v1/runbooks/touch/runs", "carol", body)
    assert status == 403 and "owned by team platform-ops" in answer["error"]
    status, answer = service.call("POST", "/api/v1/runbooks/touch/runs", "vic", body)
    assert status == 403
    status, listed = service.call("GET", "/api/v1/runs?runbook=touch", "root")
    refused = {(r["trigger"]["actor"], r["status"]) for r in listed["runs"]}
    assert refused == {("carol", "rejected"), ("vic", "rejected")}  # the attempts are on the record
    assert all(r["reason"].startswith("forbidden: ") for r in listed["runs"])

    status, run = service.call("POST", "/api/v1/runbooks/touch/runs", "alice", {**body, "dry_run": True})
    assert status == 201 and run["status"] == "queued" and run["dry_run"] is True
    assert run["trigger"] == {"kind": "manual", "actor": "alice", "alert": None}
    status, answer = service.call("POST", "/api/v1/runbooks/touch/runs", "alice", {"params": {"host": 1}})
    assert status == 400 and answer["error"].startswith("param ")
    assert service.call("POST", "/api/v1/runbooks/nope/runs", "root", body)[0] == 404
    assert service.call("POST", "/api/v1/reload", "alice")[0] == 403


def test_four_eyes_approval_then_the_worker_runs_it(service: Service, tmp_path: Path) -> None:
    service.pool.start()
    body = {"params": {"host": "web-1", "dir": str(tmp_path)}, "environment": "staging"}
    status, run = service.call("POST", "/api/v1/runbooks/approve-me/runs", "carol", body)
    assert status == 201 and run["status"] == "awaiting_approval"
    assert run["reason"] == "the runbook requires approval"
    status, answer = service.call("POST", f"/api/v1/runs/{run['id']}/approve", "carol")
    assert status == 403 and answer["error"].startswith("four eyes: carol requested run")
    status, answer = service.call("POST", f"/api/v1/runs/{run['id']}/approve", "alice")
    assert status == 403 and "owned by team payments-dev" in answer["error"]
    status, approved = service.call("POST", f"/api/v1/runs/{run['id']}/approve", "dave", {"reason": "ok"})
    assert status == 200 and approved["decided_by"] == "dave"
    assert service.call("POST", f"/api/v1/runs/{run['id']}/approve", "dave")[0] == 409
    final = service.finished(run["id"])
    assert final["status"] == "succeeded" and (tmp_path / "touched").exists()
    assert ("approved", "approved by dave: ok") in [(e["event"], e["detail"]) for e in final["timeline"]]

    status, other = service.call("POST", "/api/v1/runbooks/approve-me/runs", "carol", body)
    status, rejected = service.call("POST", f"/api/v1/runs/{other['id']}/reject", "root",
                                    {"reason": "not during the freeze"})
    assert status == 200 and rejected["status"] == "rejected"
    assert rejected["reason"] == "rejected by root: not during the freeze"


def test_a_manual_run_may_ask_for_approval_and_waits_for_another_person(service: Service,
                                                                          tmp_path: Path) -> None:
    service.pool.start()
    body = {"params": {"host": "web-1", "dir": str(tmp_path)}, "environment": "staging", "ask_approval": True}
    status, run = service.call("POST", "/api/v1/runbooks/touch/runs", "alice", body)  # touch: approval none
    assert status == 201 and (run["status"], run["reason"]) == ("awaiting_approval",
                                                                "approval asked for by alice")
    assert not (tmp_path / "touched").exists()
    status, answer = service.call("POST", f"/api/v1/runs/{run['id']}/approve", "alice")
    assert status == 403 and answer["error"].startswith("four eyes: alice requested run")
    assert service.call("POST", f"/api/v1/runs/{run['id']}/approve", "bob")[0] == 200
    final = service.finished(run["id"])
    assert final["status"] == "succeeded" and (tmp_path / "touched").exists()
    bad = {**body, "ask_approval": "yes"}
    status, answer = service.call("POST", "/api/v1/runbooks/touch/runs", "alice", bad)
    assert status == 400 and "ask_approval" in answer["error"]


def test_cancel_a_queued_run_and_a_running_one(service: Service, tmp_path: Path) -> None:
    queued = service.alert("TouchMe", "web-1:9100", tmp_path)["run"]
    status, run = service.call("POST", f"/api/v1/runs/{queued['id']}/cancel", "bob")
    assert status == 202 and run["status"] == "canceled"
    assert service.call("POST", f"/api/v1/runs/{queued['id']}/cancel", "bob")[0] == 409

    service.pool.start()
    sleeping = service.alert("SleepLong", "web-1:9100", tmp_path)["run"]
    service.wait_run(sleeping["id"], lambda r: bool(r["steps"]))  # the step has started
    status, run = service.call("POST", f"/api/v1/runs/{sleeping['id']}/cancel", "alice")
    assert status == 202 and run["status"] == "running" and run["cancel_requested"] is True
    final = service.finished(sleeping["id"])
    assert final["status"] == "canceled"
    assert final["steps"][0]["status"] == "canceled"
    assert "cancel_requested" in [e["event"] for e in final["timeline"]]


def test_a_bad_revision_is_refused_and_the_last_good_one_keeps_serving(
    service: Service, tmp_path: Path
) -> None:
    good = git(service.repo, "rev-parse", "HEAD").strip()
    touch = service.repo / "runbooks" / "touch.yaml"
    touch.write_text(touch.read_text().replace("max_hosts: 1", "max_hosts: many"))
    commit_all(service.repo, "break touch")
    status, answer = service.call("POST", "/api/v1/reload", "root")
    assert status == 422 and answer["ok"] is False and answer["revision"] == good
    assert "touch.yaml:" in answer["error"] and "max_hosts" in answer["error"]
    status, ready = service.call("GET", "/readyz")
    assert status == 200 and ready["catalog"]["revision"] == good
    assert "max_hosts" in ready["catalog"]["last_reload_error"]
    text = service.call("GET", "/metrics")[1]
    assert metric(text, "runbook_catalog_reload_failures_total") == 1
    assert metric(text, "runbook_catalog_last_reload_ok") == 0

    queued = service.alert("TouchMe", "web-1:9100", tmp_path)["run"]  # still routed, by the good revision
    assert queued["status"] == "queued"
    assert service.call("GET", f"/api/v1/runs/{queued['id']}", "vic")[1]["revision"]["commit"] == good

    touch.write_text(touch.read_text().replace("max_hosts: many", "max_hosts: 1"))
    fixed = commit_all(service.repo, "fix touch")
    status, answer = service.call("POST", "/api/v1/reload", "root")
    assert status == 200 and answer == {"ok": True, "error": None, "changed": True, "revision": fixed,
                                         "runbooks": 3}
    assert service.call("GET", "/readyz")[1]["catalog"]["last_reload_error"] is None
    service.pool.start()
    run = service.finished(queued["id"])  # queued under the old revision, executed by the new one
    assert run["status"] == "succeeded" and run["revision"]["commit"] == fixed
    assert f"executing catalog revision {fixed}" in [e["detail"] for e in run["timeline"]]


def test_exact_limits_under_100_concurrent_webhook_requests(service: Service, tmp_path: Path) -> None:
    """100 different alerts for one runbook at once, over HTTP: exactly max_runs (2) runs."""
    hosts = ["web-1", "web-2", "pay-1", "relay-1", "db-1"]
    start = threading.Barrier(100)
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        start.wait()
        stored = service.alert("TouchMe", f"{hosts[i % 5]}:9100", tmp_path, fingerprint=f"fp-{i}")
        with lock:
            answers.append(stored)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == 100 and all(a["repeat_of"] is None for a in answers)
    statuses = sorted(a["run"]["status"] for a in answers)
    assert statuses == ["queued"] * 2 + ["rejected"] * 98
    reasons = {a["run"]["reason"].split(":")[0] for a in answers if a["run"]["status"] == "rejected"}
    assert reasons <= {"max_runs", "concurrency"} and "max_runs" in reasons
    runs = service.store.list_runs(runbook="touch", limit=None)
    assert len(runs) == 100 and sum(r.status.value == "queued" for r in runs) == 2
    # which limit refused each is data beside the words, and agrees with them
    kinds = {(r.reason_kind, r.reason.split(":")[0]) for r in runs if r.status.value == "rejected"}
    assert {kind for kind, _ in kinds} <= {"max_runs", "concurrency"} and all(k == w for k, w in kinds)
    assert {r.reason_kind for r in runs if r.status.value == "queued"} == {"allowed"}


def test_every_alert_has_an_owner_from_the_first_second(service: Service, tmp_path: Path) -> None:
    matched = service.alert("TouchMe", "web-1:9100", tmp_path)
    status, incident = service.call("GET", f"/api/v1/incidents/{matched['incident']}", "vic")
    assert status == 200
    assert (incident["status"], incident["owner_team"], incident["owner"], incident["runbook"]) == (
        "open", "platform-ops", "alice", "touch")
    assert [e["event"] for e in incident["timeline"]] == ["opened", "owner_assigned", "run_queued"]
    assert incident["timeline"][1]["detail"] == "team platform-ops, primary alice (runbook touch)"
    assert [r["id"] for r in incident["runs"]] == [matched["run"]["id"]]

    # The same group (Alertmanager's groupKey), another alert: the same incident, noted.
    other = service.alert("TouchMe", "web-2:9100", tmp_path)
    assert other["incident"] == matched["incident"]
    timeline = service.call("GET", f"/api/v1/incidents/{matched['incident']}", "vic")[1]["timeline"]
    assert [e["event"] for e in timeline][-2:] == ["alert_added", "run_queued"]

    # No runbook matches: the policy's default owner has it at once, at the alert's severity.
    unmatched = service.alert("NothingMatches", "db-1:9100", tmp_path)
    assert unmatched["run"] is None
    incident = service.call("GET", f"/api/v1/incidents/{unmatched['incident']}", "vic")[1]
    assert (incident["owner_team"], incident["owner"], incident["runbook"], incident["severity"]) == (
        "platform-ops", "alice", None, "warning")
    assert "no runbook matches: the default owner" in incident["timeline"][1]["detail"]
    status, listed = service.call("GET", "/api/v1/incidents?status=open&team=platform-ops", "vic")
    assert status == 200 and len(listed["incidents"]) == 2


def test_acknowledge_and_resolve_by_the_owner_team(service: Service, tmp_path: Path) -> None:
    incident_id = service.alert("TouchMe", "web-1:9100", tmp_path)["incident"]
    status, answer = service.call("POST", f"/api/v1/incidents/{incident_id}/ack", "carol")
    assert status == 403 and "owned by team platform-ops" in answer["error"]
    status, acked = service.call("POST", f"/api/v1/incidents/{incident_id}/ack", "bob")
    assert status == 200 and (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "bob")
    assert service.call("POST", f"/api/v1/incidents/{incident_id}/ack", "bob")[0] == 409
    status, resolved = service.call("POST", f"/api/v1/incidents/{incident_id}/resolve", "root",
                                    {"reason": "disk replaced"})
    assert status == 200 and resolved["status"] == "resolved"
    assert resolved["resolution"] == "by hand, by root: disk replaced"
    assert service.call("POST", f"/api/v1/incidents/{incident_id}/resolve", "root")[0] == 409
    assert service.call("GET", "/api/v1/incidents/000000000000", "vic")[0] == 404

    # Firing again after the incident resolved: a new incident, not the closed one.
    again = service.alert("TouchMe", "web-1:9100", tmp_path, fingerprint="fp-second-time")
    assert again["incident"] != incident_id


def test_the_incident_follows_its_run_and_resolves_when_the_alert_does(
    service: Service, tmp_path: Path
) -> None:
    service.pool.start()
    fired = service.alert("TouchMe", "web-1:9100", tmp_path)
    service.finished(fired["run"]["id"])
    resolved = service.alert("TouchMe", "web-1:9100", tmp_path, status="resolved")
    assert resolved["incident"] == fired["incident"]
    incident = service.call("GET", f"/api/v1/incidents/{fired['incident']}", "vic")[1]
    assert incident["status"] == "resolved"
    assert incident["resolution"] == f"the alert resolved after run {fired['run']['id']} succeeded"
    events = [e["event"] for e in incident["timeline"]]
    assert events == ["opened", "owner_assigned", "run_queued", "run_running", "run_succeeded",
                      "alert_resolved", "resolved"]
