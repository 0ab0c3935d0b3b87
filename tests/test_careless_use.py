"""A new user's careless commands: each gets one clear line naming what to do, and no traceback.

The real ``runbook`` command, as a process, with a fresh state directory.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.web.tokens import Tokens
from tests.conftest import ROOT

Runbook = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def runbook(tmp_path: Path) -> Runbook:
    """``runbook ARGS`` in the repository, its state in a fresh directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_") and k != "XDG_STATE_HOME"}
    env.update(RUNBOOK_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path / "home"))

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, env={**env, **(extra or {})},
                              capture_output=True, text=True, timeout=60, check=False)

    return run


def one_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single error line of a failed command (asserting there is exactly one, and no traceback)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "internal error" not in proc.stderr
    return lines[0]


def test_serve_on_a_busy_port_names_the_port_and_the_way_out(runbook: Runbook) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = runbook("serve", "--insecure-local", "--port", str(port), "--workers", "0")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "OSError" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: port {port} on 127.0.0.1 is already in use (another runbook serve?); "
                      "choose another with --port, or --port 0 for any free one"]


@pytest.mark.parametrize("command", [("runs",), ("runs", "show", "3f2a9c"), ("incidents",), ("db", "upgrade"),
                                     ("report",), ("serve", "--insecure-local", "--port", "0")])
def test_a_store_in_a_directory_that_does_not_exist_is_refused_not_created(
        runbook: Runbook, tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "no-such-dir" / "runs.db"
    line = one_line(runbook(*command, "--db", f"sqlite:///{missing}"))
    assert f"the directory of the SQLite store {missing} does not exist" in line
    assert not missing.parent.exists()
    # the same through the environment variable
    line = one_line(runbook(*command, extra={"RUNBOOK_DB_URL": str(missing)}))
    assert "does not exist" in line and "RUNBOOK_DB_URL" in line
    assert not missing.parent.exists()


def test_db_and_runbooks_are_taken_before_or_after_the_command(runbook: Runbook, tmp_path: Path) -> None:
    store = tmp_path / "mine.db"  # a plain file name is a SQLite file
    catalog = str(ROOT / "runbooks")
    made = runbook("run", "disk-full-cleanup", "--param", "host=web-1", "--env", "prod", "--dry-run", "--yes",
                   "--db", str(store), "--runbooks", catalog, "-o", "json")
    assert made.returncode == 0, made.stderr
    after = runbook("runs", "-q", "--db", str(store))
    before = runbook("--db", f"sqlite:///{store}", "runs", "-q")
    assert after.returncode == before.returncode == 0
    assert after.stdout == before.stdout and len(after.stdout.split()) == 1
    # the command's own option wins over the one before it and over the environment
    other = tmp_path / "other.db"
    proc = runbook("--db", str(other), "runs", "-q", "--db", str(store), extra={"RUNBOOK_DB_URL": str(other)})
    assert proc.stdout == after.stdout
    assert runbook("config", "store", "--db", str(store)).stdout.strip() == f"sqlite:///{store}"


def test_token_new_writes_a_tokens_file_serve_reads(runbook: Runbook, tmp_path: Path) -> None:
    proc = runbook("token", "new", "alice", "--team", "platform-ops")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert proc.stdout == token + "\n" and token.startswith("rbk_")  # ALICE=$(runbook token new ...)
    file = tmp_path / "state" / "tokens.yaml"
    assert proc.stderr.startswith(f"added alice (operator, teams platform-ops) in {file}")
    assert stat.S_IMODE(file.stat().st_mode) == 0o600 and token not in file.read_text()
    assert Tokens.load(file).verify(token).name == "alice"

    bob = runbook("token", "new", "bob", "--role", "viewer").stdout.strip()
    tokens = Tokens.load(file)
    assert (tokens.verify(token).name, tokens.verify(bob).name) == ("alice", "bob")  # appended, kept
    again = runbook("token", "new", "alice", "--team", "platform-ops")
    assert "alice has a token" in one_line(again)  # no silent clobber
    rotated = runbook("token", "new", "alice", "--team", "platform-ops", "--replace").stdout.strip()
    assert Tokens.load(file).verify(rotated).name == "alice"
    with pytest.raises(Exception, match="invalid bearer token"):
        Tokens.load(file).verify(token)
    assert runbook("token", "revoke", "bob").returncode == 0
    assert [who.name for _, who in Tokens.load(file).entries] == ["alice"]
    listed = runbook("token", "list")
    assert listed.stdout.split() == ["NAME", "ROLE", "TEAMS", "alice", "operator", "platform-ops"]


def test_token_new_refuses_a_team_owners_yaml_does_not_have(runbook: Runbook, tmp_path: Path) -> None:
    line = one_line(runbook("token", "new", "alice", "--team", "storage"))
    assert line == ("error: unknown team 'storage': owners.yaml in runbooks has payments-dev, platform-ops")
    assert "--team" in one_line(runbook("token", "new", "alice"))  # an operator of no team can do nothing
    assert not (tmp_path / "state" / "tokens.yaml").exists()


@pytest.mark.parametrize("args, says", [
    (("serve",), "no webhook credentials: set RUNBOOK_WEBHOOK_TOKEN"),
    (("serve", "--insecure-local", "--host", "0.0.0.0"), "loopback addresses only"),
    (("run", "nosuch"), "no runbook named 'nosuch' (have: clear-stuck-spool"),
    (("runs", "show", "nosuch"), "no run 'nosuch'"),
    (("run", "disk-full-cleanup", "--param", "host=web-1"), "say which environment (--env)"),
    (("run", "disk-full-cleanup", "--param", "host=web-1", "--env", "prod", "--param", "max_age_days=abc"),
     "param max_age_days: expected an integer"),
    (("runs", "--since", "yesterday"), "give a duration like 1h or an RFC 3339 time"),
    (("--db", "mysql://root@db/x", "runs"), "unsupported database 'mysql'"),
    (("token", "revoke", "nobody"), "no tokens file at"),
])
def test_careless_commands_get_one_clear_line(runbook: Runbook, args: tuple[str, ...], says: str) -> None:
    assert says in one_line(runbook(*args))


def test_a_missing_catalog_says_where_it_looked(runbook: Runbook, tmp_path: Path) -> None:
    line = one_line(runbook("--runbooks", str(tmp_path / "nowhere"), "list"), code=1)
    assert f"{tmp_path / 'nowhere'}: no policy.yaml" in line


def test_a_tokens_file_holding_a_token_is_refused_without_repeating_it(runbook: Runbook,
                                                                       tmp_path: Path) -> None:
    token = runbook("token", "new", "alice", "--team", "platform-ops").stdout.strip()
    pasted = tmp_path / "tokens.yaml"  # an old habit: `runbook token new ... >> tokens.yaml`
    pasted.write_text(token + "\n")
    line = one_line(runbook("serve", "--insecure-local", "--port", "0", "--tokens-file", str(pasted)))
    assert "holds a token itself, not its hash" in line and token not in line


def test_serve_with_a_wrong_catalog_stops_before_touching_the_store(runbook: Runbook, tmp_path: Path) -> None:
    nowhere = str(tmp_path / "nowhere")
    line = one_line(runbook("serve", "--insecure-local", "--port", "0", "--runbooks", nowhere))
    assert "no policy.yaml" in line
    assert not (tmp_path / "state" / "runbook.db").exists()  # no store made, nothing migrated
