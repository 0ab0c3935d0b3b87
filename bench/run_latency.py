"""Benchmark run latency: execute() against a bare ansible-playbook of the same play, interleaved.

Runs a one-step runbook (ansible.builtin.command argv [true] on web-1, a local-connection host) through
runner.executor.execute and, alternately, the same generated playbook and inventory through a bare
`ansible-playbook` subprocess with the executor's environment. Prints figures and PASS/MISS notes,
never asserts. Then samples this process's RSS over repeated execute() calls (a leak indicator).
Usage: [--runs N] [--rss-runs N] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner.catalog.load import load_catalog
from runner.records import RunStatus, StepRecord
from runner.runs import executor
from runner.runs.executor import Plan, build_inventory, build_playbook, execute, unsafe

EXAMPLES = Path(__file__).resolve().parents[1] / "runbooks"
NAME = "bench-true"
TARGET_MS = 50.0
RUNBOOK = f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {NAME}
title: Benchmark runbook, runs true on one host
owner: platform-ops
severity: warning
match:
  - alertname: BenchTrue
params:
  host: {{from: labels.instance, type: string}}
targets: {{hosts_from: host}}
authority:
  environments: [staging, prod]
  max_hosts: 1
  max_runs: {{count: 3, per: 1h}}
  cooldown: 10m
  timeout: 5m
steps:
  - name: run true
    task: {{ansible.builtin.command: {{argv: ["true"]}}}}
"""


def make_plan(root: Path) -> Plan:
    """A temporary catalog (the examples' policy, owners, inventory plus our runbook) and its Plan."""
    root.mkdir()
    for name in ("policy.yaml", "owners.yaml", "inventory.yaml"):
        shutil.copy(EXAMPLES / name, root / name)
    (root / f"{NAME}.yaml").write_text(RUNBOOK)
    cat = load_catalog(root)
    if cat.problems:
        sys.exit("the benchmark catalog has problems:\n" + "\n".join(map(str, cat.problems)))
    return Plan(cat.runbooks[NAME], {"host": "web-1"}, ["web-1"], cat.root, cat.inventory)


def run_ours(plan: Plan, work: Path) -> tuple[float, float]:
    """Seconds from the call to the first on_step callback (the step RUNNING) and to the return."""
    first: list[float] = []

    def on_step(_record: StepRecord) -> None:
        if not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    out = execute(plan, on_step=on_step, work_dir=work)
    total = time.perf_counter() - t0
    if out.status is not RunStatus.SUCCEEDED or not first:
        sys.exit(f"execute() did not succeed: {out.status} {out.message}")
    return first[0] - t0, total


def write_bare(plan: Plan, base: Path) -> tuple[list[str], dict[str, str]]:
    """The baseline command line and environment: the same playbook, inventory and extra vars."""
    base.mkdir()
    (base / "main.yml").write_text(json.dumps(build_playbook(plan)))
    (base / "hosts.json").write_text(json.dumps(build_inventory(plan)))
    (base / "extravars.json").write_text(json.dumps(unsafe(dict(plan.params))))
    for sub in ("tmp/local", "tmp/remote"):
        (base / sub).mkdir(parents=True)
    # the executor's own environment (private helper, used so the two can never drift apart)
    env = {**os.environ, **executor._environment(base, "bench-bare")}
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    return [playbook, "-i", str(base / "hosts.json"), "-e", f"@{base / 'extravars.json'}",
            str(base / "main.yml")], env


def run_bare(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bare ansible-playbook failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return total


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def rss_kib() -> tuple[int, int]:
    """(peak RSS from getrusage, current RSS from /proc/self/statm), both in KiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return peak, resident * os.sysconf("SC_PAGE_SIZE") // 1024


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="interleaved runs of each path (default 20)")
    ap.add_argument("--rss-runs", type=int, default=100, help="execute() calls for the RSS sample")
    ap.add_argument("--quick", action="store_true", help="3 interleaved runs and 10 RSS runs")
    args = ap.parse_args()
    runs, rss_runs = (3, 10) if args.quick else (max(1, args.runs), max(1, args.rss_runs))
    ms: dict[str, list[float]] = {"ours-to-first-step": [], "ours-total": [], "bare-total": []}

    with tempfile.TemporaryDirectory(prefix="rb-latency-") as tmp:
        plan = make_plan(Path(tmp) / "catalog")
        work = Path(tmp) / "work"
        work.mkdir()
        cmd, env = write_bare(plan, Path(tmp) / "bare")
        run_ours(plan, work)  # warm-up, not counted: imports, page cache, .pyc files
        run_bare(cmd, env)
        print(f"latency: {runs} interleaved runs of execute() and bare ansible-playbook, one local task")
        for i in range(runs):
            order = ("ours", "bare") if i % 2 == 0 else ("bare", "ours")  # drift hits both alike
            for path in order:
                if path == "ours":
                    first, total = run_ours(plan, work)
                    ms["ours-to-first-step"].append(first * 1000)
                    ms["ours-total"].append(total * 1000)
                else:
                    ms["bare-total"].append(run_bare(cmd, env) * 1000)
        stats = {k: (statistics.median(v), p90(v), min(v)) for k, v in ms.items()}
        for label, (med, p, lo) in stats.items():
            print(f"  {label}: median {med:.0f} ms, p90 {p:.0f} ms, min {lo:.0f} ms")
        overhead = stats["ours-total"][0] - stats["bare-total"][0]
        ratio = stats["ours-total"][0] / stats["bare-total"][0]
        verdict = "PASS" if overhead <= TARGET_MS else "MISS"
        print(f"  overhead: {overhead:.0f} ms (median ours-total - median bare-total), ratio ours/bare "
              f"x{ratio:.2f}")
        print(f"{verdict}: overhead {overhead:.0f} ms (target at most {TARGET_MS:.0f} ms)")

        print(f"\nrss: {rss_runs} execute() calls in this process")
        checkpoints = sorted({n for n in (1, 10, 50, 100, rss_runs) if n <= rss_runs})
        samples: dict[int, tuple[int, int]] = {}
        for n in range(1, rss_runs + 1):
            run_ours(plan, work)
            if n in checkpoints:
                samples[n] = rss_kib()
                print(f"  after run {n}: peak RSS (ru_maxrss) {mib(samples[n][0])}, "
                      f"current RSS (statm) {mib(samples[n][1])}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"  largest child process (ansible-playbook) peak RSS: {mib(children)}")
    base_run = 10 if rss_runs > 10 else 1
    growth = [(samples[rss_runs][j] - samples[base_run][j]) / samples[base_run][j] * 100 for j in (0, 1)]
    leak = "LEAK?" if max(growth) > 10 else "OK"
    print(f"{leak}: between run {base_run} and run {rss_runs}, peak RSS grew {growth[0]:+.1f}%, "
          f"current RSS {growth[1]:+.1f}% (more than +10% suggests a leak)")

    print(f"\n## Run latency (bench/run_latency.py{' --quick' if args.quick else ''})\n")
    print("| Measure | Median | p90 | Min | Target |")
    print("|---|---|---|---|---|")
    names = {"ours-to-first-step": "execute() to first step RUNNING", "ours-total": "execute() total",
             "bare-total": "bare ansible-playbook total (baseline)"}
    for key, (med, p, lo) in stats.items():
        print(f"| {names[key]} | {med:.0f} ms | {p:.0f} ms | {lo:.0f} ms |  |")
    print(f"| Overhead (median ours - median bare) | {overhead:.0f} ms (x{ratio:.2f}) |  |  | "
          f"<= {TARGET_MS:.0f} ms: {verdict} |")
    for j, what in ((0, "Peak RSS (ru_maxrss)"), (1, "Current RSS (statm)")):
        print(f"| {what}, run {base_run} -> {rss_runs} | {mib(samples[base_run][j])} -> "
              f"{mib(samples[rss_runs][j])} ({growth[j]:+.1f}%) |  |  | growth <= 10%: {leak} |")
    version = importlib.metadata.version
    print(f"\nMachine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} "
          f"({platform.machine()}), ansible-core {version('ansible-core')}, ansible-runner "
          f"{version('ansible-runner')}, load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
