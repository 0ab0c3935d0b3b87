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
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serverproc as kit
import sqlalchemy as sa
from serverproc import fmt, p90

from runner.records import RunRecord, RunStatus
from runner.runs import executor
from runner.runs.worker import POLL_INTERVAL
from runner.store import Store, sqlite_url

NAME = "bench-step"
ALERTNAME = "BenchStep"
MAX_RUNS = 30  # the staging ceiling of runbooks/policy.yaml: 30 runs per hour
FINAL = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED,
         RunStatus.REJECTED, RunStatus.INTERRUPTED}
RUNBOOK = kit.runbook(NAME, "Benchmark runbook, pings one host", ALERTNAME, MAX_RUNS, "ping",
                      "{ansible.builtin.ping: {}}")
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


def post(port: int, token: str, n: int) -> tuple[int, str]:
    """Post the n-th alert; the stored alert's id and its run's id (exit on anything but a queued run)."""
    stored = kit.post_alert(port, token, kit.webhook(ALERTNAME, n), n, NAME)
    return int(stored["id"]), str(stored["run"]["id"])


def wait_finished(store: Store, run_id: str, proc: subprocess.Popen[bytes], log: Path,
                  limit: float = 120.0) -> RunRecord:
    """The run's record once it has finished (exit if it does not succeed within *limit* s)."""
    deadline = time.monotonic() + limit
    while True:
        run = store.get_run(run_id)
        if run is not None and run.status in FINAL:
            break
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode} during run {run_id}:\n{kit.log_tail(log)}")
        if time.monotonic() >= deadline:
            sys.exit(f"run {run_id} did not finish within {limit:.0f} s:\n{kit.log_tail(log)}")
        time.sleep(0.02)
    if run.status is not RunStatus.SUCCEEDED or not run.steps:
        sys.exit(f"run {run_id} ended {run.status.value} ({run.reason}), {len(run.steps)} step(s):\n"
                 f"{kit.log_tail(log)}")
    return run


def run_ours(port: int, token: str, store: Store, engine: sa.Engine, n: int,
             proc: subprocess.Popen[bytes], log: Path) -> dict[str, float]:
    """Post one alert, wait for its run; ms from the alert's received_at to each point of the run."""
    alert_id, run_id = post(port, token, n)
    run = wait_finished(store, run_id, proc, log)
    received = kit.received_at(engine, alert_id)
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
        kit.make_catalog(catalog, NAME, RUNBOOK)
        url = sqlite_url(tmp / "bench.db")
        cmd, env = write_bare(tmp / "bare")
        port, log = kit.free_port(), tmp / "server.log"
        print(f"alert-to-step: `python -m runner serve --workers 1` in its own process on 127.0.0.1:{port}, "
              f"store {url}, runbook {NAME} (ansible.builtin.ping on {kit.HOST}), bearer token; worker poll "
              f"interval {POLL_INTERVAL:g} s")
        with kit.serving(tmp, catalog, url, port, token, log) as (proc, store, engine):
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
    print(f"\n{kit.machine(('ansible-core', 'ansible-runner', 'waitress'))}")


if __name__ == "__main__":
    main()
