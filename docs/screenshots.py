"""Screenshots of the dashboard for the docs: a real server with demo data, in headless Chromium.

Starts `python -m runner serve --workers 1` on a free loopback port with a temporary SQLite store
and a git copy of runbooks/ (plus one runbook that needs approval), posts a few alerts as
Alertmanager does (a log volume cleaned up, a rotation that fails and escalates, an alert no
runbook matches, a run waiting for approval), acknowledges one incident, then logs in as alice
and saves the main pages as PNGs in docs/screenshots/. Needs Playwright and /usr/bin/chromium
(never a browser download). Run from the repository root: .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import serverproc as kit  # noqa: E402  (the benchmarks' server process helpers)
from playwright.sync_api import sync_playwright  # noqa: E402

from runner.web.tokens import hash_token  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("RUNBOOK_TEST_CHROMIUM", "/usr/bin/chromium")
WEBHOOK = "demo-webhook-token"
PEOPLE = {"alice": ("operator", ["platform-ops"]), "carol": ("operator", ["payments-dev"])}
APPROVAL_RUNBOOK = """apiVersion: runbook-runner/v1
kind: Runbook
name: restart-payments-worker
title: Restart a stuck payments worker
owner: payments-dev
severity: high
match:
  - alertname: PaymentsWorkerStuck
params:
  host: {from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}
targets: {hosts_from: host}
authority:
  environments: [staging]
  max_hosts: 1
  approval: required
  timeout: 5m
  max_runs: {count: 3, per: 1h}
steps:
  - name: Check the host answers
    task: {ansible.builtin.ping: {}}
"""


def token_of(name: str) -> str:
    return f"demo-token-of-{name}-0123456789"


def catalog(tmp: Path) -> Path:
    """A git repository with runbooks/ and the demo approval runbook."""
    root = tmp / "repo" / "runbooks"
    shutil.copytree(ROOT / "runbooks", root)
    (root / "restart-payments-worker.yaml").write_text(APPROVAL_RUNBOOK)
    git = ["git", "-C", str(root.parent), "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "runbooks"], check=True)
    return root


def call(base: str, method: str, path: str, body: Any = None, token: str = WEBHOOK) -> Any:
    request = urllib.request.Request(base + path, method=method, data=None if body is None else
                                     json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def alert(base: str, alertname: str, instance: str, annotations: dict[str, str],
          labels: dict[str, str] | None = None, status: str = "firing") -> Any:
    """One alert in an Alertmanager webhook; the stored alert."""
    all_labels = {"alertname": alertname, "env": "staging", "instance": instance, **(labels or {})}
    body = {"version": "4", "status": status, "groupKey": f'{{}}:{{alertname="{alertname}"}}',
            "truncatedAlerts": 0, "alerts": [{"status": status, "labels": all_labels,
                                              "annotations": annotations,
                                              "startsAt": "2026-11-23T10:00:00Z",
                                              "fingerprint": f"demo-{alertname}-{instance}"}]}
    return call(base, "POST", "/api/v1/alerts/alertmanager", body)["alerts"][0]


def wait_final(base: str, run_id: str) -> None:
    for _ in range(600):
        run = call(base, "GET", f"/api/v1/runs/{run_id}", token=token_of("alice"))
        if run["status"] not in ("queued", "running"):
            return
        time.sleep(0.2)
    sys.exit(f"run {run_id} did not finish")


def demo_data(base: str, tmp: Path) -> dict[str, str]:
    """Alerts and decisions that fill every page; the ids worth a screenshot."""
    logs = tmp / "logs"
    logs.mkdir()
    for name in ("app.log.1", "app.log.2.gz", "worker.log.1"):
        (logs / name).write_text("old lines\n")
        os.utime(logs / name, (time.time() - 10 * 86400,) * 2)
    disk = alert(base, "DiskAlmostFull", "web-1:9100", {"log_dir": str(logs), "summary":
                 "Log volume /var/log on web-1 is 93% full"}, {"mountpoint": str(logs)})
    rotate = alert(base, "FileTooLarge", "web-2:9100", {"path": str(tmp / "missing" / "huge.log"),
                   "summary": "huge.log on web-2 grew past 2 GiB"})
    alert(base, "CertificateExpiring", "relay-1:443",
          {"summary": "TLS certificate of relay-1 expires in 6 days"}, {"severity": "critical"})
    approval = alert(base, "PaymentsWorkerStuck", "pay-1:9100", {"summary": "payments worker on pay-1 stuck"})
    wait_final(base, disk["run"]["id"])
    wait_final(base, rotate["run"]["id"])
    # The cleanup held on web-1: its alert resolves, and so does its incident.
    alert(base, "DiskAlmostFull", "web-1:9100", {"log_dir": str(logs)}, {"mountpoint": str(logs)}, "resolved")
    second = alert(base, "DiskAlmostFull", "web-2:9100", {"log_dir": str(logs), "summary":
                   "Log volume /var/log on web-2 is 91% full"}, {"mountpoint": str(logs)})
    wait_final(base, second["run"]["id"])
    call(base, "POST", f"/api/v1/incidents/{rotate['incident']}/ack", token=token_of("alice"))
    return {"incident": disk["incident"], "run": disk["run"]["id"], "failed": rotate["run"]["id"],
            "waiting": approval["run"]["id"]}


def shoot(base: str, ids: dict[str, str]) -> None:
    OUT.mkdir(exist_ok=True)
    pages = [("incidents", "/"), ("incident", f"/incidents/{ids['incident']}"),
             ("run", f"/runs/{ids['run']}"), ("run-failed", f"/runs/{ids['failed']}"),
             ("approvals", "/approvals"), ("runbooks", "/runbooks"), ("report", "/report")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        for who, shots in (("alice", pages), ("carol", [("approvals", "/approvals")])):
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(base + "/login")
            page.get_by_label("Operator token").fill(token_of(who))
            page.keyboard.press("Enter")
            page.wait_for_url(base + "/")
            for name, path in shots:
                page.goto(base + path)
                if name.startswith("run"):  # show one step's output, as a reader would open it
                    for details in page.locator("details").all()[-1:]:
                        details.evaluate("d => d.open = true")
                file = OUT / f"{name}{'-' + who if who != 'alice' else ''}.png"
                page.screenshot(path=str(file), full_page=name in ("run", "incident"))
                print(f"{file.relative_to(ROOT)}: {file.stat().st_size // 1024} KiB")
            page.close()
        browser.close()


class _Sink(BaseHTTPRequestHandler):
    """Slack and webhook channels answer 200 here, so escalation messages show as sent."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="runbook-screens-") as scratch:
        tmp = Path(scratch)
        tokens = tmp / "tokens.yaml"
        tokens.write_text("tokens:\n" + "".join(
            f"  - {{name: {name}, sha256: {hash_token(token_of(name))}, role: {role}, teams: {teams}}}\n"
            for name, (role, teams) in PEOPLE.items()))
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{sink.server_address[1]}/hook"
        channels = {name: url for name in ("RUNBOOK_SLACK_OPS_URL", "RUNBOOK_SLACK_OPS_UPDATES_URL",
                                           "RUNBOOK_PAYMENTS_HOOK_URL")}
        port = kit.free_port()
        log = tmp / "serve.log"
        proc = kit.start_server(tmp, catalog(tmp), f"sqlite:///{tmp / 'runs.db'}", port, WEBHOOK, log,
                                extra_env={"RUNBOOK_TOKENS_FILE": str(tokens),
                                           "RUNBOOK_PAYMENTS_HOOK_SECRET": "demo-secret", **channels})
        try:
            kit.wait_ready(proc, port, log, "/readyz")
            base = f"http://127.0.0.1:{port}"
            shoot(base, demo_data(base, tmp))
        finally:
            kit.stop_server(proc)
            sink.shutdown()


if __name__ == "__main__":
    main()
