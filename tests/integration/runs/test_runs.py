"""Runs end to end: decide, record, execute with real Ansible, read back from a real store."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.alerts.model import Alert
from runner.catalog.load import load_catalog
from runner.errors import ParamError, RunbookError
from runner.records import RunRecord, RunStatus, StepStatus, Trigger
from runner.routing.params import REDACTED
from runner.runs.lifecycle import Request, carry_out, prepare, submit
from runner.store import Store
from tests.conftest import CATALOG, old_logs, runbook_yaml

OPERATOR = Trigger("manual", "alice")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_catalog(tmp_path: Path) -> Path:
    """The repository's catalog committed in a fresh git repository."""
    repo = tmp_path / "repo"
    shutil.copytree(CATALOG, repo / "runbooks")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "runbooks")
    return repo / "runbooks"


def comparable(record: RunRecord) -> dict[str, Any]:
    """A record without what differs between two executions (ids, clocks, durations)."""
    return {
        "runbook": record.runbook,
        "status": record.status,
        "params": record.params,
        "hosts": record.hosts,
        "verdict": record.verdict,
        "reason": record.reason,
        "env": record.environment,
        "dry_run": record.dry_run,
        "trigger": (record.trigger.kind, record.trigger.actor),
        "revision": (record.revision.commit, record.revision.dirty),
        "steps": [
            (s.index, s.name, s.kind, s.host, s.status, s.changed, s.rc, s.retries) for s in record.steps
        ],
        "timeline": [e.event for e in record.timeline],
    }


def test_a_manual_run_is_recorded_with_revision_steps_and_timeline(
    git_catalog: Path, tmp_path: Path, store_url: str
) -> None:
    files = old_logs(tmp_path / "logs")
    catalog = load_catalog(git_catalog)
    head = git(git_catalog, "rev-parse", "HEAD").strip()
    with Store(store_url) as store:
        prepared = submit(
            store,
            catalog,
            Request(
                "disk-full-cleanup",
                OPERATOR,
                environment="prod",
                params={"host": "web-1", "log_dir": str(tmp_path / "logs")},
            ),
        )
        assert store.get_run(prepared.record.id).status is RunStatus.QUEUED  # type: ignore[union-attr]
        final = carry_out(store, prepared)
    assert not any(f.exists() for f in files)
    assert final.status is RunStatus.SUCCEEDED
    assert (final.revision.commit, final.revision.dirty) == (head, False)
    assert (final.trigger.kind, final.trigger.actor) == ("manual", "alice")
    assert final.params == {"host": "web-1", "log_dir": str(tmp_path / "logs"), "max_age_days": 3}
    assert final.hosts == ["web-1"] and final.environment == "prod"
    assert [e.event for e in final.timeline] == ["created", "queued", "running", "succeeded"]
    assert [(s.name, s.status) for s in final.steps] == [
        ("Find rotated logs older than max_age_days", StepStatus.OK),
        ("Remove them", StepStatus.CHANGED),
        ("No rotated log older than max_age_days remains", StepStatus.OK),
        ("Assert none is left", StepStatus.OK),
    ]
    assert final.started_at and final.finished_at and final.duration and final.duration > 0
    assert all(s.duration is not None for s in final.steps)


def test_a_dirty_tree_is_recorded_as_dirty(git_catalog: Path, tmp_path: Path) -> None:
    rb = git_catalog / "disk-full-cleanup.yaml"
    rb.write_text(rb.read_text().replace("default: 3", "default: 4"))
    prepared = prepare(
        load_catalog(git_catalog),
        Request("disk-full-cleanup", OPERATOR, environment="prod", params={"host": "web-1"}),
    )
    assert prepared.record.revision.dirty is True
    assert prepared.record.params["max_age_days"] == 4
    outside_git = prepare(
        load_catalog(CATALOG.resolve()),
        Request("disk-full-cleanup", OPERATOR, environment="prod", params={"host": "web-1"}),
    )
    assert outside_git.record.revision.commit  # this repository itself is a git checkout


def test_the_same_run_is_recorded_identically_in_sqlite_and_postgresql(
    git_catalog: Path, tmp_path: Path, sqlite_store_url: str, postgresql_store_url: str
) -> None:
    results = []
    for url in (sqlite_store_url, postgresql_store_url):
        old_logs(tmp_path / "logs")
        with Store(url) as store:
            prepared = submit(
                store,
                load_catalog(git_catalog),
                Request(
                    "disk-full-cleanup",
                    OPERATOR,
                    environment="staging",
                    params={"host": "web-2", "log_dir": str(tmp_path / "logs")},
                ),
            )
            carry_out(store, prepared)
            results.append(store.get_run(prepared.record.id))
    sqlite_record, pg_record = results
    assert sqlite_record is not None and pg_record is not None
    assert comparable(sqlite_record) == comparable(pg_record)
    assert [s.stdout for s in sqlite_record.steps] != [] and len(pg_record.steps) == 4


def test_invalid_params_are_refused_before_anything_runs(tmp_path: Path) -> None:
    catalog = load_catalog(CATALOG)
    with pytest.raises(ParamError, match=r"param max_age_days: 0 is below the minimum 1"):
        prepare(
            catalog,
            Request(
                "disk-full-cleanup",
                OPERATOR,
                environment="prod",
                params={"host": "web-1", "max_age_days": "0"},
            ),
        )
    with pytest.raises(ParamError, match="param host: a value is required"):
        prepare(catalog, Request("disk-full-cleanup", OPERATOR, environment="prod"))
    with pytest.raises(RunbookError, match="say which environment"):
        prepare(catalog, Request("disk-full-cleanup", OPERATOR, params={"host": "web-1"}))


@pytest.mark.parametrize(
    ("request_", "status", "reason"),
    [
        (
            Request("disk-full-cleanup", OPERATOR, environment="dev", params={"host": "web-1"}),
            RunStatus.REJECTED,
            "environment 'dev' is outside the runbook's authority (staging, prod)",
        ),
        (
            Request(
                "restart-from-pidfile",
                OPERATOR,
                environment="prod",
                now=datetime(2026, 3, 3, 2, tzinfo=UTC),
                params={
                    "host": "pay-1",
                    "service": "payments-api",
                    "pidfile": "/tmp/x.pid",
                },
            ),
            RunStatus.AWAITING_APPROVAL,
            "outside working hours",
        ),
    ],
)
def test_runs_outside_authority_are_recorded_and_never_executed(
    sqlite_store_url: str, request_: Request, status: RunStatus, reason: str
) -> None:
    with Store(sqlite_store_url) as store:
        prepared = submit(store, load_catalog(CATALOG), request_)
        assert prepared.plan is None
        with pytest.raises(RunbookError, match="not allowed to execute"):
            carry_out(store, prepared)
        stored = store.get_run(prepared.record.id)
    assert stored is not None
    assert stored.status is status and reason in stored.reason
    assert stored.steps == [] and stored.started_at is None
    assert [e.event for e in stored.timeline] == ["created", status.value]


@pytest.mark.parametrize("secret", ["s3cr3t-value", 'p\u00e4ssw\u00f6rd"x'])
def test_secret_params_are_redacted_in_the_record_and_scrubbed_from_output(
    make_catalog,  # type: ignore[no-untyped-def]
    sqlite_store_url: str,
    secret: str,
) -> None:
    text = (
        runbook_yaml("with-secret", match="  - alertname: Test")
        .replace("params:\n", "params:\n  token: {from: labels.token, type: string, secret: true}\n")
        .replace(
            "steps:\n  - name: ping\n    task: {ansible.builtin.ping: {}}\n",
            "steps:\n  - name: echo\n"
            '    task: {ansible.builtin.command: {argv: [echo, "token={{ token }}"]}}\n'
            "  - name: keep it as a fact (its output is JSON, where the value is escaped)\n"
            '    task: {ansible.builtin.set_fact: {leaked: "{{ token }}"}}\n',
        )
    )
    root = make_catalog({"s.yaml": text})
    alert = Alert({"alertname": "Test", "env": "prod", "instance": "web-1", "token": secret})
    trigger = Trigger("alert", "alertmanager", {"labels": alert.labels, "annotations": {}})
    with Store(sqlite_store_url) as store:
        prepared = submit(store, load_catalog(root), Request("with-secret", trigger, alert=alert))
        final = carry_out(store, prepared)
    assert final.status is RunStatus.SUCCEEDED
    assert final.params["token"] == REDACTED
    assert final.trigger.alert is not None and final.trigger.alert["labels"]["token"] == REDACTED
    assert final.steps[0].stdout.strip() == f"token={REDACTED}"
    assert REDACTED in final.steps[1].stdout
    escaped = json.dumps(secret)[1:-1]
    for leak in (secret, escaped, "s3cr3t", "p\\u00e4ssw"):
        assert leak not in repr(final), leak


def test_dry_run_is_recorded_as_such_and_changes_nothing(sqlite_store_url: str, tmp_path: Path) -> None:
    files = old_logs(tmp_path / "logs")
    with Store(sqlite_store_url) as store:
        prepared = submit(
            store,
            load_catalog(CATALOG),
            Request(
                "disk-full-cleanup",
                OPERATOR,
                environment="prod",
                dry_run=True,
                params={"host": "web-1", "log_dir": str(tmp_path / "logs")},
            ),
        )
        final = carry_out(store, prepared)
    assert final.dry_run is True and final.status is RunStatus.SUCCEEDED
    assert all(f.exists() for f in files)
    assert any(e.event == "dry_run" and "check mode" in e.detail for e in final.timeline)
