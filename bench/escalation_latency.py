"""Benchmark a run's failure -> its first escalation message delivered, through the real server.

Starts `python -m runner serve --workers 1` in a separate process on a free loopback port, with a
temporary SQLite store, a bearer token and a temporary catalog: the repository's policy and inventory,
an owners.yaml whose team platform-ops escalates at level 1 `after: 0s` to a signed webhook channel
(and sends its updates to another), and one runbook whose only step fails (ansible.builtin.fail on
web-1, a local-connection host, in staging; max_runs 30/1h, no cooldown). The webhook URLs point to an
HTTP sink in this process on 127.0.0.1 that answers 200 and records when each request arrived
(time.time(), after its body was read). One Alertmanager v4 alert at a time (a distinct fingerprint and
groupKey each, so each opens its own incident and escalation), each after a random pause of up to one
escalator interval (posted right after the previous delivery, the alerts would otherwise keep one phase
against the escalator's ticks): wait for the incident's escalation at the sink, then read from the
store when the alert was received, the run finished and the level fired. Default escalator settings (it
looks every 0.5 s). Baselines in the same run: that polling interval (a due level waits up to one
interval, half on average: the floor of this design), and a bare urllib POST of the same body to the
sink (the delivery cost).
Prints figures and PASS/MISS notes, never asserts; exits 1 only on errors.
Run it from the repository root: .venv/bin/python bench/escalation_latency.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import serverproc as kit
import sqlalchemy as sa
from serverproc import fmt, p90

from runner.errors import RunbookError
from runner.notify.escalator import INTERVAL
from runner.records import RunStatus
from runner.store import Store, sqlite_url
from runner.web.auth import verify_signature

NAME = "bench-escalate"
ALERTNAME = "BenchEscalate"
MAX_RUNS = 30  # the runbook's max_runs (and the staging ceiling): 30 runs per hour
HOOK_URL_ENV, UPDATES_URL_ENV, HOOK_SECRET_ENV = "BENCH_ESC_HOOK_URL", "BENCH_ESC_UPDATES_URL", \
    "BENCH_ESC_HOOK_SECRET"
TARGET_S, ACHIEVABLE_S = 5.0, 1.0
OWNERS = f"""apiVersion: runbook-runner/v1
kind: Owners
channels:
  bench-hook: {{type: webhook, url_env: {HOOK_URL_ENV}, secret_env: {HOOK_SECRET_ENV}}}
  bench-updates: {{type: webhook, url_env: {UPDATES_URL_ENV}, secret_env: {HOOK_SECRET_ENV}}}
teams:
  platform-ops:
    members:
      - {{name: alice, email: alice@example.com}}
    primary: alice
    updates: bench-updates
    escalation:
      repeat: 0
      levels:
        - {{after: 0s, notify: [bench-hook]}}
        - {{after: 15m, notify: [bench-hook]}}
"""
RUNBOOK = kit.runbook(NAME, "Benchmark runbook, a fix that fails", ALERTNAME, MAX_RUNS, "try the fix",
                      '{ansible.builtin.fail: {msg: "benchmark: the fix failed"}}')
LABELS = {  # key: what the table calls it
    "finished-to-fired": "run finished -> level 1 fired (its outbox row created)",
    "fired-to-received": "level 1 fired -> message received at the sink",
    "finished-to-received": "run finished -> escalation received at the sink",
    "alert-to-finished": "alert received -> run finished (the failing Ansible run)",
    "alert-to-received": "alert received -> escalation received at the sink",
    "bare-post-to-received": "bare POST of the same body -> received at the sink (baseline)",
    "bare-post-round-trip": "bare POST of the same body, round trip (baseline)",
}


class Sink:
    """An HTTP server on loopback that answers 200 and records each request with its arrival time."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.time()  # the message is in: the wall clock, as the server's timestamps
                with sink.changed:
                    sink.requests.append({"path": self.path, "headers": self.headers, "body": body, "at": at})
                    sink.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="sink", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def escalation(self, incident_id: str) -> dict[str, Any] | None:
        """The first escalation request of *incident_id* on /hook, or None."""
        for request in self.requests:
            if request["path"] == "/hook":
                data = json.loads(request["body"])
                if data.get("kind") == "escalation" and data.get("incident_id") == incident_id:
                    return {**request, "data": data}
        return None

    def wait_escalation(self, incident_id: str, proc: subprocess.Popen[bytes], log: Path,
                        limit: float = 120.0) -> dict[str, Any]:
        """The escalation of *incident_id* once it arrived (exit if the server dies or it does not come)."""
        deadline = time.monotonic() + limit
        with self.changed:
            while (found := self.escalation(incident_id)) is None:
                if proc.poll() is not None:
                    sys.exit(f"the server exited with {proc.returncode} before incident {incident_id} "
                             f"escalated:\n{kit.log_tail(log)}")
                if time.monotonic() >= deadline:
                    sys.exit(f"no escalation of incident {incident_id} within {limit:.0f} s:\n"
                             f"{kit.log_tail(log)}")
                self.changed.wait(0.2)
        return found

    def wait_path(self, path: str, count: int, limit: float = 10.0) -> dict[str, Any]:
        """The *count*-th request on *path* once it arrived."""
        deadline = time.monotonic() + limit
        with self.changed:
            while len(got := [r for r in self.requests if r["path"] == path]) < count:
                if time.monotonic() >= deadline:
                    sys.exit(f"the sink did not receive request {count} on {path} within {limit:.0f} s")
                self.changed.wait(0.2)
        return got[count - 1]


def post(port: int, token: str, n: int) -> tuple[int, str, str]:
    """Post the n-th alert (its own group); the stored alert's id, its run's id and its incident's id."""
    body = kit.webhook(ALERTNAME, n, own_group=True)
    stored = kit.post_alert(port, token, body, n, NAME, incident=True)
    return int(stored["id"]), str(stored["run"]["id"]), str(stored["incident"])


def seconds(at: datetime) -> float:
    """A store timestamp as seconds since the epoch (the sink's clock)."""
    return at.timestamp()


def run_one(port: int, token: str, store: Store, engine: sa.Engine, n: int, sink: Sink,
            hook_secret: str, proc: subprocess.Popen[bytes], log: Path) -> tuple[dict[str, float], bytes]:
    """Post one alert, wait for its escalation at the sink; ms between the points, and the body received."""
    alert_id, run_id, incident_id = post(port, token, n)
    got = sink.wait_escalation(incident_id, proc, log)
    try:
        verify_signature(hook_secret, got["headers"], got["body"])
    except RunbookError as e:
        sys.exit(f"the escalation of incident {incident_id} is not validly signed: {e}")
    if got["data"].get("level") != 1:
        sys.exit(f"the first escalation of incident {incident_id} is level {got['data'].get('level')}, not 1")
    run = store.get_run(run_id)
    if run is None or run.status is not RunStatus.FAILED or run.finished_at is None:
        sys.exit(f"run {run_id} is {run and run.status.value} ({run and run.reason}), not failed:\n"
                 f"{kit.log_tail(log)}")
    fired = [m for m in store.outbox(incident_id) if m["kind"] == "escalation"]
    if not fired:
        sys.exit(f"incident {incident_id}: the sink has its escalation but the outbox has none")
    received = kit.received_at(engine, alert_id)
    at_sink, finished, fired_at = got["at"], seconds(run.finished_at), seconds(fired[0]["created_at"])
    out = {
        "finished-to-fired": fired_at - finished,
        "fired-to-received": at_sink - fired_at,
        "finished-to-received": at_sink - finished,
        "alert-to-finished": finished - seconds(received),
        "alert-to-received": at_sink - seconds(received),
    }
    return {key: value * 1000 for key, value in out.items()}, got["body"]


def bare_post(sink: Sink, body: bytes, count: int) -> dict[str, float]:
    """POST *body* to the sink with urllib, a new connection as the notifier's: ms to arrival, round trip."""
    request = urllib.request.Request(f"{sink.url}/bare", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "bench"})
    t0, p0 = time.time(), time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        status = response.status
    round_trip = time.perf_counter() - p0
    if status != 200:
        sys.exit(f"bare POST to the sink: HTTP {status}")
    arrived = sink.wait_path("/bare", count)["at"]
    return {"bare-post-to-received": (arrived - t0) * 1000, "bare-post-round-trip": round_trip * 1000}


def verdict(ms: float, limit_s: float) -> str:
    return "PASS" if ms < limit_s * 1000 else "MISS"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10,
                    help=f"failing runs measured, one at a time (default 10, at most {MAX_RUNS - 1})")
    ap.add_argument("--bare", type=int, default=5, help="bare POSTs to the sink after each run (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 runs")
    args = ap.parse_args()
    runs = 2 if args.quick else max(1, args.runs)
    bare = max(1, args.bare)
    if runs + 1 > MAX_RUNS:  # + the warm-up run; the runbook may make MAX_RUNS runs per hour
        sys.exit(f"--runs {runs}: at most {MAX_RUNS - 1} (the runbook's max_runs is {MAX_RUNS} per hour, "
                 "one is the warm-up)")
    ms: dict[str, list[float]] = {key: [] for key in LABELS}
    sizes: list[int] = []
    token, hook_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)

    with tempfile.TemporaryDirectory(prefix="rb-escalation-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        catalog = tmp / "catalog"
        kit.make_catalog(catalog, NAME, RUNBOOK, owners=OWNERS)
        url = sqlite_url(tmp / "b.db")
        sink = Sink()
        port, log = kit.free_port(), tmp / "server.log"
        print(f"escalation: `python -m runner serve --workers 1` in its own process on 127.0.0.1:{port}, "
              f"store {url}, runbook {NAME} (ansible.builtin.fail on {kit.HOST}), owners: level 1 after 0s "
              f"to a signed webhook at the sink {sink.url}/hook; escalator interval {INTERVAL:g} s (default)")
        hook_env = {HOOK_URL_ENV: f"{sink.url}/hook", UPDATES_URL_ENV: f"{sink.url}/updates",
                    HOOK_SECRET_ENV: hook_secret}
        try:
            with kit.serving(tmp, catalog, url, port, token, log, hook_env, drop=("RUNBOOK_", "BENCH_ESC_")) \
                    as (proc, store, engine):
                _, body = run_one(port, token, store, engine, 0, sink, hook_secret, proc, log)  # warm-up
                bare_post(sink, body, 1)
                posted = 1
                print(f"  {runs} runs, one at a time (each escalation received before the next alert), "
                      f"{bare} bare POST(s) of the same body to the sink after each, a random "
                      f"0-{INTERVAL:g} s pause before each alert")
                jitter = random.Random(20260305)  # fixed seed: the same pauses every time
                for i in range(runs):
                    time.sleep(jitter.uniform(0, INTERVAL))  # a fresh phase against the escalator's ticks
                    got, body = run_one(port, token, store, engine, i + 1, sink, hook_secret, proc, log)
                    sizes.append(len(body))
                    for key, value in got.items():
                        ms[key].append(value)
                    for _ in range(bare):
                        posted += 1
                        for key, value in bare_post(sink, body, posted).items():
                            ms[key].append(value)
                    print(f"  run {i + 1}: failed -> received {fmt(got['finished-to-received'])} ms "
                          f"(fired after {fmt(got['finished-to-fired'])} ms, delivered "
                          f"{fmt(got['fired-to-received'])} ms later), alert -> received "
                          f"{fmt(got['alert-to-received'])} ms, {len(body):,} bytes")
        finally:
            sink.close()

    stats = {k: (statistics.median(v), p90(v), min(v), max(v)) for k, v in ms.items()}
    for key, (med, p, lo, hi) in stats.items():
        print(f"  {key}: median {fmt(med)} ms, p90 {fmt(p)} ms, min {fmt(lo)} ms, max {fmt(hi)} ms")
    floor = INTERVAL * 1000
    ours, bare_med = stats["finished-to-received"][0], stats["bare-post-to-received"][0]
    print(f"  vs polling interval: median finished-to-received / {fmt(floor)} ms = x{ours / floor:.2f} "
          f"(a due level waits up to one interval, {fmt(floor / 2)} ms on average)")
    print(f"  vs bare POST: {ours - bare_med:+.0f} ms (median finished-to-received - median "
          f"bare-post-to-received), ratio x{ours / bare_med:.1f}")
    head_p90 = stats["finished-to-received"][1]
    print(f"{verdict(head_p90, TARGET_S)}: run finished -> escalation received, p90 {fmt(head_p90)} ms "
          f"(target < {TARGET_S:g} s)")
    print(f"{verdict(head_p90, ACHIEVABLE_S)}: run finished -> escalation received, p90 {fmt(head_p90)} ms "
          f"(achievable < {ACHIEVABLE_S:g} s)")

    quick = " --quick" if args.quick else ""
    print(f"\n## Run failed to escalation delivered (bench/escalation_latency.py{quick})\n")
    print("| Measure | Median | p90 | Min | Max | Target |")
    print("|---|---|---|---|---|---|")
    for key, (med, p, lo, hi) in stats.items():
        target = ""
        if key == "finished-to-received":
            target = (f"p90 < {TARGET_S:g} s: {verdict(p, TARGET_S)}; "
                      f"< {ACHIEVABLE_S:g} s: {verdict(p, ACHIEVABLE_S)}")
        print(f"| {LABELS[key]} | {fmt(med)} ms | {fmt(p)} ms | {fmt(lo)} ms | {fmt(hi)} ms | {target} |")
    print(f"| Escalator polling interval (baseline: a due level waits up to this, half on average) | "
          f"{fmt(floor)} ms |  |  |  |  |")
    print(f"| Run finished -> received vs polling interval (medians) | x{ours / floor:.2f} |  |  |  |  |")
    print(f"| Run finished -> received vs bare POST (medians) | {ours - bare_med:+.0f} ms "
          f"(x{ours / bare_med:.1f}) |  |  |  |  |")
    print(f"\nEscalation body {statistics.median(sizes):,.0f} bytes (median). "
          f"{kit.machine(('ansible-core', 'waitress'))}")


if __name__ == "__main__":
    main()
