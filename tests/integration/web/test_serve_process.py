"""``runbook serve`` as a real process: signals, kill -9 in the middle of a burst, a dead worker's run.

The server is started the way an operator starts it; it is stopped with SIGTERM, reloaded
with SIGHUP, or killed with SIGKILL, and what it stored is read back from the database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.runs.executor import MARKER_VAR
from runner.runs.reaper import processes_with
from runner.store import Store
from tests.conftest import ROOT
from tests.integration.web.test_service import (
    WEBHOOK,
    catalog_repo,  # noqa: F401  (a fixture)
    commit_all,
    tokens_file,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """``runbook serve`` in a child process, with its log in a file."""

    def __init__(self, runbooks: Path, db_url: str, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"serve-{self.port}.log"
        env = {**os.environ, "RUNBOOK_WEBHOOK_TOKEN": WEBHOOK,
               "RUNBOOK_TOKENS_FILE": str(tokens_file(tmp_path))}
        command = [sys.executable, "-m", "runner", "--runbooks", str(runbooks), "--db", db_url, "serve",
                   "--port", str(self.port), *args]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.get("/readyz")[0] != 200:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return 0, None

    def post_alert(self, alertname: str, fingerprint: str, directory: Path, timeout: float = 10) -> int:
        labels = {"alertname": alertname, "env": "staging", "instance": "web-1:9100"}
        body = {"version": "4", "status": "firing", "groupKey": "{}:{}", "truncatedAlerts": 0,
                "alerts": [{"status": "firing", "labels": labels, "annotations": {"dir": str(directory)},
                            "startsAt": "2026-11-23T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                            "fingerprint": fingerprint}]}
        request = urllib.request.Request(
            self.url + "/api/v1/alerts/alertmanager", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def running_run(store: Store) -> str:
    """The id of the one run that is running with a step started (waits for it)."""

    def found() -> str | None:
        runs = store.list_runs(status="running")
        full = store.get_run(runs[0].id) if runs else None
        return full.id if full is not None and full.steps else None

    return str(wait_for(found, "a running step"))


def test_sigterm_lets_a_run_finish_its_grace_then_records_it_interrupted(
    catalog_repo: Path, store_url: str, tmp_path: Path, processes: list[Process]  # noqa: F811
) -> None:
    server = Process(catalog_repo, store_url, tmp_path, "--workers", "1", "--grace", "1")
    processes.append(server)
    assert server.post_alert("SleepLong", "fp-sleep", tmp_path) == 202
    with Store(store_url) as store:
        run_id = running_run(store)
        assert processes_with(MARKER_VAR, f"{run_id}.1")  # ansible is at work
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0, server.log.read_text()
        run = store.get_run(run_id)
    assert run is not None and run.status.value == "interrupted"
    assert run.timeline[-1].detail == "the worker shut down and its grace period ended"
    assert processes_with(MARKER_VAR, f"{run_id}.1") == []  # nothing of the run outlives the server


def test_sighup_reloads_the_catalog(
    catalog_repo: Path, store_url: str, tmp_path: Path, processes: list[Process]  # noqa: F811
) -> None:
    server = Process(catalog_repo, store_url, tmp_path, "--workers", "1")  # a worker: it sends messages
    processes.append(server)
    (catalog_repo / "sleeper.yaml").unlink()
    head = commit_all(catalog_repo.parent, "drop sleeper")
    server.proc.send_signal(signal.SIGHUP)
    ready = wait_for(lambda: (r := server.get("/readyz")[1]) and r["catalog"]["revision"] == head and r,
                     "the new revision")
    assert ready["catalog"]["runbooks"] == 2
    assert ready["channels"]["ops-slack"] == "not configured: set RUNBOOK_SLACK_OPS_URL"
    # Said once at start, as one warning; a reload that changes nothing of it says nothing.
    said = [line for line in server.log.read_text().splitlines() if "channels not configured" in line]
    assert len(said) == 1 and " WARNING runner.escalation: " in said[0], said
    assert "ops-slack (set RUNBOOK_SLACK_OPS_URL)" in said[0]


def test_kill_9_in_the_middle_of_a_burst_loses_no_acknowledged_alert(
    catalog_repo: Path, store_url: str, tmp_path: Path, processes: list[Process]  # noqa: F811
) -> None:
    server = Process(catalog_repo, store_url, tmp_path, "--workers", "0")
    processes.append(server)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(n: int) -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            fingerprint = f"burst-{n}-{i}"
            try:
                status = server.post_alert("NoRunbookForThis", fingerprint, tmp_path, timeout=5)
            except OSError:  # the server died: this one was not acknowledged, and the sender retries later
                return
            if status == 202:
                with lock:
                    acknowledged.append(fingerprint)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for thread in senders:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 200, "200 acknowledged alerts")
    server.proc.kill()  # SIGKILL: no handler, no flush, no goodbye
    server.proc.wait(timeout=30)
    stop.set()
    for thread in senders:
        thread.join(timeout=30)
    processes.append(Process(catalog_repo, store_url, tmp_path, "--workers", "0"))  # the store opens again
    with Store(store_url) as store:
        lost = [fp for fp in acknowledged if store.count_alerts(fingerprint=fp) != 1]
        stored = store.count_alerts()
    assert lost == [] and stored >= len(acknowledged) >= 200


def test_a_run_left_running_by_a_killed_server_is_recorded_interrupted_not_rerun(
    catalog_repo: Path, store_url: str, tmp_path: Path, processes: list[Process]  # noqa: F811
) -> None:
    first = Process(catalog_repo, store_url, tmp_path, "--workers", "1")
    processes.append(first)
    assert first.post_alert("SleepLong", "fp-sleep", tmp_path) == 202
    with Store(store_url) as store:
        run_id = running_run(store)
        first.proc.kill()
        first.proc.wait(timeout=30)
        assert processes_with(MARKER_VAR, f"{run_id}.1")  # the dead server's ansible lives on, for now
        processes.append(Process(catalog_repo, store_url, tmp_path, "--workers", "1"))
        run = wait_for(lambda: (r := store.get_run(run_id)) and r.status.value != "running" and r,
                       "the run to be recovered")
    assert run.status.value == "interrupted" and run.attempts == 1  # sleeper is not idempotent
    assert "stopped without finishing the run" in run.timeline[-1].detail
    assert wait_for(lambda: processes_with(MARKER_VAR, f"{run_id}.1") == [], "the orphans to be killed", 10)
