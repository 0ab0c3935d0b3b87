"""Benchmark alert intake over HTTP against a hello-world route served by the same server, same run.

Starts the real receiver (runner.web.create_app under waitress, 8 threads) in a separate process on a
free loopback port, with a temporary SQLite store, the repository's runbooks/ and a bearer token, plus
GET /bench/hello on the same app as the baseline. Senders are threads with one keep-alive
http.client connection each; at 1, 8 and 32 senders it measures the hello route, then
POST /api/v1/alerts/alertmanager with one new alert per request (a distinct fingerprint each, an
alertname no runbook matches: intake, not run creation). Then a storm: copies of ONE alert that a
runbook matches, from 32 senders, and what the store kept (alerts, repeats, runs). Prints figures and
PASS/MISS notes, never asserts; exits 1 only on errors (an unexpected status or a failed request).
Run it from the repository root: .venv/bin/python bench/intake.py [--seconds S] [--storm N] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import logging
import math
import os
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import waitress
from flask import jsonify
from flask.typing import ResponseReturnValue
from serverproc import free_port, log_tail, stop_server, wait_ready

from runner.alerts.model import Alert
from runner.catalog.load import load_catalog
from runner.catalog.models import Verdict
from runner.routing.router import Router
from runner.store import Store, sqlite_url
from runner.web import AppConfig, create_app
from runner.web.auth import WebhookAuth

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
THREADS = 8  # waitress request threads, as `runbook serve` defaults to
SENDERS = (1, 8, 32)
STORM_SENDERS = 32
HELLO = "/bench/hello"
INTAKE = "/api/v1/alerts/alertmanager"
TOKEN_ENV = "RUNBOOK_WEBHOOK_TOKEN"
DB_ENV = "RUNBOOK_DB_URL"
NOISE = "BenchNoRunbook"  # no runbook in runbooks/ answers it: the throughput phases measure intake only
STORM_RUNBOOK = "disk-full-cleanup"  # DiskAlmostFull, env staging, a /tmp mount point, host web-2
RATIO_TARGET = 0.5
P99_TARGET_MS = 50.0
GENERATOR = ("http://prometheus.example.com:9090/graph?g0.expr=node_filesystem_avail_bytes%7Bjob%3D%22node"
             "%22%7D+%2F+node_filesystem_size_bytes+%3C+0.1&g0.tab=1")

# method, path, body, headers, the status that counts as success
Request = tuple[str, str, bytes | None, dict[str, str], int]


@dataclass
class Result:
    """One load phase: latencies (s) of the measured requests, errors, the window and CPU used in it."""

    latencies: list[float]
    errors: list[str]
    seconds: float
    server_cpu: float | None  # percent of one CPU over the window, None when /proc is not there
    bench_cpu: float

    @property
    def rate(self) -> float:
        """Measured requests per second."""
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def pct_ms(self, q: float) -> float:
        """Nearest-rank q-quantile of the latencies, in ms (nan without requests)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


@dataclass
class Figures:
    """What the run printed, gathered for the table and the notes."""

    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def serve(port: int) -> None:
    """The server process: the real app plus GET /bench/hello, on one waitress with THREADS threads."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = Store(os.environ[DB_ENV])
    store.upgrade()
    auth = WebhookAuth(token=os.environ[TOKEN_ENV])
    app = create_app(AppConfig(store=store, auth=auth, runbooks_dir=RUNBOOKS))

    @app.get(HELLO)
    def hello() -> ResponseReturnValue:
        return jsonify(hello="world")

    waitress.serve(app, host="127.0.0.1", port=port, threads=THREADS, ident="runbook-runner")


def start_server(port: int, url: str, token: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `bench/intake.py --serve PORT` with the store URL and token in its environment."""
    env = {**os.environ, DB_ENV: url, TOKEN_ENV: token, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process *pid* (all its threads), from /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex characters over the sorted labels, as long as Alertmanager's own fingerprints."""
    text = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alertmanager(labels: dict[str, str], annotations: dict[str, str], starts_at: str) -> bytes:
    """An Alertmanager v4 webhook body holding one firing alert."""
    name, env = labels["alertname"], labels.get("env", "")
    return json.dumps({
        "receiver": "runbook-runner", "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations, "startsAt": starts_at,
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": GENERATOR,
                    "fingerprint": fingerprint(labels)}],
        "groupLabels": {"alertname": name}, "commonLabels": labels, "commonAnnotations": annotations,
        "externalURL": "http://alertmanager.example.com:9093", "version": "4",
        "groupKey": f'{{}}/{{env="{env}"}}:{{alertname="{name}"}}', "truncatedAlerts": 0,
    }).encode()


def noise_labels(n: int) -> dict[str, str]:
    """Labels of the n-th distinct alert no runbook answers (a new fingerprint for every n)."""
    return {"alertname": NOISE, "device": "/dev/sda1", "env": "staging", "fstype": "ext4",
            "instance": f"node-{n:07d}:9100", "job": "node", "mountpoint": "/srv", "severity": "warning",
            "team": "platform-ops"}


def storm_alert(log_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations of the storm's alert: disk-full-cleanup on web-2 in staging, log_dir ours."""
    labels = {"alertname": "DiskAlmostFull", "device": "/dev/sda2", "env": "staging", "fstype": "ext4",
              "instance": "web-2:9100", "job": "node", "mountpoint": str(log_dir), "severity": "warning"}
    annotations = {"summary": "Disk almost full on web-2:9100", "log_dir": str(log_dir),
                   "description": f"{log_dir} on web-2:9100 has 7% space left."}
    return labels, annotations


def check_routing(storm: Alert) -> str:
    """Exit unless the storm alert routes to STORM_RUNBOOK, allowed, and NOISE routes nowhere."""
    router = Router(load_catalog(RUNBOOKS))
    if router.matches(Alert(noise_labels(0))):
        sys.exit(f"a runbook in {RUNBOOKS} answers {NOISE}: the throughput phases would create runs")
    route = router.route(storm)
    got = route.runbook.name if route.runbook else None
    if got != STORM_RUNBOOK or route.decision is None or route.decision.verdict is not Verdict.ALLOWED:
        reason = route.decision.reason if route.decision else "no match"
        sys.exit(f"the storm alert should route to {STORM_RUNBOOK}, allowed; it routes to {got} ({reason})")
    return f"routes to {got}, {route.decision.verdict.value}, hosts {', '.join(route.decision.hosts)}"


def sender(port: int, make: Callable[[int, int], Request], k: int, count: int | None, times: list[float],
           gate: threading.Barrier, latencies: list[float], errors: list[str]) -> None:
    """One sender: its own keep-alive connection; records latencies of requests started after warm-up.

    With *count* it sends that many requests; otherwise it sends until times[1], recording those
    started at or after times[0] (the end of the warm-up). The main thread fills *times* before the gate.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.connect()
    except OSError as e:
        errors.append(f"sender {k}: cannot connect: {e}")
    gate.wait()
    warm_end, end = times
    i = 0
    try:
        while (i < count) if count is not None else (time.perf_counter() < end):
            method, path, body, headers, expected = make(k, i)
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{method} {path}: {type(e).__name__}: {e}")
                conn.close()  # http.client reconnects on the next request
                continue
            t1 = time.perf_counter()
            if response.status != expected:
                errors.append(f"{method} {path}: {response.status} {data[:200]!r}")
            elif t0 >= warm_end:
                latencies.append(t1 - t0)
    finally:
        conn.close()


def drive(port: int, pid: int, senders: int, make: Callable[[int, int], Request], *, warmup: float = 0.0,
          seconds: float = 0.0, count: int | None = None) -> Result:
    """Run *senders* senders for warmup + seconds (or *count* requests in all, timed from the start)."""
    counts = [count // senders + (k < count % senders) for k in range(senders)] if count is not None else []
    per: list[list[float]] = [[] for _ in range(senders)]
    errors: list[str] = []
    times: list[float] = []
    gate = threading.Barrier(senders + 1)
    threads = [threading.Thread(target=sender, daemon=True, args=(
        port, make, k, counts[k] if counts else None, times, gate, per[k], errors)) for k in range(senders)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    times.extend([start + warmup, start + warmup + seconds] if count is None else [start, math.inf])
    gate.wait()
    if count is None:
        time.sleep(max(0.0, times[0] - time.perf_counter()))
    cpu0, own0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
    if count is None:
        time.sleep(max(0.0, times[1] - time.perf_counter()))
    else:
        for t in threads:
            t.join()
    cpu1, own1, t1 = cpu_seconds(pid), time.process_time(), time.perf_counter()
    for t in threads:
        t.join()
    window = (t1 - t0) if count is not None else seconds
    server_cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / (t1 - t0) * 100
    own = (own1 - own0) / (t1 - t0) * 100
    return Result([x for lat in per for x in lat], errors, window, server_cpu, own)


def ms(value: float) -> str:
    """Milliseconds, two decimals below 10 ms."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def summary(r: Result) -> str:
    """requests/s, p50 and p99 of one phase."""
    return f"{r.rate:,.0f} req/s, p50 {ms(r.pct_ms(0.5))} ms, p99 {ms(r.pct_ms(0.99))} ms"


def cpu(r: Result) -> str:
    """CPU of the server and of this (sending) process over the window, in % of one CPU."""
    server = "n/a" if r.server_cpu is None else f"{r.server_cpu:.0f}%"
    return f"CPU server {server}, senders {r.bench_cpu:.0f}%"


def throughput(port: int, pid: int, token: str, warmup: float, seconds: float, figs: Figures) -> None:
    """Hello, then intake of new alerts, at each sender count; rows, notes and errors into *figs*."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
               "User-Agent": "Alertmanager/0.28.1"}
    starts_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    seq = itertools.count()  # next() is atomic under the GIL: every request gets a new fingerprint
    ann = {"summary": "Synthetic alert of the intake benchmark", "description": "/srv has 7% space left."}

    def hello(_k: int, _i: int) -> Request:
        return "GET", HELLO, None, {}, 200

    def intake(_k: int, _i: int) -> Request:
        return "POST", INTAKE, alertmanager(noise_labels(next(seq)), ann, starts_at), headers, 202

    print(f"throughput: {seconds:g} s per phase after a {warmup:g} s warm-up; hello = GET {HELLO}, intake = "
          f"POST {INTAKE} (one new alert per request, alertname {NOISE})")
    for n in SENDERS:
        h = drive(port, pid, n, hello, warmup=warmup, seconds=seconds)
        a = drive(port, pid, n, intake, warmup=warmup, seconds=seconds)
        figs.errors.extend(h.errors + a.errors)
        ratio = a.rate / h.rate if h.rate else math.nan
        who = f"{n} sender{'s' if n > 1 else ''}"
        print(f"  {who}: hello {summary(h)} ({cpu(h)})")
        print(f"  {who}: intake {summary(a)} ({cpu(a)})")
        print(f"  {who}: ratio intake/hello x{ratio:.2f} (target >= x{RATIO_TARGET:.2f})")
        verdict = "PASS" if ratio >= RATIO_TARGET else "MISS"
        target = f">= x{RATIO_TARGET:.2f}: {verdict}"
        figs.notes.append(f"{verdict}: intake at {who} is {ratio:.0%} of the hello rate "
                          f"(target >= {RATIO_TARGET:.0%})")
        if n == max(SENDERS):
            p99 = a.pct_ms(0.99)
            p99_verdict = "PASS" if p99 < P99_TARGET_MS else "MISS"
            target += f"; p99 < {P99_TARGET_MS:.0f} ms: {p99_verdict}"
            figs.notes.append(f"{p99_verdict}: intake p99 at {who} is {ms(p99)} ms "
                              f"(target < {P99_TARGET_MS:.0f} ms)")
        figs.rows.append((str(n), summary(h), summary(a), f"x{ratio:.2f}", target))


def storm(port: int, pid: int, token: str, url: str, copies: int, log_dir: Path, settle: float,
          routed: str, figs: Figures) -> None:
    """Post *copies* of one alert a runbook matches from STORM_SENDERS senders; print what was kept."""
    labels, annotations = storm_alert(log_dir)
    starts_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = alertmanager(labels, annotations, starts_at)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
               "User-Agent": "Alertmanager/0.28.1"}
    fp = fingerprint(labels)
    with Store(url) as store:
        before_all, before_repeats = store.count_alerts(), store.count_alerts(repeats=True)
        before_runs = len(store.list_runs(runbook=STORM_RUNBOOK, limit=None))

    print(f"\nstorm: {copies:,} copies of one firing alert (DiskAlmostFull, env staging, instance "
          f"web-2:9100, fingerprint {fp}; {routed}) from {STORM_SENDERS} senders")
    r = drive(port, pid, STORM_SENDERS, lambda _k, _i: ("POST", INTAKE, body, headers, 202), count=copies)
    figs.errors.extend(r.errors)
    print(f"  {len(r.latencies):,} accepted in {r.seconds:.2f} s: {summary(r)} ({cpu(r)})")
    with Store(url) as store:
        deadline = time.monotonic() + settle  # leave run creation a moment, should it happen off-request
        while True:
            runs = len(store.list_runs(runbook=STORM_RUNBOOK, limit=None)) - before_runs
            if runs or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        stored = store.count_alerts() - before_all
        ours = store.count_alerts(fingerprint=fp)
        repeats = store.count_alerts(repeats=True) - before_repeats
    print(f"  store: {stored:,} alerts stored ({ours:,} of fingerprint {fp}), {repeats:,} marked repeats, "
          f"{runs} run(s) of {STORM_RUNBOOK} created")
    verdict = "PASS" if runs == 1 else "MISS"
    figs.notes.append(f"{verdict}: the storm of {copies:,} copies made {runs} run(s) of {STORM_RUNBOOK} "
                      "(target exactly 1)")
    result = f"{summary(r)}; {stored:,} stored, {repeats:,} repeats, {runs} run(s)"
    figs.rows.append((f"{STORM_SENDERS}, storm of {copies:,} copies", "", result, "",
                      f"exactly 1 run: {verdict}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per phase, not counted")
    ap.add_argument("--storm", type=int, default=10_000, help="copies of one alert in the storm")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait for the storm's run to appear in the store (default 2)")
    ap.add_argument("--quick", action="store_true", help="0.3 s phases, a 200-alert storm")
    ap.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the server process
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.quick:
        args.seconds, args.warmup, args.storm, args.settle = 0.3, 0.1, 200, 0.5
    figs = Figures()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="rb-intake-", dir="/tmp") as tmp:
        url = sqlite_url(Path(tmp) / "bench.db")
        log_dir = Path(tmp) / "logs"  # the storm alert's log_dir: empty, under /tmp as its runbook wants
        log_dir.mkdir()
        port, log = free_port(), Path(tmp) / "server.log"
        routed = check_routing(Alert(*storm_alert(log_dir)))  # before the server: fail fast
        print(f"intake: the real server in its own process (waitress, {THREADS} threads) on "
              f"127.0.0.1:{port}, store {url}, catalog {RUNBOOKS.relative_to(ROOT)}/, bearer token")
        t0 = time.perf_counter()
        proc = start_server(port, url, token, log)
        try:
            wait_ready(proc, port, log, HELLO)
            print(f"  server pid {proc.pid} answered after {time.perf_counter() - t0:.2f} s")
            throughput(port, proc.pid, token, args.warmup, args.seconds, figs)
            storm(port, proc.pid, token, url, args.storm, log_dir, args.settle, routed, figs)
            if proc.poll() is not None:
                figs.errors.append(f"the server exited with {proc.returncode}")
        finally:
            stop_server(proc)
            server_log = log_tail(log)

    print(f"\n## Alert intake (bench/intake.py{' --quick' if args.quick else ''})\n")
    print("| Senders | GET /bench/hello (baseline, same server) | POST alertmanager intake | "
          "Ratio (intake / hello) | Target |")
    print("|---|---|---|---|---|")
    for row in figs.rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nMachine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} "
          f"({platform.machine()}), waitress {version('waitress')}, Flask {version('flask')}, SQLAlchemy "
          f"{version('sqlalchemy')}, SQLite {sqlite3.sqlite_version}, load average "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("\n".join(figs.notes))
    if figs.errors:
        print(f"\nERROR: {len(figs.errors):,} failed request(s); the first ones:", file=sys.stderr)
        for line in figs.errors[:5]:
            print(f"  {line}", file=sys.stderr)
        print(f"server log, last lines:\n{server_log}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
