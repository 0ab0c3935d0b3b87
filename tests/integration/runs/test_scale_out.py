"""Scale-out on PostgreSQL: receivers and workers as separate real processes sharing one database.

Everything the single-machine setup guarantees must hold when the work is spread: each run
executed exactly once (counted on the target side, where each execution leaves a file named
by its run and attempt), limits exact across receivers, a dead worker's run interrupted and
escalated, acknowledged alerts kept through a receiver's kill -9, escalation levels fired
once while workers die. A worker "on another machine" runs in its own PID namespace
(``unshare``): its host-local shortcuts do not apply and only the lease tells it is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.records import RunStatus
from runner.runs.executor import MARKER_VAR
from runner.runs.reaper import processes_with
from runner.store import Store
from tests.conftest import CATALOG, ROOT
from tests.integration.notify.test_escalation import SECRET, Sink, sink  # noqa: F401 (a fixture)
from tests.integration.web.test_serve_process import Process, wait_for
from tests.integration.web.test_service import WEBHOOK, commit_all, git
from tests.integration.web.test_service import runbook as service_runbook

LEASE = 6  # seconds: short, so a dead worker's run is taken over quickly in tests
HOSTS = [f"node-{n:02d}" for n in range(50)]
OWNERS = """apiVersion: runbook-runner/v1
kind: Owners
channels:
  ops-hook: {type: webhook, url_env: T_OPS_HOOK_URL, secret_env: T_OPS_HOOK_SECRET}
teams:
  platform-ops:
    members:
      - {name: alice, email: alice@example.com}
    primary: alice
    escalation:
      triggers: [failed, timed_out, interrupted, rejected]
      repeat: 0
      levels:
        - {after: 0s, notify: [ops-hook]}
        - {after: 6s, notify: [ops-hook]}
"""
# Each execution leaves one file named "<run id>.<attempt>-<random>" in the alert's directory.
MARK = """  - name: leave a mark
    task:
      ansible.builtin.tempfile: {path: "{{ dir }}", prefix: "{{ lookup('env', 'RUNBOOK_RUN_MARKER') }}-"}"""
HANG = MARK + """
  - name: hang
    task: {ansible.builtin.wait_for: {timeout: 600}}"""


def runbook(name: str, alertname: str, authority: str, steps: str) -> str:
    """A runbook of platform-ops for *alertname* alerts, acting within *authority*."""
    return service_runbook(name, "platform-ops", alertname, steps, authority=authority)


RUNBOOKS = {
    # one run per target per hour: 10 alerts about a host give 1 run, whichever receiver took them
    "mark": runbook("mark", "Mark", "{environments: [dev], max_hosts: 1, cooldown: 1h, timeout: 5m}", MARK),
    "capped": runbook("capped", "Capped", "{environments: [dev], max_hosts: 1, concurrency: 100, "
                      "max_runs: {count: 3, per: 1h}, timeout: 5m}", MARK),
    "hang": runbook("hang", "Hang", "{environments: [dev], max_hosts: 1, timeout: 15m}", HANG),
    "prod-only": runbook("prod-only", "ProdOnly", "{environments: [prod], max_hosts: 1, "
                         "max_runs: {count: 3, per: 1h}, cooldown: 10m, timeout: 5m}", MARK),
}


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A git checkout of a catalog with 100 local-connection hosts and the runbooks above."""
    repo = tmp_path / "repo"
    root = repo / "runbooks"
    root.mkdir(parents=True)
    shutil.copy(CATALOG / "policy.yaml", root / "policy.yaml")
    (root / "owners.yaml").write_text(OWNERS)
    hosts = "\n".join(f"    {host}: {{}}" for host in HOSTS)
    (root / "inventory.yaml").write_text(f"all:\n  vars:\n    ansible_connection: local\n  hosts:\n{hosts}\n")
    for name, text in RUNBOOKS.items():
        (root / f"{name}.yaml").write_text(text)
    git(repo, "init", "-q")
    commit_all(repo, "runbooks")
    return root


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    """Where executions leave their files."""
    directory = tmp_path / "marks"
    directory.mkdir()
    return directory


def executions(marks: Path) -> Counter[str]:
    """How many times each run (by id) was executed, counted by the files its executions left."""
    return Counter(path.name.split(".")[0] for path in marks.iterdir())


class Worker:
    """``runbook worker`` in a child process; with *machine*, in a PID namespace of its own."""

    def __init__(self, catalog: Path, db_url: str, tmp_path: Path, name: str, sink_url: str = "",
                 *, machine: bool = False) -> None:
        self.log = tmp_path / f"{name}.log"
        env = {**os.environ, "T_OPS_HOOK_URL": f"{sink_url}/ops", "T_OPS_HOOK_SECRET": SECRET}
        command = [sys.executable, "-m", "runner", "--runbooks", str(catalog), "--db", db_url, "worker",
                   "--workers", "1", "--lease", str(LEASE)]
        if machine:
            command = ["unshare", "--pid", "--fork", "--mount-proc", *command]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: "worker(s) on" in self.log.read_text() or self.proc.poll() is not None,
                 f"{name} to start")
        assert self.proc.poll() is None, self.log.read_text()

    @property
    def pid(self) -> int:
        """The worker's own pid (under unshare, the child it forked: PID 1 of its namespace)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        found = children.read_text().split() if children.exists() else []
        if found and b"runner" in Path(f"/proc/{found[0]}/cmdline").read_bytes():
            return int(found[0])
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no handler, no goodbye (under unshare its whole namespace dies with it)."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


class Cluster:
    """Receivers and workers started for one test, all stopped at its end."""

    def __init__(self, catalog: Path, db_url: str, tmp_path: Path) -> None:
        self.catalog, self.db_url, self.tmp_path = catalog, db_url, tmp_path
        self.receivers: list[Process] = []
        self.workers: list[Worker] = []

    def receiver(self) -> Process:
        process = Process(self.catalog, self.db_url, self.tmp_path, "--workers", "0")
        self.receivers.append(process)
        return process

    def worker(self, sink_url: str = "", *, machine: bool = False) -> Worker:
        worker = Worker(self.catalog, self.db_url, self.tmp_path, f"worker-{len(self.workers)}", sink_url,
                        machine=machine)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for process in self.receivers:
            process.stop()


@pytest.fixture
def cluster(catalog: Path, postgresql_store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(catalog, postgresql_store_url, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def post(receiver: Process, alertname: str, host: str, fingerprint: str, marks: Path,
         timeout: float = 30) -> int:
    """One firing Alertmanager alert about *host* in dev; the HTTP status."""
    labels = {"alertname": alertname, "env": "dev", "instance": f"{host}:9100", "alert_id": fingerprint}
    body = {"version": "4", "status": "firing", "groupKey": f"{{}}:{{fp=\"{fingerprint}\"}}",
            "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": labels, "annotations": {"dir": str(marks)},
                        "startsAt": "2026-11-23T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": fingerprint}]}
    request = urllib.request.Request(
        receiver.url + "/api/v1/alerts/alertmanager", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def spread(receivers: list[Process], jobs: list[tuple[str, str, str]], marks: Path,
           threads: int = 8) -> list[int]:
    """Post (alertname, host, fingerprint) jobs from *threads* senders, alternating receivers."""
    statuses: list[int] = [0] * len(jobs)

    def sender(first: int) -> None:
        for i in range(first, len(jobs), threads):
            statuses[i] = post(receivers[i % len(receivers)], *jobs[i], marks)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    return statuses


def final(store: Store, runbook: str, expected: int) -> list[Any]:
    """The runs of *runbook*, once *expected* of them are in a final state (waits up to 5 minutes)."""

    def done() -> list[Any] | None:
        runs = store.list_runs(runbook=runbook, limit=1000)
        ended = [r for r in runs if r.status.final]
        return runs if len(runs) == len(ended) and len(ended) >= expected else None

    return list(wait_for(done, f"{expected} final runs of {runbook}", timeout=300))


def test_two_receivers_three_workers_500_alerts_each_run_executed_exactly_once(
    cluster: Cluster, marks: Path,
) -> None:
    receivers = [cluster.receiver(), cluster.receiver()]
    for _ in range(3):
        cluster.worker()
    # 500 alerts: 10 different alerts about each of 50 hosts, posted to both receivers at once.
    jobs = [("Mark", host, f"mark-{host}-{n}") for n in range(10) for host in HOSTS]
    statuses = spread(receivers, jobs, marks)
    assert statuses == [202] * 500
    with Store(cluster.db_url) as store:
        runs = final(store, "mark", 500)
        assert store.count_alerts() == 500
        by_status = Counter(r.status for r in runs)
        # One run per host (cooldown 1h, concurrency 1) held across both receivers: 50 ran, 450 refused.
        assert by_status == {RunStatus.SUCCEEDED: 50, RunStatus.REJECTED: 450}, by_status
        ran = [r for r in runs if r.status is RunStatus.SUCCEEDED]
        assert sorted(r.hosts[0] for r in ran) == HOSTS
        assert all(r.reason.startswith(("cooldown: ", "concurrency: ")) for r in runs
                   if r.status is RunStatus.REJECTED)
        assert {r.attempts for r in ran} == {1}
        claimed_by = Counter(r.claimed_by.split(":")[1] for r in ran if r.claimed_by)  # by pid
    counted = executions(marks)
    assert counted == {r.id: 1 for r in ran}  # on the target side: each run once, no other execution
    assert len(claimed_by) >= 2, claimed_by  # the work was spread (3 workers, 50 runs)


def test_max_runs_3_per_hour_with_100_identical_alerts_over_2_receivers_gives_exactly_3_runs(
    cluster: Cluster, marks: Path,
) -> None:
    receivers = [cluster.receiver(), cluster.receiver()]
    cluster.worker()
    cluster.worker()
    # The same alert about the same host, 100 times (each its own Alertmanager fingerprint).
    jobs = [("Capped", "node-07", f"capped-{n}") for n in range(100)]
    statuses = spread(receivers, jobs, marks, threads=16)
    assert statuses == [202] * 100
    with Store(cluster.db_url) as store:
        runs = final(store, "capped", 100)
    ran = [r for r in runs if r.status is RunStatus.SUCCEEDED]
    refused = [r for r in runs if r.status is RunStatus.REJECTED]
    assert (len(ran), len(refused)) == (3, 97)
    assert all(r.reason.startswith("max_runs: 3 run(s) of capped in the last 1h") for r in refused)
    assert executions(marks) == {r.id: 1 for r in ran}


@pytest.mark.parametrize("where", ["same-machine", "other-machine"])
def test_kill_9_of_a_worker_mid_run_interrupts_and_escalates_it_and_nothing_runs_twice(
    cluster: Cluster, marks: Path, sink: Sink, where: str,  # noqa: F811
) -> None:
    machine = where == "other-machine"
    if machine and subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                                  capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare cannot make a PID namespace here (needs root or user namespaces)")
    receiver = cluster.receiver()
    victim = cluster.worker(sink.url, machine=machine)
    assert post(receiver, "Hang", "node-01", "hang-1", marks) == 202
    with Store(cluster.db_url) as store:
        def hanging() -> Any:
            runs = store.list_runs(runbook="hang")
            run = store.get_run(runs[0].id) if runs else None
            hung = run is not None and len(run.steps) == 2 and run.steps[1].status == "running"
            return run if hung else None

        run = wait_for(hanging, "the run to hang in its second step")
        marker = f"{run.id}.1"
        assert processes_with(MARKER_VAR, marker)  # ansible is at work, for the victim
        survivor = cluster.worker(sink.url)  # a live worker elsewhere: it never claimed this run
        victim.kill()
        recovered = wait_for(lambda: (r := store.get_run(run.id)) and r.status.final and r,
                             "the run to be recovered", timeout=120)
        assert recovered.status is RunStatus.INTERRUPTED and recovered.attempts == 1
        assert "stopped without finishing the run" in recovered.timeline[-1].detail
        assert recovered.timeline[-1].detail.endswith("not re-run (the runbook is not idempotent, or was "
                                                      "already retried)")
        assert survivor.proc.poll() is None
        assert wait_for(lambda: processes_with(MARKER_VAR, marker) == [], "the hung step's processes to go")
        message = wait_for(lambda: sink.delivered("/ops"), "the escalation")[0]
        assert message["level"] == 1
        assert message["context"]["reason"].startswith(f"run {run.id[:12]} interrupted")
        time.sleep(LEASE + 6)  # another lease and sweep: still nobody runs it again
        assert store.get_run(run.id).status is RunStatus.INTERRUPTED  # type: ignore[union-attr]
    assert executions(marks) == {run.id: 1}


def test_kill_9_of_a_receiver_mid_burst_loses_no_acknowledged_alert(
    cluster: Cluster, marks: Path,
) -> None:
    victim, other = cluster.receiver(), cluster.receiver()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(n: int) -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            receiver = victim if (n + i) % 2 else other
            fingerprint = f"burst-{n}-{i}"
            try:
                status = post(receiver, "NoRunbookForThis", "node-00", fingerprint, marks, timeout=5)
            except OSError:  # the victim died: not acknowledged; a real sender retries elsewhere
                continue
            if status == 202:
                with lock:
                    acknowledged.append(fingerprint)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in senders:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 300, "300 acknowledged alerts")
    victim.proc.kill()
    victim.proc.wait(timeout=30)
    after_kill = len(acknowledged)
    wait_for(lambda: len(acknowledged) >= after_kill + 100, "100 more, by the other receiver")
    stop.set()
    for thread in senders:
        thread.join(timeout=30)
    with Store(cluster.db_url) as store:
        lost = [fp for fp in acknowledged if store.count_alerts(fingerprint=fp) != 1]
        assert lost == [] and store.count_alerts() >= len(acknowledged)


def test_an_escalation_level_due_while_a_worker_dies_fires_once(
    cluster: Cluster, marks: Path, sink: Sink,  # noqa: F811
) -> None:
    receiver = cluster.receiver()
    workers = [cluster.worker(sink.url) for _ in range(3)]
    assert post(receiver, "ProdOnly", "node-02", "prod-only-1", marks) == 202  # refused: escalates
    first = wait_for(lambda: sink.delivered("/ops"), "level 1")
    assert [m["level"] for m in first] == [1]
    started = time.monotonic()
    time.sleep(max(0.0, 6 - 0.3 - (time.monotonic() - started)))  # level 2 is due 6 s after level 1
    workers[0].kill()  # as level 2 comes due, one escalator dies; the others carry on
    second = wait_for(lambda: len(sink.delivered("/ops")) >= 2 and sink.delivered("/ops"), "level 2",
                      timeout=120)
    time.sleep(2)  # any duplicate would arrive by now (every escalator looks twice a second)
    assert [m["level"] for m in sink.delivered("/ops")] == [1, 2], second
    with Store(cluster.db_url) as store:
        sent = [m for m in store.outbox() if m["kind"] == "escalation"]
    assert [(m["status"], m["attempts"]) for m in sent] in ([("sent", 1), ("sent", 1)],
                                                            [("sent", 1), ("sent", 2)])
