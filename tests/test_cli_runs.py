"""`runbook run`, `runbook runs` and `runbook db upgrade` as real processes on a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, old_logs


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "state").mkdir()
    db = f"sqlite:///{tmp_path / 'state' / 'runs.db'}"
    env = {**os.environ, "RUNBOOK_OPERATOR": "carol", "RUNBOOK_DB_URL": db}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


def test_run_shows_the_plan_progress_and_a_summary_then_the_record(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = old_logs(tmp_path / "logs")
    proc = cli(
        "run", "disk-full-cleanup", "-p", "host=web-1", "-p", f"log_dir={tmp_path / 'logs'}", "--env", "prod"
    )  # no TTY: no question asked
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any(f.exists() for f in files)
    out = proc.stdout
    assert "  hosts:   web-1 (prod)" in out and "  verdict: allowed: within authority" in out
    assert "  step 2: Remove them" in out and "  verify 3: No rotated log" in out
    assert "[step 2] Remove them @ web-1: running" in proc.stderr
    assert "[step 2] Remove them @ web-1: changed" in proc.stderr
    summary = [line.split() for line in out.splitlines() if "web-1" in line and "step 2:" in line]
    assert summary and summary[0][-5:-1] == ["changed", "yes", "-", "0"]
    run_id = out.split("\nrun ")[1].split()[0]

    listing = cli("runs")
    assert listing.returncode == 0
    rows = listing.stdout.splitlines()
    assert rows[0].split() == ["ID", "RUNBOOK", "STATUS", "TRIGGER", "CREATED", "DURATION"]
    assert rows[1].split()[:4] == [run_id[:12], "disk-full-cleanup", "succeeded", "manual:carol"]

    shown = cli("runs", "show", run_id[:8])
    assert shown.returncode == 0
    assert f"run {run_id}  disk-full-cleanup  succeeded" in shown.stdout
    assert "--- [step 1] Find rotated logs older than max_age_days @ web-1: ok" in shown.stdout
    assert '"matched": 2' in shown.stdout  # the step's output tail
    assert "timeline:" in shown.stdout and "succeeded" in shown.stdout.split("timeline:")[1]

    data = json.loads(cli("runs", "show", run_id, "--output", "json").stdout)
    assert data["status"] == "succeeded" and data["trigger"] == {
        "kind": "manual",
        "actor": "carol",
        "alert": None,
    }
    assert [s["status"] for s in data["steps"]] == ["ok", "changed", "ok", "ok"]
    assert data["revision"]["commit"]


def test_failed_and_rejected_runs_exit_1_and_filters_find_them(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    failed = cli(
        "run",
        "rotate-oversized-file",
        "-p",
        "host=web-2",
        "-p",
        f"path={tmp_path}/missing.log",
        "--env",
        "staging",
        "--output",
        "json",
    )
    assert failed.returncode == 1
    record = json.loads(failed.stdout)
    assert record["status"] == "failed" and record["steps"][0]["status"] == "failed"
    rejected = cli(
        "run", "rotate-oversized-file", "-p", "host=db-9", "-p", "path=/tmp/x.log", "--env", "prod"
    )
    assert rejected.returncode == 1
    assert "verdict: rejected: host 'db-9' is not in the inventory" in rejected.stdout
    assert "recorded as rejected" in rejected.stdout
    only_failed = json.loads(cli("runs", "--status", "failed", "--output", "json").stdout)
    assert [r["status"] for r in only_failed] == ["failed"]
    only_rejected = json.loads(cli("runs", "--status", "rejected", "--output", "json").stdout)
    assert [r["reason_kind"] for r in only_rejected] == ["target"]  # the host is not in the inventory
    recent = json.loads(
        cli("runs", "--runbook", "rotate-oversized-file", "--since", "1h", "-o", "json").stdout
    )
    assert len(recent) == 2
    assert json.loads(cli("runs", "--since", "2000-01-01T00:00:00Z", "-o", "json").stdout) != []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-p", "host=web-1", "-p", "max_age_days=abc", "--env", "prod"],
            "error: param max_age_days: expected an integer, got 'abc'",
        ),
        (["-p", "host=web-1"], "say which environment (--env)"),
        (["-p", "nonsense", "--env", "prod"], "is not KEY=VALUE"),
        (
            ["-p", "host=web-1", "-p", "color=blue", "--env", "prod"],
            "param color: runbook disk-full-cleanup has no such param",
        ),
    ],
)
def test_bad_params_are_refused_before_anything_runs(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    proc = cli("run", "disk-full-cleanup", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(cli("runs", "-o", "json").stdout) == []  # nothing was recorded


def test_run_from_an_alert_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 2_000_000)
    alert = tmp_path / "alert.json"
    alert.write_text(
        json.dumps(
            {
                "labels": {"alertname": "FileTooLarge", "env": "staging", "instance": "web-2:9100"},
                "annotations": {"path": str(big)},
            }
        )
    )
    proc = cli("run", "rotate-oversized-file", "--alert", str(alert), "--yes", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["params"] == {"host": "web-2", "path": str(big), "compress": False}
    assert record["environment"] == "staging"
    assert record["trigger"]["alert"]["labels"]["alertname"] == "FileTooLarge"
    assert big.stat().st_size == 0


def test_db_upgrade_and_unknown_run(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("db", "upgrade").stdout == "database is up to date\n"
    assert cli("db", "upgrade").returncode == 0
    missing = cli("runs", "show", "abcdef")
    assert missing.returncode == 2 and "no run 'abcdef'" in missing.stderr


def test_on_a_terminal_the_plan_is_confirmed_first(tmp_path: Path) -> None:
    import pexpect  # ansible-runner's own dependency: a real pseudo-terminal

    env = {**os.environ, "RUNBOOK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}", "RUNBOOK_OPERATOR": "dan"}
    args = [
        "-m",
        "runner",
        "run",
        "disk-full-cleanup",
        "-p",
        "host=web-1",
        "-p",
        f"log_dir={tmp_path}",
        "--env",
        "staging",
    ]
    child = pexpect.spawn(sys.executable, args, cwd=str(ROOT), env=env, encoding="utf-8", timeout=60)
    child.expect(r"Run it\? \[y/N\]: ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "Aborted" in (child.before or "")
    runs = subprocess.run(
        [sys.executable, "-m", "runner", "runs", "-o", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(runs.stdout) == []  # declined: nothing ran, nothing recorded

    child = pexpect.spawn(sys.executable, args, cwd=str(ROOT), env=env, encoding="utf-8", timeout=120)
    child.expect(r"Run it\? \[y/N\]: ")
    child.sendline("y")
    child.expect("succeeded")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_approve_reject_and_cancel_from_the_cli(cli, make_catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.web.test_service import TOUCH, runbook

    root = make_catalog({"approve-me.yaml": runbook("approve-me", "payments-dev", "ApproveMe", TOUCH,
                                                    approval="required")})
    ask = ("--runbooks", str(root), "run", "approve-me", "-p", "host=web-1", "-p", f"dir={tmp_path}",
           "--env", "staging", "-o", "json")
    proc = cli(*ask)  # RUNBOOK_OPERATOR=carol asks
    assert proc.returncode == 1, proc.stderr
    run = json.loads(proc.stdout)
    assert run["status"] == "awaiting_approval" and run["trigger"]["actor"] == "carol"

    proc = cli("--runbooks", str(root), "approve", run["id"][:8])
    assert proc.returncode == 2 and f"four eyes: carol requested run {run['id']}" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "runner", "--runbooks", str(root), "approve", run["id"],
                           "--reason", "checked", "-o", "json"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "RUNBOOK_OPERATOR": "dave",
                               "RUNBOOK_DB_URL": f"sqlite:///{tmp_path / 'state' / 'runs.db'}"}, check=False)
    assert proc.returncode == 0, proc.stderr
    approved = json.loads(proc.stdout)
    assert (approved["status"], approved["decided_by"]) == ("queued", "dave")
    assert approved["timeline"][-2]["detail"] == "approved by dave: checked"

    proc = cli("cancel", run["id"])
    assert proc.returncode == 0 and proc.stdout.strip() == f"run {run['id']}: canceled"
    proc = cli("cancel", run["id"])
    assert proc.returncode == 1 and f"run {run['id']} is already canceled" in proc.stderr

    other = json.loads(cli(*ask).stdout)
    proc = cli("--runbooks", str(root), "reject", other["id"], "--reason", "freeze")
    assert proc.returncode == 0 and proc.stdout.strip() == f"run {other['id']}: rejected"
    assert cli("approve", "0123456789ab").returncode == 2


def test_incidents_ack_and_resolve_from_the_cli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from runner.alerts.batch import Batch
    from runner.alerts.model import Alert
    from runner.records import Ownership
    from runner.store import Store

    with Store(f"sqlite:///{tmp_path / 'state' / 'runs.db'}") as store:
        alert = Alert({"alertname": "DiskAlmostFull"}, fingerprint="fp-cli", source="generic")
        batch = Batch(source="generic", group_key=None, status="firing", alerts=[alert], truncated=0,
                      receiver=None, external_url=None,
                      raw={"labels": {"alertname": "DiskAlmostFull"}})
        owner = Ownership(team="platform-ops", owner="alice", severity="warning", title="Disk almost full")
        [stored] = store.record_alerts(batch, owners=[owner])
    incident_id = stored.incident_id
    assert incident_id is not None
    proc = cli("incidents", "--status", "open")
    assert proc.returncode == 0, proc.stderr
    row = [line.split() for line in proc.stdout.splitlines() if line.startswith(incident_id[:12])]
    assert row and row[0][1:5] == ["open", "warning", "platform-ops", "alice"]
    proc = cli("ack", incident_id[:8])
    assert proc.returncode == 0 and proc.stdout.strip() == f"incident {incident_id}: acknowledged"
    assert cli("ack", incident_id).returncode == 1
    proc = cli("resolve", incident_id, "--reason", "fixed by hand", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)
    assert (resolved["id"], resolved["status"]) == (incident_id, "resolved")
    # times as the API writes them: RFC 3339, a T between date and time
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", resolved["resolved_at"])
    assert cli("incidents", "-q").stdout.split() == [incident_id]
    shown = json.loads(cli("incidents", "show", incident_id, "-o", "json").stdout)
    assert (shown["acknowledged_by"], shown["resolution"]) == ("carol", "by hand, by carol: fixed by hand")
    assert [e["event"] for e in shown["timeline"]] == ["opened", "owner_assigned", "acknowledged", "resolved"]
    assert cli("ack", "ffffffffffff").returncode == 2


def test_a_requester_may_ask_for_approval_where_authority_would_not(  # type: ignore[no-untyped-def]
        cli, make_catalog, tmp_path: Path) -> None:
    from tests.integration.web.test_service import TOUCH, runbook

    root = make_catalog({"touch.yaml": runbook("touch", "payments-dev", "TouchMe", TOUCH)})  # approval: none
    base = ("--runbooks", str(root), "run", "touch", "-p", "host=web-1", "-p", f"dir={tmp_path}",
            "--env", "staging")
    proc = cli(*base, "--ask-approval", "-o", "json")
    assert proc.returncode == 0, proc.stderr  # waiting is what was asked for: not a failure
    asked = json.loads(proc.stdout)
    assert (asked["status"], asked["reason"]) == ("awaiting_approval", "approval asked for by carol")
    assert not (tmp_path / "touched").exists()  # nothing ran

    # -q: ids alone, newest first, for $(...) in scripts
    listed = cli("runs", "-q", "--status", "awaiting_approval")
    assert listed.returncode == 0 and listed.stdout.splitlines() == [asked["id"]]
    proc = cli("--runbooks", str(root), "approve", asked["id"])
    assert proc.returncode == 2 and "four eyes" in proc.stderr  # carol may not approve her own

    # asking never makes a refused run wait: a host outside the inventory stays rejected
    proc = cli("--runbooks", str(root), "run", "touch", "-p", "host=nowhere", "-p", f"dir={tmp_path}",
               "--env", "staging", "--ask-approval", "-o", "json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "rejected"
