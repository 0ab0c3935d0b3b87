"""Benchmark catalog validation (load_catalog) and alert routing, each against a same-run baseline.

Generates realistic catalogs in a temporary directory, checks they have zero problems and that their
tests pass, then prints timings; targets are PASS/MISS notes, never asserts. Run it from the
repository root: .venv/bin/python bench/validate.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from string import Template
from typing import Any

import yaml

from runner.alerts.model import Alert
from runner.catalog.load import load_catalog, runbook_files
from runner.catalog.models import Catalog
from runner.routing.cases import run_tests
from runner.routing.router import Router

EXAMPLES = Path(__file__).resolve().parents[1] / "runbooks"
NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # a Tuesday inside the working hours used below
KINDS = ["DiskAlmostFull", "ProcessDown", "FileTooLarge", "SpoolStuck", "QueueBacklog", "CertExpiring"]
TIER = ["web", "db", "cache"]  # variant 0 wants web, 1 db, 2 (dev) anything but web
PLAYBOOK = """- {name: Prune old files, hosts: all, gather_facts: false, tasks: [
    {name: Find, ansible.builtin.find: {paths: "{{ path }}", age: "{{ max_age_days }}d"}, register: found},
    {name: Remove, ansible.builtin.file: {path: "{{ item.path }}", state: absent},
     loop: "{{ found.files }}"}]}
"""
RUNBOOK = Template("""# yaml-language-server: $$schema=../schemas/runbook.schema.json
apiVersion: runbook-runner/v1
kind: Runbook
name: $name
title: Prune old files for $alertname ($tier)
description: Synthetic runbook $i of the benchmark; deletes files older than max_age_days under path.
owner: $owner
severity: $severity
match:
$match
params:
  host:
    description: Inventory host, from the instance label (host:port).
    from: labels.instance
    extract: '([A-Za-z0-9_.-]+)(:[0-9]+)?'
    type: string
  path:
    from: annotations.path
    type: string
    pattern: '(?!.*\\.\\.)/(var/log|tmp|srv)(/[A-Za-z0-9_.-]+)+'
    default: /var/log/svc-$a
  max_age_days: {type: integer, minimum: 1, maximum: 90, default: $days}
targets: $targets
authority:
$authority
steps:
  - name: Find files older than max_age_days
    task:
      ansible.builtin.find: {paths: "{{ path }}", age: "{{ max_age_days }}d", recurse: true}
    register: old_files
    timeout: 2m
  - name: Remove them
    task:
      ansible.builtin.file: {path: "{{ item.path }}", state: absent}
    when: old_files.matched > 0
    retries: 1
$extra
verify:
  - name: Nothing older than max_age_days is left
    task:
      ansible.builtin.find: {paths: "{{ path }}", age: "{{ max_age_days }}d"}
    register: left
tests:
$tests""")


def alertname(i: int) -> str:
    """Runbooks 3k, 3k+1, 3k+2 share one alertname and differ in label matchers."""
    return f"{KINDS[(i // 3) % len(KINDS)]}{i // 3:05d}"


def flow(d: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}: "{v}"' for k, v in d.items()) + "}"


def labels_for(i: int, hosts: int, match: bool = True) -> dict[str, str]:
    """Labels of an alert that runbook i answers (match) or that its alertname group does not."""
    v = i % 3
    env = ("prod", "staging", "dev")[v] if match else ("prod", "prod", "dev")[v]
    tier = TIER[v] if match else ("cache", "cache", "web")[v]
    return {"alertname": alertname(i), "env": env, "tier": tier, "instance": f"host-{i % hosts:04d}:9100",
            "job": "node", "region": "eu-west-1" if i % 4 == 0 else "us-east-1"}


def runbook_yaml(i: int, hosts: int) -> str:
    v, a = i % 3, i // 3
    sel = ['env=~"prod|staging"', f'tier="{TIER[v]}"']
    more = [[*sel, 'region=~"eu-.*"'], ['env="prod"', 'tier="db"', 'team!="payments"']]
    sels = [['env="dev"', 'tier!="web"']] if v == 2 else [sel, *([more[v]] if i % 2 == 0 else [])]
    match = "\n".join(f"  - alertname: {alertname(i)}\n    labels: [{', '.join(repr(m) for m in s)}]"
                      for s in sels)
    name = f"{KINDS[a % len(KINDS)].lower()}-{('web', 'db', 'dev')[v]}-{i:05d}"
    me, path = f"host-{i % hosts:04d}", f"/var/log/svc-{a}/app.log"
    target = [f"host-{2 * (a % (hosts // 2)) + k:04d}" for k in (0, 1)] if v == 2 else [me]
    at = '    at: "2026-03-03T10:00:00Z"\n' if v == 1 else ""
    tests = (f"  - name: the alert routes here and is allowed\n{at}    alert:\n"
             f"      labels: {flow(labels_for(i, hosts))}\n      annotations: {{path: {path}}}\n"
             f"    expect: {{runbook: {name}, params: "
             f"{{host: {me}, path: {path}}}, hosts: [{', '.join(target)}], verdict: allowed}}\n")
    if i % 2 == 0:
        tests += (f"  - name: same alertname, other labels, not ours\n    alert:\n"
                  f"      labels: {flow(labels_for(i, hosts, False))}\n    expect: {{runbook: null}}\n")
    if v == 2:
        authority = "  environments: [dev]\n  max_hosts: 2\n  timeout: 20m\n  approval: none"
        extra = "  - name: Prune with the shared playbook\n    playbook: playbooks/prune.yml" * (i % 6 == 2)
    else:
        approval = '{outside_hours: {start: "08:00", end: "18:00", timezone: UTC}}' if v == 1 else "none"
        authority = (f"  environments: [prod, staging]\n  max_hosts: 1\n  max_runs: {{count: 3, per: 1h}}\n"
                     f"  concurrency: 1\n  cooldown: 10m\n  approval: {approval}\n  timeout: 10m")
        extra = ('  - name: Log what was pruned\n    task:\n      ansible.builtin.command:\n'
                 '        argv: [logger, -t, runbook, "pruned {{ path }}"]') if v == 1 else ""
    return RUNBOOK.substitute(
        name=name, alertname=alertname(i), tier=TIER[v], i=i, a=a, days=1 + i % 7, match=match,
        owner=("platform-ops", "payments-dev")[i % 2], severity=("warning", "high", "critical")[i % 3],
        targets=f"{{group: grp-{a % (hosts // 2):04d}}}" if v == 2 else "{hosts_from: host}",
        authority=authority, extra=extra, tests=tests).replace("\n\n", "\n")


def generate(root: Path, n: int) -> int:
    """Write a catalog of n runbooks under root; return the number of inventory hosts."""
    hosts = max(100, n // 10)
    root.mkdir(parents=True)
    for f in ("policy.yaml", "owners.yaml"):
        shutil.copy(EXAMPLES / f, root / f)
    groups = "".join(f"    grp-{g:04d}: {{hosts: {{host-{2 * g:04d}: {{}}, host-{2 * g + 1:04d}: {{}}}}}}\n"
                     for g in range(hosts // 2))
    inventory = f"all:\n  vars: {{ansible_connection: local}}\n  children:\n{groups}"
    (root / "inventory.yaml").write_text(inventory)
    (root / "playbooks").mkdir()
    (root / "playbooks" / "prune.yml").write_text(PLAYBOOK)
    for i in range(n):
        d = root / f"team-{i // 500:02d}"
        d.mkdir(exist_ok=True)
        (d / f"rb-{i:05d}.yaml").write_text(runbook_yaml(i, hosts))
    return hosts


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Fastest wall time of fn over repeat runs, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def parse_only(root: Path, loader: type[Any]) -> None:
    """The baseline: read and parse the same files, nothing else."""
    others = [root / f"{kind}.yaml" for kind in ("policy", "owners", "inventory")]
    for f in [*runbook_files(root, "inventory.yaml"), *others]:
        yaml.load(f.read_text(encoding="utf-8"), Loader=loader)


def check(cat: Catalog, n: int, lines: float) -> None:
    """Exit 1 unless the catalog has zero problems and every runbook test passes."""
    results = run_tests(cat) if not cat.problems else []
    failed = [f"{r.runbook} / {r.case.name}: {'; '.join(r.failures)}" for r in results if not r.passed]
    print(f"  {n:,} runbooks ({lines:.0f} lines each): {len(cat.runbooks):,} loaded, "
          f"{len(cat.problems)} problems; {len(results):,} runbook tests, {len(failed)} failed")
    if cat.problems or failed or len(cat.runbooks) != n:
        for line in [*map(str, cat.problems[:5]), *failed[:5]]:
            print(f"    {line}")
        sys.exit(1)


def alerts(n: int, hosts: int, count: int, seed: int = 7) -> list[Alert]:
    """count alerts on runbooks 0..n-1: 60% match one, 25% known alertname/other labels, 15% unknown."""
    rng, out = random.Random(seed), []
    for j in range(count):
        i, kind = rng.randrange(n), j % 20
        labels = labels_for(i, hosts, match=kind < 12 or kind >= 17)
        if kind >= 17:
            labels["alertname"] = f"Unrouted{j % 997}"
        out.append(Alert(labels, {"path": f"/var/log/svc-{i // 3}/x.log"}))
    return out


def rate(fn: Callable[[Alert], Any], batch: list[Alert], repeat: int = 3) -> float:
    """Alerts per second of fn over batch (best of repeat)."""
    return len(batch) / best(lambda: [fn(a) for a in batch], repeat)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    quick = ap.parse_args().quick
    small, large, n_alerts, n_lin = (200, 1_000, 5_000, 100) if quick else (1_000, 10_000, 50_000, 500)
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    cats: dict[int, tuple[Catalog, int]] = {}

    def add(measure: str, result: str, baseline: str, ratio: float, target: str = "") -> None:
        rows.append((measure, result, baseline, f"x{ratio:,.{2 if ratio < 100 else 0}f}", target))
        print(f"  {measure}: {result}; baseline {baseline}; ratio {rows[-1][3]}")

    print("validation: load_catalog = strict YAML + JSON Schema + typed models + meaning checks")
    with tempfile.TemporaryDirectory(prefix="rb-bench-") as tmp:
        for n, repeat in ((small, 3), (large, 1 if quick else 2)):
            root = Path(tmp) / f"cat-{n}"
            hosts = generate(root, n)
            lines = sum(f.read_text().count("\n") for f in runbook_files(root, "inventory.yaml")) / n
            secs, cat = best(partial(load_catalog, root), repeat)
            check(cat, n, lines)
            cats[n] = (cat, hosts)
            py_repeat = 1 if n > 5_000 else 2  # the pure-Python parser takes ~5 s per 1,000 files
            py, _ = best(partial(parse_only, root, yaml.SafeLoader), py_repeat)
            c, _ = best(partial(parse_only, root, yaml.CSafeLoader), repeat)
            result = f"{secs:.2f} s ({n / secs:,.0f} runbooks/s)"
            add(f"load_catalog, {n:,} runbooks", result, f"yaml.safe_load {py:.2f} s", secs / py,
                "< 2 s" if n == 1_000 else "")
            add(f"load_catalog, {n:,} runbooks", result, f"yaml CSafeLoader {c:.2f} s", secs / c)
            if n == 1_000:
                notes.append(f"{'PASS' if secs < 2 else 'MISS'}: 1,000 runbooks validated in {secs:.2f} s "
                             "(target < 2 s)")

    print(f"routing: {n_alerts:,} alerts, 60% matching, 25% known alertname/other labels, 15% unknown")
    (cat, hosts), (scat, shosts) = cats[large], cats[small]
    router, srouter, batch = Router(cat), Router(scat), alerts(large, hosts, n_alerts)
    print(f"  {sum(1 for a in batch if router.matches(a)):,} of {n_alerts:,} alerts match a runbook")
    m_rate, r_rate = rate(router.matches, batch), rate(lambda a: router.route(a, NOW), batch)
    books = list(cat.runbooks.values())  # the naive router: try every selector of every runbook
    lin = rate(lambda a: [s for r in books for s in r.selectors if s.matches(a.labels, a.status)],
               batch[:n_lin], repeat=1)
    add(f"Router.matches, {large:,} runbooks", f"{m_rate:,.0f} alerts/s",
        f"linear scan of every selector {lin:,.0f} alerts/s ({n_lin} alerts)", m_rate / lin)
    add(f"Router.route, {large:,} runbooks", f"{r_rate:,.0f} alerts/s",
        f"Router.matches {m_rate:,.0f} alerts/s", r_rate / m_rate, ">= 50,000/s")
    notes.append(f"{'PASS' if r_rate >= 50_000 else 'MISS'}: Router.route {r_rate:,.0f} alerts/s against "
                 f"{large:,} runbooks (target >= 50,000/s)")
    s_rate = rate(lambda a: srouter.route(a, NOW), alerts(small, shosts, n_alerts))
    add(f"Router.route, {small:,} runbooks", f"{s_rate:,.0f} alerts/s",
        f"Router.route at {large:,}: {r_rate:,.0f} alerts/s", s_rate / r_rate)
    hot = rate(lambda a: router.route(a, NOW), alerts(small, hosts, n_alerts))
    add(f"Router.route, {large:,} runbooks, alerts on {small:,} of them", f"{hot:,.0f} alerts/s",
        f"alerts on all {large:,}: {r_rate:,.0f} alerts/s", hot / r_rate)

    print(f"\n## Benchmark (bench/validate.py{' --quick' if quick else ''})\n")
    print("| Measure | Result | Baseline (same run) | Ratio (result / baseline) | Target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nMachine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} "
          f"({platform.machine()}), PyYAML {yaml.__version__}, libyaml {yaml.__with_libyaml__}, load average "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
