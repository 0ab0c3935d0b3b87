"""The runbook command, run as a real process against real catalogs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.conftest import CATALOG, ROOT

AM_PAYLOAD = {  # Alertmanager webhook, version 4, as Alertmanager sends it
    "version": "4",
    "groupKey": '{}:{alertname="DiskAlmostFull"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "runbook-runner",
    "groupLabels": {"alertname": "DiskAlmostFull"},
    "commonLabels": {"alertname": "DiskAlmostFull"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskAlmostFull",
                "env": "prod",
                "instance": "web-1:9100",
                "mountpoint": "/var/log",
            },
            "annotations": {"summary": "disk 93% full"},
            "startsAt": "2026-11-23T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "1a2b3c4d5e6f7a8b",
        },
        {
            "status": "firing",
            "labels": {
                "alertname": "DiskAlmostFull",
                "env": "prod",
                "instance": "web-1:9100",
                "mountpoint": "/data",
            },
            "annotations": {},
            "startsAt": "2026-11-23T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "9f8e7d6c5b4a3f2e",
        },
    ],
}


def runbook(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and group under *group*, e.g. ("runs", "show")."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


def _all_commands() -> list[tuple[str, ...]]:
    from runner.cli import main

    return _commands(main)


def test_the_command_tree_is_what_the_docs_know() -> None:
    """A new command joins the help test by itself; this pins a few, so the walk cannot come back empty."""
    paths = _all_commands()
    assert {("validate",), ("serve",), ("runs", "show"), ("token", "new"), ("db", "upgrade"),
            ("config",)} <= set(paths) and len(paths) >= 25


@pytest.mark.parametrize("path", _all_commands(), ids=" ".join)
def test_every_command_documents_an_example_and_where_it_reads_and_writes(path: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    from runner.cli import main

    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"runbook {' '.join(path)} --help shows no example"
    example = result.output.split("Example:", 1)[1]
    assert f"runbook {' '.join(path)}" in example or f"runbook {path[0]}" in example
    for option, variable in (("--db URL", "RUNBOOK_DB_URL"), ("--runbooks DIR", "RUNBOOK_RUNBOOKS_DIR")):
        assert option in result.output and variable in result.output, (path, option)
    assert "RUNBOOK_STATE_DIR" in result.output


def test_validate_the_repository_catalog() -> None:
    proc = runbook("validate", "runbooks/")
    assert (proc.returncode, proc.stdout) == (0, "ok: 4 runbook(s) valid\n")


def test_validate_collects_every_problem_with_file_and_line(catalog_copy: Path) -> None:
    rb = catalog_copy / "disk-full-cleanup.yaml"
    text = (
        rb.read_text()
        .replace("owner: platform-ops", "owner: nobody")
        .replace("    timeout: 2m", "    timeout: 2 minutes")
    )
    rb.write_text(text)
    (catalog_copy / "extra.yaml").write_text("kind: Runbook\nname: x\nname: y\n")
    proc = runbook("validate", ".", cwd=catalog_copy)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "disk-full-cleanup.yaml:51: steps[0].timeout: '2 minutes' is not a duration like 30s, 10m, 1h or 1d",
        "extra.yaml:3: duplicate key 'name' (first defined on line 2)",
    ]
    assert "2 problem(s) in 2 file(s)" in proc.stderr
    # meaning is checked once the shape is right: fix the duration, the owner shows up
    rb.write_text(text.replace("2 minutes", "2m"))
    (catalog_copy / "extra.yaml").unlink()
    proc = runbook("validate", "--output", "json", ".", cwd=catalog_copy)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    assert data["problems"] == [
        {
            "file": "disk-full-cleanup.yaml",
            "line": 10,
            "path": "owner",
            "message": "unknown team 'nobody' (teams in owners.yaml: payments-dev, platform-ops)",
        }
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "expected a runbook (kind: Runbook), found an empty file"),
        (b"- a\n- b\n", "expected a runbook (kind: Runbook), found no kind field"),
        (b"\xff\xfe\x00\x01", "cannot read file"),
        (b"key: [unclosed\n", "YAML syntax error at column"),
        (b"kind: Runbook\n", "missing required field 'apiVersion'"),
        (b"kind: !!python/object:os.system {}\n", "unsupported YAML tag tag:yaml.org,2002:python/object"),
    ],
)
def test_garbage_input_gets_a_clear_line_never_a_traceback(
    catalog_copy: Path, content: bytes, expected: str
) -> None:
    (catalog_copy / "junk.yaml").write_bytes(content)
    proc = runbook("validate", str(catalog_copy))
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert expected in proc.stdout


def test_validate_outside_a_catalog_is_a_clear_error(tmp_path: Path) -> None:
    proc = runbook("validate", str(tmp_path))
    assert_no_traceback(proc)
    assert proc.returncode == 1
    assert "no policy.yaml here or in a parent directory" in proc.stderr


def test_runbook_tests_pass_and_a_broken_expectation_fails(catalog_copy: Path) -> None:
    proc = runbook("test", str(catalog_copy))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "15 passed, 0 failed" in proc.stdout
    rb = catalog_copy / "rotate-oversized-file.yaml"
    rb.write_text(
        rb.read_text().replace("hosts: [web-2], verdict: allowed", "hosts: [web-1], verdict: allowed")
    )
    proc = runbook("test", str(catalog_copy))
    assert proc.returncode == 1
    assert "  FAIL  staging file alert rotates on the host" in proc.stdout
    assert "expected hosts ['web-1'], got ['web-2']" in proc.stdout
    assert "14 passed, 1 failed" in proc.stdout


def test_route_an_alertmanager_payload(tmp_path: Path) -> None:
    payload = tmp_path / "am.json"
    payload.write_text(json.dumps(AM_PAYLOAD))
    proc = runbook("route", "--alert", str(payload))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "runbook:  disk-full-cleanup (owner platform-ops)" in out
    assert (
        'because:  {alertname="DiskAlmostFull", env=~"prod|staging", mountpoint=~"/var/log|/tmp/.*"}' in out
    )
    assert "params:   host='web-1' log_dir='/var/log/app' max_age_days=3" in out
    assert "verdict:  allowed: within authority" in out
    assert out.rstrip().endswith("no runbook: owner platform-ops")  # the /data alert
    data = json.loads(runbook("route", "--alert", str(payload), "-o", "json").stdout)
    assert [d["runbook"] for d in data] == ["disk-full-cleanup", None]
    assert data[0]["hosts"] == ["web-1"] and data[1]["owner"] == "platform-ops"


def test_route_a_single_yaml_alert_at_a_given_time(tmp_path: Path) -> None:
    alert = tmp_path / "a.yaml"
    alert.write_text(
        "labels: {alertname: ProcessDown, env: prod, instance: pay-1, service: payments-api}\n"
        "annotations: {pidfile: /run/api.pid}\n"
    )
    night = runbook("route", "--alert", str(alert), "--at", "2026-03-03T02:00:00+00:00")
    assert "verdict:  awaiting_approval: outside working hours" in night.stdout
    day = runbook("route", "--alert", str(alert), "--at", "2026-03-03T11:00:00+00:00")
    assert "verdict:  allowed" in day.stdout


def test_route_an_alert_without_alertname_to_the_default_owner(tmp_path: Path) -> None:
    alert = tmp_path / "nameless.yaml"
    alert.write_text("labels: {env: prod, instance: 'db-1:9100', severity: critical}\n")
    proc = runbook("route", "--alert", str(alert))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        'alert 1 (firing): {env="prod", instance="db-1:9100", severity="critical"}',
        "  no runbook: owner platform-ops (the alert has no alertname: no runbook selects it)"]
    [data] = json.loads(runbook("route", "--alert", str(alert), "-o", "json").stdout)
    assert (data["runbook"], data["owner"], data["verdict"]) == (None, "platform-ops", None)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        # the server's own parsers answer: the same words as a 400 for the same body
        ('{"alerts": "nope"}', "alerts: must be a list"),
        ('{"annotations": {}}', "labels: is required: every alert needs labels"),
        ('{"labels": {"alertname": 5}}', "labels.alertname: must be a string"),
        ('{"labels": {"a": "b"}, "status": "exploded"}', "status: must be firing or resolved"),
        ("[1, 2]", "alerts[0]: must be an object"),
    ],
)
def test_route_refuses_malformed_alerts_with_a_reason(tmp_path: Path, content: str, reason: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    proc = runbook("route", "--alert", str(f))
    assert_no_traceback(proc)
    assert proc.returncode == 2
    assert reason in proc.stderr


def test_list_and_show() -> None:
    proc = runbook("list")
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "OWNER", "SEVERITY", "ALERTNAMES", "AUTHORITY"]
    assert any(
        line.split()[:4] == ["restart-from-pidfile", "payments-dev", "critical", "ProcessDown"]
        and "approval=outside_hours" in line
        for line in lines
    )
    assert len(lines) == 5
    show = runbook("show", "restart-from-pidfile").stdout
    assert "owner:      payments-dev (primary carol)" in show
    assert "param:      pidfile (string, from annotations.pidfile)" in show
    assert "step:       Start the service [ansible.builtin.command]" in show
    missing = runbook("show", "nope")
    assert missing.returncode == 2 and "no runbook named 'nope'" in missing.stderr


def test_codeowners_check_in_a_real_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(CATALOG, repo / "runbooks")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    proc = runbook("validate", "--check-codeowners", "runbooks", cwd=repo)
    assert proc.returncode == 1
    assert ".github/CODEOWNERS:1: CODEOWNERS is out of date" in proc.stdout
    codeowners = repo / ".github" / "CODEOWNERS"
    codeowners.parent.mkdir()
    codeowners.write_text("# hand-written rules stay\n/docs/ @acme/writers\n")
    assert runbook("--runbooks", "runbooks", "codeowners", "--write", cwd=repo).returncode == 0
    text = codeowners.read_text()
    assert text.startswith("# hand-written rules stay\n/docs/ @acme/writers\n")
    assert "/runbooks/restart-from-pidfile.yaml @acme/payments\n" in text
    assert "/runbooks/playbooks/quarantine-spool.yml @acme/platform-ops\n" in text
    assert runbook("validate", "--check-codeowners", "runbooks", cwd=repo).returncode == 0
    # a runbook changing hands makes the committed file stale again
    rb = repo / "runbooks" / "rotate-oversized-file.yaml"
    rb.write_text(rb.read_text().replace("owner: platform-ops", "owner: payments-dev"))
    assert runbook("validate", "--check-codeowners", "runbooks", cwd=repo).returncode == 1
    # the committed CODEOWNERS of this repository is current
    assert runbook("validate", "--check-codeowners").returncode == 0


def test_secret_params_never_show_in_route_or_test_output(catalog_copy: Path, tmp_path: Path) -> None:
    rb = catalog_copy / "disk-full-cleanup.yaml"
    rb.write_text(
        rb.read_text().replace("    default: /var/log/app\n", "    default: /var/log/app\n    secret: true\n")
    )
    alert = tmp_path / "a.json"
    alert.write_text(
        json.dumps(
            {
                "labels": {
                    "alertname": "DiskAlmostFull",
                    "env": "prod",
                    "instance": "web-1",
                    "mountpoint": "/var/log",
                },
                "annotations": {"log_dir": "/var/log/hush-hush"},
            }
        )
    )
    text = runbook("--runbooks", str(catalog_copy), "route", "--alert", str(alert))
    data = runbook("--runbooks", str(catalog_copy), "route", "--alert", str(alert), "-o", "json")
    assert "log_dir='***'" in text.stdout and json.loads(data.stdout)[0]["params"]["log_dir"] == "***"
    assert "hush-hush" not in text.stdout + data.stdout
    rb.write_text(
        rb.read_text().replace(
            "annotations: {log_dir: /var/log/nginx}", "annotations: {log_dir: /var/log/hush-hush}"
        )
    )
    failed = runbook("test", str(catalog_copy))
    assert failed.returncode == 1
    assert "expected param log_dir='/var/log/nginx', got '***'" in failed.stdout
    assert "hush-hush" not in failed.stdout


def test_codeowners_refuses_a_broken_catalog(catalog_copy: Path) -> None:
    (catalog_copy / "broken.yaml").write_text("kind: Runbook\nname: [\n")
    proc = runbook("--runbooks", str(catalog_copy), "codeowners")
    assert proc.returncode == 1
    assert "problem(s); run `runbook validate` and fix them first" in proc.stderr


def test_one_exit_code_table_for_every_command() -> None:
    from runner.cli.root import exit_code
    from runner.errors import (
        AlertFormatError,
        CatalogError,
        ConflictError,
        ForbiddenError,
        NotFoundError,
        ParamError,
        StoreError,
        UsageError,
    )

    errors = [UsageError("x"), ParamError("host", "x"), NotFoundError("x"), ForbiddenError("x"),
              ConflictError("x"), StoreError("x"), CatalogError("x"), AlertFormatError("x")]
    codes = {type(e).__name__: exit_code(e) for e in errors}
    assert codes == {"UsageError": 2, "ParamError": 2, "NotFoundError": 2, "ForbiddenError": 2,
                     "ConflictError": 1, "StoreError": 1, "CatalogError": 1, "AlertFormatError": 1}
    # "not found" is 2 from every command that looks something up
    assert (runbook("run", "nope").returncode, runbook("show", "nope").returncode) == (2, 2)
