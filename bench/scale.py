"""Benchmark scaling out: runs per minute by number of workers, PostgreSQL against the embedded SQLite
setup, and new run -> claimed latency with LISTEN/NOTIFY against polling, all in one session.

The runs are of a no-op runbook (one step, ansible.builtin.command argv [true] on web-1, a
local-connection host, in dev where the policy sets no ceiling; concurrency 1000 and no cooldown, so
every run queues at once). They are queued straight in the store, as an operator's would be
(runner.runs.prepare, then Store.enqueue).

Throughput: the workers start first (default options: LISTEN/NOTIFY on PostgreSQL) and idle; then M
runs are queued in one burst, and the figure is M / (first run created -> last run finished), from the
store's timestamps. Every run must succeed; the runs each worker process claimed are counted.
  - PostgreSQL (a private schema of the test database per measurement): K = 1, 2, 4 separate
    `runbook worker --workers 1` processes, as workers on separate machines would be: each has its own
    interpreter (no shared GIL), store connections and LISTEN session, rather than K threads of one
    process. 1 process is the baseline.
  - SQLite: the embedded setup, one `runbook serve --workers K` process (threads) on a SQLite file.
  Also printed: CPU seconds per run (the worker processes and the Ansible processes they waited for),
  which bounds runs/min on this machine's cores whatever the number of workers.
Claim latency: three idle `runbook worker --workers 1` processes on PostgreSQL, each in its own schema:
`--listen` (LISTEN/NOTIFY), `--no-listen --poll 0.2` (the default poll, the baseline) and `--no-listen
--poll 1.0`. One run at a time, interleaved over the three, each queued after a random pause of 0.3 s
plus up to one poll interval (so the poll's phase is uniform) and finished before the next; the figure
is created_at -> started_at, the claim's own time (queue.claim), from the store.
Prints figures, never asserts; exits 1 only on errors (a run that did not succeed, a worker that died).
Run it from the repository root: .venv/bin/python bench/scale.py [--runs M] [--samples N] [--quick]
PostgreSQL: $RUNBOOK_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test (trust auth).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import serverproc as kit
import sqlalchemy as sa
from serverproc import fmt, p90
from sqlalchemy.engine import make_url

from runner.catalog.live import CatalogHolder, Loaded
from runner.records import FINAL_STATUSES, RunRecord, RunStatus, Trigger
from runner.runs.lifecycle import Request, candidate, prepare
from runner.store import Store, sqlite_url

NAME = "bench-noop"
RUNBOOK = kit.runbook(NAME, "Benchmark runbook, runs true on one host", "BenchNoop", 1_000_000, "run true",
                      '{ansible.builtin.command: {argv: ["true"]}}', environment="dev",
                      limits="  concurrency: 1000\n")
TRIGGER = Trigger("manual", "bench")
READY = "worker(s) on"  # what `runbook worker` logs once its threads are started


@dataclass(frozen=True)
class Setup:
    """One throughput measurement: where the store is and how the workers run."""

    label: str
    database: str  # "postgresql" or "sqlite"
    processes: int  # PostgreSQL: `runbook worker --workers 1` processes; SQLite: 1 `runbook serve`
    threads: int = 1


SETUPS = (
    Setup("PostgreSQL, 1 worker process", "postgresql", 1),  # the baseline
    Setup("PostgreSQL, 2 worker processes", "postgresql", 2),
    Setup("PostgreSQL, 4 worker processes", "postgresql", 4),
    Setup("SQLite, `runbook serve --workers 1`", "sqlite", 1, 1),
    Setup("SQLite, `runbook serve --workers 2`", "sqlite", 1, 2),
)


@dataclass(frozen=True)
class Mode:
    """How an idle worker learns of a new run, for the latency measurement."""

    label: str
    options: tuple[str, ...]
    period: float  # the poll interval: the random pause before each run spans one


MODES = (
    Mode("LISTEN/NOTIFY (`--listen`)", ("--listen",), 0.2),
    Mode("polling every 0.2 s (`--no-listen`, the default poll)", ("--no-listen", "--poll", "0.2"), 0.2),
    Mode("polling every 1.0 s (`--no-listen --poll 1.0`)", ("--no-listen", "--poll", "1.0"), 1.0),
)
BASELINE_MODE = 1


@dataclass
class Throughput:
    """What one throughput measurement saw."""

    runs: list[RunRecord]
    seconds: float  # first run created -> last run finished
    cpu: float | None  # CPU seconds of the worker processes and their children, None without /proc
    enqueue: float  # seconds the burst of enqueues took
    load: float  # the 1-minute load average once all were final: how much else ran on the machine
    pids: list[int]  # the worker processes

    @property
    def succeeded(self) -> int:
        return sum(1 for r in self.runs if r.status is RunStatus.SUCCEEDED)

    @property
    def per_minute(self) -> float:
        return len(self.runs) / self.seconds * 60

    def run_seconds(self) -> float:
        """The median run's claimed -> finished, in seconds."""
        return statistics.median((r.finished_at - r.started_at).total_seconds() for r in self.runs
                                 if r.finished_at is not None and r.started_at is not None)

    def per_worker(self) -> str:
        """Runs claimed by each worker process (SQLite: the one process), e.g. 8/7/8/7."""
        # claimed_by is kind@host:pid:pid-namespace:random (runner.runs.worker_id)
        claims = Counter((r.claimed_by or "").partition("@")[2].split(":")[1] for r in self.runs)
        return "/".join(str(claims[str(pid)]) for pid in self.pids)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of *pid* and of the children it has waited for, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return sum(int(v) for v in stat[11:15]) / os.sysconf("SC_CLK_TCK")


def total_cpu(procs: list[subprocess.Popen[bytes]]) -> float | None:
    values = [cpu_seconds(p.pid) for p in procs]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def enqueue(store: Store, active: Loaded) -> RunRecord:
    """Queue one run of the no-op runbook on web-1, as an operator's request; exit unless it is queued."""
    prepared = prepare(active.catalog, Request(NAME, TRIGGER, params={"host": kit.HOST}), active.revision)
    record = store.enqueue(candidate(active.catalog, prepared))
    if record.status is not RunStatus.QUEUED:
        sys.exit(f"run {record.id} was not queued: {record.status.value} ({record.reason})")
    return record


def watch(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Exit if one of the worker processes has died."""
    for proc, log in zip(procs, logs, strict=True):
        if proc.poll() is not None:
            sys.exit(f"worker pid {proc.pid} exited with {proc.returncode}:\n{kit.log_tail(log)}")


def wait_final(store: Store, count: int, procs: list[subprocess.Popen[bytes]], logs: list[Path],
               limit: float) -> None:
    """Return once *count* runs of the runbook are final; exit if a worker dies or *limit* s pass."""
    deadline = time.monotonic() + limit
    final = {s.value for s in FINAL_STATUSES}
    while True:
        done = sum(n for runbook, status, n in store.status_counts() if runbook == NAME and status in final)
        if done >= count:
            return
        watch(procs, logs)
        if time.monotonic() >= deadline:
            sys.exit(f"{done} of {count} runs final after {limit:.0f} s:\n{kit.log_tail(logs[0])}")
        time.sleep(0.1)


def burst(store: Store, active: Loaded, count: int, procs: list[subprocess.Popen[bytes]],
          logs: list[Path]) -> Throughput:
    """Queue *count* runs at once for the running, idle workers; what the store says once all are final."""
    cpu0 = total_cpu(procs)
    t0 = time.perf_counter()
    for _ in range(count):
        enqueue(store, active)
    enqueued = time.perf_counter() - t0
    wait_final(store, count, procs, logs, limit=60 + 10 * count)
    cpu1 = total_cpu(procs)
    runs = store.list_runs(runbook=NAME, limit=None)
    created = min(r.created_at for r in runs if r.created_at is not None)
    finished = max(r.finished_at for r in runs if r.finished_at is not None)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Throughput(runs, (finished - created).total_seconds(), cpu, enqueued, os.getloadavg()[0],
                      [p.pid for p in procs])


def measure(setup: Setup, tmp: Path, catalog: Path, active: Loaded, count: int, postgres: str) -> Throughput:
    """Start the setup's workers, let them idle, queue *count* runs, stop them; what the store says."""
    key = f"{setup.database}-{setup.processes}x{setup.threads}"
    if setup.database == "sqlite":
        home = tmp / key  # the server's state and temporary files
        home.mkdir()
        url, port, log = sqlite_url(home / "runs.db"), kit.free_port(), tmp / f"{key}.log"
        with kit.serving(home, catalog, url, port, secrets.token_urlsafe(24), log,
                         workers=setup.threads) as (proc, store, _engine):
            return burst(store, active, count, [proc], [log])
    with kit.postgres_schema(postgres, "bench_scale") as url, Store(url) as store:
        store.upgrade()  # once, before the workers start: they would all migrate at once
        logs = [tmp / f"{key}-{i}.log" for i in range(setup.processes)]
        procs = [kit.start_worker(tmp, catalog, url, log, ("--workers", str(setup.threads))) for log in logs]
        try:
            for proc, log in zip(procs, logs, strict=True):
                kit.wait_logged(proc, log, READY)
            return burst(store, active, count, procs, logs)
        finally:
            kit.stop_all(procs)


def wait_run(store: Store, run_id: str, proc: subprocess.Popen[bytes], log: Path, limit: float = 60.0) \
        -> RunRecord:
    """The run once final; exit if its worker dies or it takes more than *limit* s."""
    deadline = time.monotonic() + limit
    while True:
        run = store.get_run(run_id)
        if run is not None and run.status.final:
            return run
        watch([proc], [log])
        if time.monotonic() >= deadline:
            sys.exit(f"run {run_id} not final after {limit:.0f} s:\n{kit.log_tail(log)}")
        time.sleep(0.05)


def latency(tmp: Path, catalog: Path, active: Loaded, samples: int, postgres: str) \
        -> tuple[list[list[float]], list[float], list[str]]:
    """ms from created to claimed per mode (one idle worker process each), ms from created to the
    enqueue's return (its commit) over all modes, and the errors seen."""
    ms: list[list[float]] = [[] for _ in MODES]
    committed: list[float] = []
    errors: list[str] = []
    rng = random.Random(7)
    with ExitStack() as stack:
        # NOTIFY's channel is database-wide: the LISTEN worker also wakes for runs queued in the other
        # schemas (the other modes, tests on the same database). Harmless: it claims nothing there.
        workers = []
        for i, mode in enumerate(MODES):
            url = stack.enter_context(kit.postgres_schema(postgres, "bench_claim"))
            store = stack.enter_context(Store(url))
            store.upgrade()
            log = tmp / f"claim-{i}.log"
            proc = kit.start_worker(tmp, catalog, url, log, ("--workers", "1", *mode.options))
            stack.callback(kit.stop_server, proc)
            workers.append((store, proc, log))
        for _store, proc, log in workers:
            kit.wait_logged(proc, log, READY)
        warm_up = [enqueue(store, active).id for store, _proc, _log in workers]  # not counted: first imports
        for (store, proc, log), run_id in zip(workers, warm_up, strict=True):
            wait_run(store, run_id, proc, log)
        for n in range(samples):
            order = list(range(len(MODES)))
            order = order[n % len(order):] + order[:n % len(order)]  # drift hits every mode alike
            for i in order:
                store, proc, log = workers[i]
                time.sleep(0.3 + rng.uniform(0, MODES[i].period))
                queued = enqueue(store, active)
                returned = datetime.now(UTC)
                run = wait_run(store, queued.id, proc, log)
                if run.status is not RunStatus.SUCCEEDED:
                    errors.append(f"{MODES[i].label}: run {run.id} {run.status.value}: {run.reason}")
                if run.created_at is None or run.started_at is None:
                    errors.append(f"{MODES[i].label}: run {run.id} has no created_at or started_at")
                    continue
                ms[i].append((run.started_at - run.created_at).total_seconds() * 1000)
                committed.append((returned - run.created_at).total_seconds() * 1000)
    return ms, committed, errors


def postgres_version(url: str) -> str:
    """The server version of the PostgreSQL at *url*."""
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


def throughput_row(setup: Setup, got: Throughput, base: Throughput) -> tuple[str, ...]:
    """Print one setup's figures against the baseline's; its table row."""
    ratio = got.per_minute / base.per_minute
    per_run = f"; {got.cpu / len(got.runs):.2f} CPU s per run" if got.cpu is not None else ""
    print(f"  {setup.label}: {got.succeeded}/{len(got.runs)} succeeded in {got.seconds:.1f} s, "
          f"{got.per_minute:.1f} runs/min, ratio x{ratio:.2f}; runs per process {got.per_worker()}; "
          f"median run {got.run_seconds():.2f} s{per_run}; queued in {got.enqueue:.2f} s; load average "
          f"{got.load:.2f}")
    baseline = "(the baseline)" if got is base else f"{SETUPS[0].label}: {base.per_minute:.1f} runs/min"
    return (f"runs/min, {setup.label}",
            f"{got.per_minute:.1f} runs/min ({len(got.runs)} runs in {got.seconds:.1f} s)", baseline,
            f"x{ratio:.2f}", f"{got.succeeded}/{len(got.runs)} succeeded; per process {got.per_worker()}; "
            f"median run {got.run_seconds():.2f} s{per_run}")


def cpu_bound(results: list[Throughput], cores: int) -> None:
    """Print the rate the machine's cores allow at the CPU each run cost."""
    cpus = [g.cpu / len(g.runs) for g in results if g.cpu is not None]
    if cpus:
        per_run = statistics.median(cpus)
        print(f"  CPU bound: {cores} CPU(s) / median {per_run:.2f} CPU s per run = at most "
              f"{cores * 60 / per_run:.0f} runs/min on this machine, whatever the number of workers")


def latency_rows(ms: list[list[float]], committed: list[float]) -> list[tuple[str, ...]]:
    """Print each mode's figures against polling every 0.2 s (the baseline); their table rows."""
    stats = [(statistics.median(v), p90(v), min(v), max(v)) for v in ms]
    for mode, (med, p, lo, hi) in zip(MODES, stats, strict=True):
        print(f"  {mode.label}: median {fmt(med)} ms, p90 {fmt(p)} ms, min {fmt(lo)} ms, max {fmt(hi)} ms")
    print(f"  for scale, in every mode: created -> enqueue returned in the bench (its own transaction): "
          f"median {fmt(statistics.median(committed))} ms, p90 {fmt(p90(committed))} ms")
    base = MODES[BASELINE_MODE].label
    base_med, base_p90 = stats[BASELINE_MODE][:2]
    rows = []
    for i, (mode, (med, p, _lo, _hi)) in enumerate(zip(MODES, stats, strict=True)):
        if i == BASELINE_MODE:
            continue
        ratio = med / base_med
        print(f"  {mode.label}: ratio of medians to {base} x{ratio:.2f}")
        rows.append((f"new run -> claimed, {mode.label}", f"median {fmt(med)} ms, p90 {fmt(p)} ms",
                     f"{base}: median {fmt(base_med)} ms, p90 {fmt(base_p90)} ms", f"x{ratio:.2f}",
                     f"{len(ms[i])} runs"))
    rows.append(("for scale: run created -> its enqueue returned in the bench (all modes)",
                 f"median {fmt(statistics.median(committed))} ms, p90 {fmt(p90(committed))} ms", "", "",
                 f"{len(committed)} runs"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="runs queued per throughput setup (default 30)")
    ap.add_argument("--samples", type=int, default=20, help="claim latency samples per mode (default 20)")
    ap.add_argument("--quick", action="store_true", help="4 runs per setup, 2 samples per mode")
    args = ap.parse_args()
    count, samples = (4, 2) if args.quick else (max(1, args.runs), max(1, args.samples))
    postgres = kit.POSTGRES_URL
    cores = len(os.sched_getaffinity(0))
    errors: list[str] = []

    with tempfile.TemporaryDirectory(prefix="rb-scale-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        catalog = tmp / "catalog"
        kit.make_catalog(catalog, NAME, RUNBOOK)
        holder = CatalogHolder(catalog)
        try:
            loaded = holder.reload()
            if loaded.active is None:
                sys.exit(f"the benchmark catalog does not load: {loaded.error}")
            active = loaded.active
            print(f"scale: runbook {NAME} (ansible.builtin.command argv [true] on {kit.HOST}, dev, "
                  f"concurrency 1000), PostgreSQL {postgres_version(postgres)} at "
                  f"{make_url(postgres).render_as_string(hide_password=True)}, load average "
                  f"{os.getloadavg()[0]:.2f} at the start")
            print(f"throughput: {count} runs queued at once for idle workers; first created -> last finished")
            results: list[Throughput] = []
            rows = []
            for setup in SETUPS:
                got = measure(setup, tmp, catalog, active, count, postgres)
                results.append(got)
                rows.append(throughput_row(setup, got, results[0]))
                errors += [f"{setup.label}: run {r.id} {r.status.value}: {r.reason}" for r in got.runs
                           if r.status is not RunStatus.SUCCEEDED]
            cpu_bound(results, cores)
            print(f"claim latency: {samples} runs per mode, one at a time, interleaved; created_at -> "
                  "started_at")
            ms, committed, latency_errors = latency(tmp, catalog, active, samples, postgres)
            errors += latency_errors
            rows += latency_rows(ms, committed)
        finally:
            holder.close()

    print(f"\n## Scaling out (bench/scale.py{' --quick' if args.quick else ''})\n")
    print("| Measure | Result | Baseline (same run) | Ratio (result / baseline) | Runs |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{kit.machine(('ansible-core', 'ansible-runner', 'SQLAlchemy', 'psycopg'))}")
    if errors:
        print(f"\n{len(errors)} error(s):\n" + "\n".join(f"  {e}" for e in errors[:20]))
        sys.exit(1)


if __name__ == "__main__":
    main()
