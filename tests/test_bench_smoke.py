"""Smoke test of bench/validate.py --quick: it runs, its catalogs are valid, it prints the table.

No timing is asserted: only that the figures are there and are numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "validate.py"
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def test_quick_benchmark_runs_and_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parents[1],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
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
