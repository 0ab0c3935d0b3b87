"""`make run`'s script (docs/examples/first-run.sh), twice in a row from an empty HOME: each time
a real alert over HTTP to a real server starts a real run that succeeds, and the summary says
where it all went."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "docs" / "examples" / "first-run.sh"


def _servers_of(store: Path) -> list[str]:
    """Processes whose command line names *store*: a server the script left behind."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(store) in cmdline and "serve" in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to check no server is left running")
def test_make_runs_demo_works_twice_in_a_row_and_says_where_everything_went(tmp_path: Path) -> None:
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_") and k != "XDG_STATE_HOME"}
    env.update(HOME=str(home), TMPDIR=str(scratch), RUNBOOK=str(Path(sys.executable).with_name("runbook")),
               PYTHON=sys.executable)
    state = home / ".local" / "state" / "runbook-runner"
    demo = state / "demo.db"
    before = set(os.listdir(ROOT))
    for attempt in (1, 2):
        proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"attempt {attempt}:\n{output}"
        assert "Traceback" not in output and " ERROR " not in output
        summary = output.split("== What happened", 1)[1]
        assert re.search(r"ran disk-full-cleanup \(run \w{12}\): it succeeded and\s+removed "
                         + re.escape(str(scratch / "runbook-runner-demo" / "app.log.1")), summary), summary
        assert "the incident is resolved, a fix that held" in summary
        assert f"All of it is recorded in {demo}" in summary and f"{state / 'runbook.db'}" in summary
        assert "source .venv/bin/activate" in summary
        # the store holds this attempt's two runs only: the dry run and the alert's real one
        runs = json.loads(subprocess.run([env["RUNBOOK"], "--db", str(demo), "runs", "-o", "json"], env=env,
                                         cwd=ROOT, capture_output=True, text=True, check=True).stdout)
        assert sorted((r["trigger"]["kind"], r["status"], r["dry_run"]) for r in runs) == [
            ("alert", "succeeded", False), ("manual", "succeeded", True)]
        assert _servers_of(demo) == []
    assert set(os.listdir(ROOT)) == before  # no serve.log or other litter in the checkout
    assert not (state / "runbook.db").exists()  # the user's own store is left alone
