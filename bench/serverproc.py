"""What the benchmarks share: the server process they drive (a free port, its start with a catalog
and a store, readiness, its log, a clean stop), worker processes alike, a private PostgreSQL schema,
the catalog they give them, the Alertmanager webhook they post to it and what the store says of it,
and the figures' helpers."""

from __future__ import annotations

import http.client
import json
import math
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from runner.store import Store
from runner.store.engine import create_engine, parse_url
from runner.store.tables import alerts

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
HOST = "web-1"  # a local-connection host of runbooks/inventory.yaml
INTAKE = "/api/v1/alerts/alertmanager"
TOKEN_ENV = "RUNBOOK_WEBHOOK_TOKEN"
# the database of tests/integration: trust auth, every benchmark in its own schema
POSTGRES_URL = os.environ.get("RUNBOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
Served = tuple[subprocess.Popen[bytes], Store, sa.Engine]  # what serving() yields


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines the server wrote."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, path: str, limit: float = 60.0) -> None:
    """Return once GET *path* answers 200; exit if the server dies or is not ready within *limit* s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode} before it was ready:\n{log_tail(log)}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    sys.exit(f"the server was not ready within {limit:.0f} s:\n{log_tail(log)}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server, then kill it if it has not gone within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def runbook(name: str, title: str, alertname: str, max_runs: int, step: str, task: str, *,
            environment: str = "staging", limits: str = "") -> str:
    """A runbook of one step (*task*, flow-style YAML) on the host of the alert's instance label, acting
    in *environment*; *limits* adds authority lines (e.g. "  concurrency: 100\n")."""
    return f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {name}
title: {title}
owner: platform-ops
severity: warning
match:
  - alertname: {alertname}
params:
  host: {{from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}}
targets: {{hosts_from: host}}
authority:
  environments: [{environment}]
  max_hosts: 1
  approval: none
  timeout: 5m
  max_runs: {{count: {max_runs}, per: 1h}}
{limits}steps:
  - name: {step}
    task: {task}
"""


def make_catalog(root: Path, name: str, runbook_text: str, owners: str | None = None) -> None:
    """The repository's policy and inventory, its owners.yaml (or *owners*) and runbook *name*, in *root*."""
    root.mkdir()
    copied = ("policy.yaml", "inventory.yaml") if owners is not None else \
        ("policy.yaml", "owners.yaml", "inventory.yaml")
    for file in copied:
        shutil.copy(RUNBOOKS / file, root / file)
    if owners is not None:
        (root / "owners.yaml").write_text(owners)
    (root / f"{name}.yaml").write_text(runbook_text)


def process_env(tmp: Path, scratch: str, extra_env: Mapping[str, str] | None = None,
                drop: tuple[str, ...] = ("RUNBOOK_",)) -> dict[str, str]:
    """Our environment without the variables starting with one of *drop*, plus *extra_env*; the process's
    state under *tmp*/state and its temporary files under *tmp*/*scratch* (made here)."""
    directory = tmp / scratch  # the process's runs and catalog snapshots: cleaned up with *tmp*
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"RUNBOOK_STATE_DIR": str(tmp / "state"), "TMPDIR": str(directory), "PYTHONUNBUFFERED": "1",
                **(extra_env or {})})
    return env


def start_server(tmp: Path, catalog: Path, url: str, port: int, token: str, log: Path,
                 extra_env: Mapping[str, str] | None = None,
                 drop: tuple[str, ...] = ("RUNBOOK_",), workers: int = 1) -> subprocess.Popen[bytes]:
    """`python -m runner ... serve --workers 1` (or *workers*), its state and temporary files under *tmp*.

    Our environment without the variables starting with one of *drop*, plus *extra_env*."""
    env = process_env(tmp, "server-tmp", {TOKEN_ENV: token, **(extra_env or {})}, drop)
    cmd = [sys.executable, "-m", "runner", "--runbooks", str(catalog), "--db", url, "serve", "--port",
           str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_worker(tmp: Path, catalog: Path, url: str, log: Path, options: tuple[str, ...] = ()) \
        -> subprocess.Popen[bytes]:
    """`python -m runner ... worker *options*`, its state under *tmp*, its temporary files in a directory
    of its own there (named after *log*), our environment without RUNBOOK_* variables."""
    env = process_env(tmp, f"{log.stem}-tmp")
    cmd = [sys.executable, "-m", "runner", "--runbooks", str(catalog), "--db", url, "worker", *options]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_logged(proc: subprocess.Popen[bytes], log: Path, text: str, limit: float = 60.0) -> None:
    """Return once *text* is in the process's *log*; exit if it dies, or has not logged it in *limit* s."""
    deadline = time.monotonic() + limit
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            sys.exit(f"pid {proc.pid} exited with {proc.returncode} before it logged {text!r}:\n"
                     f"{log_tail(log)}")
        if time.monotonic() >= deadline:
            sys.exit(f"pid {proc.pid} did not log {text!r} within {limit:.0f} s:\n{log_tail(log)}")
        time.sleep(0.05)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process at once, then wait for each (see stop_server)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        stop_server(proc)


@contextmanager
def postgres_schema(admin_url: str = POSTGRES_URL, prefix: str = "bench") -> Iterator[str]:
    """A store URL on a fresh PostgreSQL schema of *admin_url*'s database (search_path in the URL, as
    tests/integration does), dropped afterwards. Exit when the database cannot be reached."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = sa.create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"),
                             connect_args={"connect_timeout": 5}, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as e:
            where = make_url(admin_url).render_as_string(hide_password=True)
            sys.exit(f"PostgreSQL unreachable at {where}: {' '.join(str(e.orig).split())}")
        url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def serving(tmp: Path, catalog: Path, url: str, port: int, token: str, log: Path,
            extra_env: Mapping[str, str] | None = None,
            drop: tuple[str, ...] = ("RUNBOOK_",), workers: int = 1) -> Iterator[Served]:
    """Start the server (see start_server), open its store; once /readyz answers, say so and yield the
    process, the Store and an engine on the same database. Afterwards close both and stop the server."""
    t0 = time.perf_counter()
    proc = start_server(tmp, catalog, url, port, token, log, extra_env, drop, workers)
    store: Store | None = None
    engine: sa.Engine | None = None
    try:
        store = Store(url)
        engine = create_engine(parse_url(url))
        wait_ready(proc, port, log, "/readyz")
        print(f"  server pid {proc.pid} ready after {time.perf_counter() - t0:.2f} s")
        yield proc, store, engine
    finally:
        if engine is not None:
            engine.dispose()
        if store is not None:
            store.close()
        stop_server(proc)


def webhook(alertname: str, n: int, own_group: bool = False) -> bytes:
    """An Alertmanager v4 webhook body holding the n-th firing *alertname* alert on HOST (its own
    fingerprint; with *own_group*, its own group as well)."""
    labels = {"alertname": alertname, "env": "staging", "instance": f"{HOST}:9100", "job": "node",
              "severity": "warning", "bench_seq": str(n)}
    group = {"alertname": alertname, "bench_seq": str(n)} if own_group else {"alertname": alertname}
    group_key = ", ".join(f'{k}="{v}"' for k, v in group.items())
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({
        "receiver": "runbook-runner", "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "benchmark alert"},
                    "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
                    "fingerprint": f"{secrets.token_hex(4)}{n:08x}"}],
        "groupLabels": group, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093", "version": "4",
        "groupKey": f"{{}}:{{{group_key}}}", "truncatedAlerts": 0,
    }).encode()


def post_alert(port: int, token: str, body: bytes, n: int, name: str,
               incident: bool = False) -> dict[str, Any]:
    """Post the n-th alert's *body*; the stored alert as the intake answered it. Exit on anything but a
    queued run of runbook *name* (and, with *incident*, in an incident)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", INTAKE, body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}",
            "User-Agent": "Alertmanager/0.28.1"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 202:
        sys.exit(f"POST {INTAKE}: {response.status} {data[:300]!r}")
    stored: dict[str, Any] = json.loads(data)["alerts"][0]
    run = stored["run"]
    if run is None or run["status"] != "queued" or (incident and not stored["incident"]):
        sys.exit(f"alert {n} did not queue a run of {name}{' in an incident' if incident else ''}: {stored}")
    return stored


def received_at(engine: sa.Engine, alert_id: int) -> datetime:
    """When the store says alert *alert_id* was received."""
    with engine.connect() as connection:
        at: datetime = connection.execute(
            sa.select(alerts.c.received_at).where(alerts.c.id == alert_id)).scalar_one()
    return at


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def fmt(value: float) -> str:
    """Milliseconds, two decimals below 10 ms (some points are within a millisecond of each other)."""
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def machine(packages: tuple[str, ...]) -> str:
    """`Machine: ...`: CPUs, Python, the versions of *packages* and SQLite, the load average now."""
    versions = "".join(f"{package} {version(package)}, " for package in packages)
    return (f"Machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} "
            f"({platform.machine()}), {versions}SQLite {sqlite3.sqlite_version}, "
            f"load average {os.getloadavg()[0]:.2f} at the end")
