"""Smoke test of bench/run_latency.py --quick: it runs and prints every figure and the table.

No timing is asserted: only that the labels are there and carry numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run_latency.py"
NUM = r"-?[0-9][0-9,]*(?:\.[0-9]+)?"


def test_quick_run_latency_benchmark_prints_its_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH.parents[1],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "latency: 3 interleaved runs of execute() and bare ansible-playbook" in out
    for label in ("ours-to-first-step", "ours-total", "bare-total"):
        assert re.search(rf"^  {label}: median {NUM} ms, p90 {NUM} ms, min {NUM} ms$", out, re.M), out
    assert re.search(rf"overhead: {NUM} ms \(median ours-total - median bare-total\), ratio ours/bare "
                     rf"x{NUM}", out), out
    assert re.search(rf"^(PASS|MISS): overhead {NUM} ms \(target at most 50 ms\)$", out, re.M), out
    # RSS sampled after runs 1 and 10 of the 10 quick runs, with the leak note as text
    for run in (1, 10):
        assert re.search(rf"after run {run}: peak RSS \(ru_maxrss\) {NUM} MiB, current RSS \(statm\) "
                         rf"{NUM} MiB", out), out
    assert re.search(rf"^(OK|LEAK\?): between run 1 and run 10, peak RSS grew [+]?{NUM}%, current RSS "
                     rf"[+]?{NUM}%", out, re.M), out
    # the README table, a number in every figure
    assert "| Measure | Median | p90 | Min | Target |" in out
    for measure in ("execute() to first step RUNNING", "execute() total",
                    "bare ansible-playbook total (baseline)"):
        assert re.search(rf"^\| {re.escape(measure)} \| {NUM} ms \| {NUM} ms \| {NUM} ms \|", out, re.M), out
    assert re.search(rf"^\| Overhead \(median ours - median bare\) \| {NUM} ms \(x{NUM}\) \|.*"
                     r"<= 50 ms: (PASS|MISS) \|$", out, re.M), out
    for measure in ("Peak RSS (ru_maxrss)", "Current RSS (statm)"):
        assert re.search(rf"^\| {re.escape(measure)}, run 1 -> 10 \| {NUM} MiB -> {NUM} MiB \([+]?{NUM}%\)",
                         out, re.M), out
    assert re.search(r"^Machine: nproc [0-9]+, Python 3\.", out, re.M), out
