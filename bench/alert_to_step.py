"""Benchmark alert received -> first step started, through the real server, against bare ansible-playbook.

Starts `python -m runner serve --workers 1` in a separate process on a free loopback port, with a
temporary SQLite store, a bearer token and a temporary catalog (the repository's policy, owners and
inventory plus one runbook: ansible.builtin.ping on web-1, a local-connection host, in staging). Posts
one Alertmanager v4 webhook at a time (a distinct fingerprint each), waits for its run to finish, and
reads from the store when the alert was received, the run created, claimed (started_at) and finished,
and when its first step started. Alternately, the baseline: a bare `ansible-playbook -i localhost,
-c local` of the same one-task play with the executor's environment, timed from the process start to
its first `TASK [` line and to its exit. Prints figures, never asserts; exits 1 only on errors.
Run it from the repository root: .venv/bin/python bench/alert_to_step.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import sqlalchemy as sa
from serverproc import free_port, log_tail, stop_server, wait_ready

from runner import executor
from runner.records import RunRecord, RunStatus
from runner.store import Store, sqlite_url
from runner.store.engine import create_engine, parse_url
from runner.store.tables import alerts
from runner.worker import POLL_INTERVAL

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
NAME = "bench-step"
ALERTNAME = "BenchStep"
HOST = "web-1"  # a local-connection host of runbooks/inventory.yaml
MAX_RUNS = 30  # the staging ceiling of runbooks/policy.yaml: 30 runs per hour
INTAKE = "/api/v1/alerts/alertmanager"
TOKEN_ENV = "RUNBOOK_WEBHOOK_TOKEN"
FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED,
         RunStatus.REJECTED, RunStatus.INTERRUPTED}
RUNBOOK = f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {NAME}
title: Benchmark runbook, pings one host
owner: platform-ops
severity: warning
match:
  - alertname: {ALERTNAME}
params:
  host: {{from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}}
targets: {{hosts_from: host}}
authority:
  environments: [staging]
  max_hosts: 1
  approval: none
  timeout: 5m
  max_runs: {{count: {MAX_RUNS}, per: 1h}}
steps:
  - name: ping
    task: {{ansible.builtin.ping: {{}}}}
"""
PLAYBOOK = [{"name": "bench", "hosts": "all", "gather_facts": False,
             "tasks": [{"name": "ping", "ansible.builtin.ping": {}}]}]
LABELS = {  # key: what the table calls it
    "received-to-created": "alert received -> run created",
    "received-to-claimed": "alert received -> run claimed (started_at)",
    "received-to-first-step": "alert received -> first step started",
    "received-to-finished": "alert received -> run finished",
    "bare-to-first-task": "bare ansible-playbook start -> first TASK line (baseline)",
    "bare-total": "bare ansible-playbook total (baseline)",
}


def make_catalog(root: Path) -> None:
    """The repository's policy, owners and inventory plus our runbook, in *root*."""
    root.mkdir()
    for name in ("policy.yaml", "owners.yaml", "inventory.yaml"):
        shutil.copy(RUNBOOKS / name, root / name)
    (root / f"{NAME}.yaml").write_text(RUNBOOK)


def start_server(tmp: Path, catalog: Path, url: str, port: int, token: str,
                 log: Path) -> subprocess.Popen[bytes]:
    """`python -m runner ... serve --workers 1`, its state and temporary files under *tmp*."""
    scratch = tmp / "server-tmp"  # the server's runs and catalog snapshots: cleaned up with *tmp*
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update({TOKEN_ENV: token, "RUNBOOK_STATE_DIR": str(tmp / "state"), "TMPDIR": str(scratch),
                "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, "-m", "runner", "--runbooks", str(catalog), "--db", url, "serve", "--port",
           str(port), "--workers", "1"]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def webhook(n: int) -> bytes:
    """An Alertmanager v4 webhook body holding the n-th firing BenchStep alert (its own fingerprint)."""
    labels = {"alertname": ALERTNAME, "env": "staging", "instance": f"{HOST}:9100", "job": "node",
              "severity": "warning", "bench_seq": str(n)}
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({
        "receiver": "runbook-runner", "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "benchmark alert"},
                    "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
                    "fingerprint": f"{secrets.token_hex(4)}{n:08x}"}],
        "groupLabels": {"alertname": ALERTNAME}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093", "version": "4",
        "groupKey": f'{{}}:{{alertname="{ALERTNAME}"}}', "truncatedAlerts": 0,
    }).encode()


def post_alert(port: int, token: str, n: int) -> tuple[int, str]:
    """Post the n-th alert; the stored alert's id and its run's id (exit on anything but a queued run)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", INTAKE, body=webhook(n), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}",
            "User-Agent": "Alertmanager/0.28.1"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 202:
        sys.exit(f"POST {INTAKE}: {response.status} {data[:300]!r}")
    stored = json.loads(data)["alerts"][0]
    run = stored["run"]
    if run is None or run["status"] != "queued":
        sys.exit(f"alert {n} did not queue a run of {NAME}: {stored}")
    return int(stored["id"]), str(run["id"])


def wait_finished(store: Store, run_id: str, proc: subprocess.Popen[bytes], log: Path,
                  limit: float = 120.0) -> RunRecord:
    """The run's record once it has finished (exit if it does not succeed within *limit* s)."""
    deadline = time.monotonic() + limit
    while True:
        run = store.get_run(run_id)
        if run is not None and run.status in FINAL:
            break
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode} during run {run_id}:\n{log_tail(log)}")
        if time.monotonic() >= deadline:
            sys.exit(f"run {run_id} did not finish within {limit:.0f} s:\n{log_tail(log)}")
        time.sleep(0.02)
    if run.status is not RunStatus.SUCCEEDED or not run.steps:
        sys.exit(f"run {run_id} ended {run.status.value} ({run.reason}), {len(run.steps)} step(s):\n"
                 f"{log_tail(log)}")
    return run


def run_ours(port: int, token: str, store: Store, engine: sa.Engine, n: int,
             proc: subprocess.Popen[bytes], log: Path) -> dict[str, float]:
    """Post one alert, wait for its run; ms from the alert's received_at to each point of the run."""
    alert_id, run_id = post_alert(port, token, n)
    run = wait_finished(store, run_id, proc, log)
    with engine.connect() as connection:
        received: datetime = connection.execute(
            sa.select(alerts.c.received_at).where(alerts.c.id == alert_id)).scalar_one()
    first_step = min(s.started_at for s in run.steps if s.started_at is not None)
    points = {"received-to-created": run.created_at, "received-to-claimed": run.started_at,
              "received-to-first-step": first_step, "received-to-finished": run.finished_at}
    out = {}
    for key, at in points.items():
        if at is None:
            sys.exit(f"run {run_id} has no {key.removeprefix('received-to-')} time: {run}")
        out[key] = (at - received).total_seconds() * 1000
    return out


def write_bare(base: Path) -> tuple[list[str], dict[str, str]]:
    """The baseline command line and environment: the same one-task play on localhost, local connection."""
    base.mkdir()
    (base / "main.yml").write_text(json.dumps(PLAYBOOK))
    for sub in ("tmp/local", "tmp/remote"):
        (base / sub).mkdir(parents=True)
    # the executor's own environment (private helper, used so the two can never drift apart)
    env = {**os.environ, **executor._environment(base, "bench-bare"), "PYTHONUNBUFFERED": "1"}
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    # local hosts run modules with this Python, as the executor's inventory says (no interpreter discovery)
    python = os.environ.get("RUNBOOK_PYTHON_INTERPRETER", sys.executable)
    return [playbook, "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={python}",
            str(base / "main.yml")], env


def run_bare(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """ms from the process start to its first `TASK [` line on stdout, and to its exit."""
    first: float | None = None
    lines: list[str] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if first is None and line.startswith("TASK ["):
            first = time.perf_counter()
        lines.append(line)
    code = proc.wait()
    total = time.perf_counter() - t0
    if code != 0 or first is None:
        sys.exit(f"bare ansible-playbook failed ({code}, TASK line seen: {first is not None}):\n"
                 + "".join(lines))
    return {"bare-to-first-task": (first - t0) * 1000, "bare-total": total * 1000}


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def fmt(value: float) -> str:
    """Milliseconds, two decimals below 10 ms (run created is within a millisecond of received)."""
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20,
                    help=f"interleaved runs of each path (default 20, at most {MAX_RUNS - 1})")
    ap.add_argument("--quick", action="store_true", help="3 interleaved runs")
    args = ap.parse_args()
    runs = 3 if args.quick else max(1, args.runs)
    if runs + 1 > MAX_RUNS:  # + the warm-up run; the runbook may make MAX_RUNS runs per hour
        sys.exit(f"--runs {runs}: at most {MAX_RUNS - 1} (the staging ceiling is {MAX_RUNS} runs per hour, "
                 "one is the warm-up)")
    ms: dict[str, list[float]] = {key: [] for key in LABELS}
    token = secrets.token_urlsafe(24)

    with tempfile.TemporaryDirectory(prefix="rb-alert-step-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        catalog = tmp / "catalog"
        make_catalog(catalog)
        url = sqlite_url(tmp / "bench.db")
        cmd, env = write_bare(tmp / "bare")
        port, log = free_port(), tmp / "server.log"
        print(f"alert-to-step: `python -m runner serve --workers 1` in its own process on 127.0.0.1:{port}, "
              f"store {url}, runbook {NAME} (ansible.builtin.ping on {HOST}), bearer token; worker poll "
              f"interval {POLL_INTERVAL:g} s")
        t0 = time.perf_counter()
        proc = start_server(tmp, catalog, url, port, token, log)
        store = Store(url)
        engine = create_engine(parse_url(url))
        try:
            wait_ready(proc, port, log, "/readyz")
            print(f"  server pid {proc.pid} ready after {time.perf_counter() - t0:.2f} s")
            run_ours(port, token, store, engine, 0, proc, log)  # warm-up, not counted: imports, page cache
            run_bare(cmd, env)
            print(f"  {runs} interleaved runs: one alert at a time (each run finished before the next "
                  "alert), and bare ansible-playbook -i localhost, -c local of the same ping task")
            for i in range(runs):
                order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")  # drift hits both alike
                for path in order:
                    got = run_ours(port, token, store, engine, i + 1, proc, log) if path == "ours" \
                        else run_bare(cmd, env)
                    for key, value in got.items():
                        ms[key].append(value)
        finally:
            engine.dispose()
            store.close()
            stop_server(proc)

    stats = {k: (statistics.median(v), p90(v), min(v)) for k, v in ms.items()}
    for key, (med, p, lo) in stats.items():
        print(f"  {key}: median {fmt(med)} ms, p90 {fmt(p)} ms, min {fmt(lo)} ms")
    ours, bare = stats["received-to-first-step"][0], stats["bare-to-first-task"][0]
    diff, ratio = ours - bare, ours / bare
    print(f"  first step: {diff:+.0f} ms (median received-to-first-step - median bare-to-first-task), "
          f"ratio x{ratio:.2f}")
    total_diff = stats["received-to-finished"][0] - stats["bare-total"][0]
    total_ratio = stats["received-to-finished"][0] / stats["bare-total"][0]
    print(f"  whole run: {total_diff:+.0f} ms (median received-to-finished - median bare-total), "
          f"ratio x{total_ratio:.2f}")

    print(f"\n## Alert to first step (bench/alert_to_step.py{' --quick' if args.quick else ''})\n")
    print("| Measure | Median | p90 | Min |")
    print("|---|---|---|---|")
    for key, (med, p, lo) in stats.items():
        print(f"| {LABELS[key]} | {fmt(med)} ms | {fmt(p)} ms | {fmt(lo)} ms |")
    print(f"| Received -> first step vs bare start -> first TASK (medians) | {diff:+.0f} ms (x{ratio:.2f}) "
          "|  |  |")
    print(f"| Received -> finished vs bare total (medians) | {total_diff:+.0f} ms (x{total_ratio:.2f}) "
          "|  |  |")
    print(f"\nMachine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} "
          f"({platform.machine()}), ansible-core {version('ansible-core')}, ansible-runner "
          f"{version('ansible-runner')}, waitress {version('waitress')}, SQLite {sqlite3.sqlite_version}, "
          f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
