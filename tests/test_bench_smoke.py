"""Smoke tests of the benchmarks' --quick modes: they run and print every figure and table.

No timing is asserted: only that the figures are there and are numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parents[1] / "bench"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
NUM = r"-?[0-9][0-9,]*(?:\.[0-9]+)?"


def quick(script: str) -> str:
    """Run bench/SCRIPT --quick; return what it printed (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_quick_validate_benchmark_prints_the_table() -> None:
    out = quick("validate.py")
    # the generated catalogs validate with zero problems and their own tests pass
    assert re.search(r"200 runbooks .*: 200 loaded, 0 problems; [0-9,]+ runbook tests, 0 failed", out)
    assert re.search(r"1,000 runbooks .*: 1,000 loaded, 0 problems; [0-9,]+ runbook tests, 0 failed", out)
    # the markdown table, with a number in every figure
    assert "| Measure | Result | Baseline (same run) | Ratio (result / baseline) | Target |" in out
    assert "|---|---|---|---|---|" in out
    for measure, unit in [
        ("load_catalog, 200 runbooks", "s"),
        ("load_catalog, 1,000 runbooks", "s"),
        ("Router.matches, 1,000 runbooks", "alerts/s"),
        ("Router.route, 1,000 runbooks", "alerts/s"),
        ("Router.route, 200 runbooks", "alerts/s"),
    ]:
        row = rf"\| {re.escape(measure)} \| {NUMBER} {re.escape(unit)}.* \| x{NUMBER} \|"
        assert re.search(row, out), f"no row for {measure}:\n{out}"
    assert re.search(rf"Machine: nproc [0-9]+, Python 3\.{NUMBER}", out)
    # targets are notes, PASS or MISS, never failures
    assert re.search(r"^(PASS|MISS): 1,000 runbooks validated in ", out, re.MULTILINE)
    assert re.search(r"^(PASS|MISS): Router\.route ", out, re.MULTILINE)


def test_quick_run_latency_benchmark_prints_its_figures() -> None:
    out = quick("run_latency.py")
    assert "latency: 3 interleaved runs of execute() and bare ansible-playbook" in out
    for label in ("ours-to-first-step", "ours-total", "bare-total"):
        assert re.search(rf"^  {label}: median {NUM} ms, p90 {NUM} ms, min {NUM} ms$", out, re.M), out
    assert re.search(
        rf"overhead: {NUM} ms \(median ours-total - median bare-total\), ratio ours/bare "
        rf"x{NUM}",
        out,
    ), out
    assert re.search(rf"^(PASS|MISS): overhead {NUM} ms \(target at most 50 ms\)$", out, re.M), out
    # RSS sampled after runs 1 and 10 of the 10 quick runs, with the leak note as text
    for run in (1, 10):
        assert re.search(
            rf"after run {run}: peak RSS \(ru_maxrss\) {NUM} MiB, current RSS \(statm\) "
            rf"{NUM} MiB",
            out,
        ), out
    assert re.search(
        rf"^(OK|LEAK\?): between run 1 and run 10, peak RSS grew [+]?{NUM}%, current RSS "
        rf"[+]?{NUM}%",
        out,
        re.M,
    ), out
    # the README table, a number in every figure
    assert "| Measure | Median | p90 | Min | Target |" in out
    for measure in (
        "execute() to first step RUNNING",
        "execute() total",
        "bare ansible-playbook total (baseline)",
    ):
        assert re.search(rf"^\| {re.escape(measure)} \| {NUM} ms \| {NUM} ms \| {NUM} ms \|", out, re.M), out
    assert re.search(
        rf"^\| Overhead \(median ours - median bare\) \| {NUM} ms \(x{NUM}\) \|.*"
        r"<= 50 ms: (PASS|MISS) \|$",
        out,
        re.M,
    ), out
    for measure in ("Peak RSS (ru_maxrss)", "Current RSS (statm)"):
        assert re.search(
            rf"^\| {re.escape(measure)}, run 1 -> 10 \| {NUM} MiB -> {NUM} MiB \([+]?{NUM}%\)", out, re.M
        ), out
    assert re.search(r"^Machine: nproc [0-9]+, Python 3\.", out, re.M), out


def test_quick_intake_benchmark_prints_its_figures() -> None:
    out = quick("intake.py")
    assert re.search(r"^  server pid [0-9]+ answered after ", out, re.M), out
    for n in ("1 sender", "8 senders", "32 senders"):
        for what in ("hello", "intake"):
            assert re.search(
                rf"^  {n}: {what} {NUMBER} req/s, p50 {NUMBER} ms, p99 {NUMBER} ms \(CPU server ", out, re.M
            ), out
        assert re.search(rf"^  {n}: ratio intake/hello x{NUMBER} \(target >= x0\.50\)$", out, re.M), out
    # the storm: every copy accepted, and what the store kept, as numbers
    assert re.search(rf"^  200 accepted in {NUMBER} s: {NUMBER} req/s, p50 {NUMBER} ms, p99 ", out, re.M), out
    assert re.search(
        rf"^  store: 200 alerts stored \(200 of fingerprint [0-9a-f]{{16}}\), {NUMBER} marked repeats, "
        r"[0-9]+ run\(s\) of disk-full-cleanup created$",
        out,
        re.M,
    ), out
    # the README table, a number in every figure
    assert "| Senders | GET /bench/hello (baseline, same server) | POST alertmanager intake |" in out
    for n in ("1", "8", "32"):
        assert re.search(
            rf"^\| {n} \| {NUMBER} req/s, p50 {NUMBER} ms, p99 {NUMBER} ms \| {NUMBER} req/s, .* "
            rf"\| x{NUMBER} \|",
            out,
            re.M,
        ), out
    assert re.search(r"^\| 32, storm of 200 copies \| .* exactly 1 run: (PASS|MISS) \|$", out, re.M), out
    assert re.search(r"^Machine: nproc [0-9]+, Python 3\.", out, re.M), out
    # targets are notes, PASS or MISS, never failures
    for note in (
        r"intake at 32 senders is [0-9]+% of the hello rate \(target >= 50%\)",
        rf"intake p99 at 32 senders is {NUMBER} ms \(target < 50 ms\)",
        r"the storm of 200 copies made [0-9]+ run\(s\) of disk-full-cleanup \(target exactly 1\)",
    ):
        assert re.search(rf"^(PASS|MISS): {note}$", out, re.M), out


def test_quick_alert_to_step_benchmark_prints_its_figures() -> None:
    out = quick("alert_to_step.py")
    assert re.search(r"^  server pid [0-9]+ ready after ", out, re.M), out
    assert "  3 interleaved runs: one alert at a time" in out
    for label in (
        "received-to-created",
        "received-to-claimed",
        "received-to-first-step",
        "received-to-finished",
        "bare-to-first-task",
        "bare-total",
    ):
        assert re.search(rf"^  {label}: median {NUM} ms, p90 {NUM} ms, min {NUM} ms$", out, re.M), out
    assert re.search(
        rf"^  first step: [+]?{NUM} ms \(median received-to-first-step - median bare-to-first-task\), "
        rf"ratio x{NUM}$",
        out,
        re.M,
    ), out
    assert re.search(
        rf"^  whole run: [+]?{NUM} ms \(median received-to-finished - median bare-total\), ratio x{NUM}$",
        out,
        re.M,
    ), out
    # the README table, a number in every figure
    assert "## Alert to first step (bench/alert_to_step.py --quick)" in out
    assert "| Measure | Median | p90 | Min |" in out
    for measure in (
        "alert received -> run created",
        "alert received -> run claimed (started_at)",
        "alert received -> first step started",
        "alert received -> run finished",
        "bare ansible-playbook start -> first TASK line (baseline)",
        "bare ansible-playbook total (baseline)",
    ):
        assert re.search(rf"^\| {re.escape(measure)} \| {NUM} ms \| {NUM} ms \| {NUM} ms \|$", out, re.M), out
    for measure in (
        "Received -> first step vs bare start -> first TASK (medians)",
        "Received -> finished vs bare total (medians)",
    ):
        assert re.search(rf"^\| {re.escape(measure)} \| [+]?{NUM} ms \(x{NUM}\) \|", out, re.M), out
    assert re.search(r"^Machine: nproc [0-9]+, Python 3\.", out, re.M), out


def test_quick_escalation_latency_benchmark_prints_its_figures() -> None:
    out = quick("escalation_latency.py")
    assert re.search(r"^  server pid [0-9]+ ready after ", out, re.M), out
    assert "  2 runs, one at a time (each escalation received before the next alert)" in out
    for run in (1, 2):
        assert re.search(
            rf"^  run {run}: failed -> received {NUM} ms \(fired after {NUM} ms, delivered {NUM} ms later\), "
            rf"alert -> received {NUM} ms, {NUMBER} bytes$",
            out,
            re.M,
        ), out
    for label in (
        "finished-to-fired",
        "fired-to-received",
        "finished-to-received",
        "alert-to-finished",
        "alert-to-received",
        "bare-post-to-received",
        "bare-post-round-trip",
    ):
        assert re.search(
            rf"^  {label}: median {NUM} ms, p90 {NUM} ms, min {NUM} ms, max {NUM} ms$", out, re.M
        ), out
    assert re.search(rf"^  vs polling interval: median finished-to-received / 500 ms = x{NUM} ", out, re.M), (
        out
    )
    assert re.search(
        rf"^  vs bare POST: [+]?{NUM} ms \(median finished-to-received - median bare-post-to-received\), "
        rf"ratio x{NUM}$",
        out,
        re.M,
    ), out
    # targets are notes, PASS or MISS, never failures
    for target in (r"target < 5 s", r"achievable < 1 s"):
        assert re.search(
            rf"^(PASS|MISS): run finished -> escalation received, p90 {NUM} ms \({target}\)$", out, re.M
        ), out
    # the README table, a number in every figure
    assert "## Run failed to escalation delivered (bench/escalation_latency.py --quick)" in out
    assert "| Measure | Median | p90 | Min | Max | Target |" in out
    for measure in (
        "run finished -> level 1 fired (its outbox row created)",
        "level 1 fired -> message received at the sink",
        "run finished -> escalation received at the sink",
        "alert received -> run finished (the failing Ansible run)",
        "alert received -> escalation received at the sink",
        "bare POST of the same body -> received at the sink (baseline)",
        "bare POST of the same body, round trip (baseline)",
    ):
        assert re.search(
            rf"^\| {re.escape(measure)} \| {NUM} ms \| {NUM} ms \| {NUM} ms \| {NUM} ms \|", out, re.M
        ), out
    assert re.search(
        r"^\| run finished -> escalation received at the sink \|.* \| p90 < 5 s: (PASS|MISS); "
        r"< 1 s: (PASS|MISS) \|$",
        out,
        re.M,
    ), out
    assert re.search(r"^\| Escalator polling interval .*\| 500 ms \|", out, re.M), out
    assert re.search(
        rf"^\| Run finished -> received vs polling interval \(medians\) \| x{NUM} \|", out, re.M
    ), out
    assert re.search(
        rf"^\| Run finished -> received vs bare POST \(medians\) \| [+]?{NUM} ms \(x{NUM}\) \|", out, re.M
    ), out
    assert re.search(r"Machine: nproc [0-9]+, Python 3\.", out), out


def postgres_reachable() -> bool:
    """True when the benchmarks' PostgreSQL answers (bench/scale.py needs it)."""
    url = os.environ.get("RUNBOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"),
                              connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def test_quick_scale_benchmark_prints_its_figures() -> None:
    if not postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL unreachable (CI is set: PostgreSQL is required)")
        pytest.skip("PostgreSQL unreachable: bench/scale.py measures workers on it")
    out = quick("scale.py")
    setups = (
        "PostgreSQL, 1 worker process",
        "PostgreSQL, 2 worker processes",
        "PostgreSQL, 4 worker processes",
        "SQLite, `runbook serve --workers 1`",
        "SQLite, `runbook serve --workers 2`",
    )
    for label, processes in zip(setups, (1, 2, 4, 1, 1), strict=True):
        per_process = "/".join([r"[0-9]+"] * processes)
        assert re.search(
            rf"^  {re.escape(label)}: 4/4 succeeded in {NUMBER} s, {NUMBER} runs/min, ratio x{NUMBER}; "
            rf"runs per process {per_process}; median run {NUMBER} s; {NUMBER} CPU s per run; ",
            out,
            re.M,
        ), out
    cpu_bound = rf"^  CPU bound: [0-9]+ CPU\(s\) / median {NUMBER} CPU s per run = at most {NUMBER} runs/min "
    assert re.search(cpu_bound, out, re.M), out
    modes = (
        "LISTEN/NOTIFY (`--listen`)",
        "polling every 0.2 s (`--no-listen`, the default poll)",
        "polling every 1.0 s (`--no-listen --poll 1.0`)",
    )
    for mode in modes:
        assert re.search(
            rf"^  {re.escape(mode)}: median {NUMBER} ms, p90 {NUMBER} ms, min {NUMBER} ms, max {NUMBER} ms$",
            out,
            re.M,
        ), out
    # the README table, a number in every figure
    assert "## Scaling out (bench/scale.py --quick)" in out
    assert "| Measure | Result | Baseline (same run) | Ratio (result / baseline) | Runs |" in out
    for label in setups:
        assert re.search(
            rf"^\| runs/min, {re.escape(label)} \| {NUMBER} runs/min \(4 runs in {NUMBER} s\) \| .* "
            rf"\| x{NUMBER} \| 4/4 succeeded; ",
            out,
            re.M,
        ), out
    for mode in (modes[0], modes[2]):
        assert re.search(
            rf"^\| new run -> claimed, {re.escape(mode)} \| median {NUMBER} ms, p90 {NUMBER} ms "
            rf"\| {re.escape(modes[1])}: median {NUMBER} ms, p90 {NUMBER} ms \| x{NUMBER} \| 2 runs \|$",
            out,
            re.M,
        ), out
    assert re.search(r"^Machine: nproc [0-9]+, Python 3\.", out, re.M), out
