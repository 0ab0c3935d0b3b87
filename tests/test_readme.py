"""The README, executed (as sqlite-utils tests its documentation).

Every ``console`` and ``sh`` block of README.md runs, in order, in one shell session, in a copy
of the repository (a git checkout of its own) with an empty HOME, so a fresh state directory;
each command's output is checked where the README shows one. A stale sample fails CI.

How the blocks are read:

- In a ``console`` block, ``$ `` starts a command; it continues on the next lines while a quote
  is open or a line ends with a backslash. The lines after it, up to the next ``$ ``, are what
  it prints (stdout and stderr together). ``...`` stands for any text: ids, times, paths, lines
  left out. Whitespace is not compared, so column widths and a JSON answer folded to fit the
  page read the same. A command shown without output must succeed (exit 0).
- An ``sh`` block is commands only.
- ``<!-- readme-test: skip: REASON -->`` on the line before a block leaves the block out, with
  the reason; it is for blocks that cannot run here (a PostgreSQL host of the reader's own), or
  that are what CI itself runs.
- A person waits for a server they started in the background before typing the next command,
  and for the one they stopped to go before starting another: after ``runbook serve ... &`` the
  test waits until it answers ``/readyz``; before ``runbook serve`` it waits for the port to be
  free.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->\s*\Z", re.S)
FENCE = re.compile(r"^```(console|sh)\n(.*?)^```", re.S | re.M)
COMMAND_TIMEOUT = 180.0
SERVER_WAIT = 30.0
DEMO_DIRS = (Path("/tmp/demo-logs"), Path("/tmp/demo-big"))  # the README's own scratch directories
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv*", "__pycache__", ".pytest_cache", ".mypy_cache",
                                     ".ruff_cache", "*.egg-info", "build", "dist")


@dataclass
class Command:
    """One command of the README and what it is shown to print (None: not shown)."""

    text: str
    expected: str | None
    line: int  # in README.md


@dataclass
class Block:
    line: int
    commands: list[Command] = field(default_factory=list)
    skip: str | None = None


def _complete(text: str) -> bool:
    """Whether *text* is a whole command: no quote left open, no trailing backslash."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # "No closing quotation"
        return False
    return True


def parse_console(body: str, first_line: int) -> list[Command]:
    """The commands of a console block, each with the output shown under it."""
    commands: list[Command] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"README.md:{first_line + i}: output with no command before it: "
                                 f"{lines[i]!r}")
        start = i
        text = lines[i][2:]
        while not _complete(text) and i + 1 < len(lines):
            i += 1
            text += "\n" + lines[i]
        i += 1
        shown = []
        while i < len(lines) and not lines[i].startswith("$ "):
            shown.append(lines[i])
            i += 1
        expected = "\n".join(shown) if any(s.strip() for s in shown) else None
        commands.append(Command(text, expected, first_line + start))
    return commands


def parse_readme(text: str) -> list[Block]:
    """Every console and sh block of *text*, in order, with its skip reason if it has one."""
    blocks = []
    for match in FENCE.finditer(text):
        kind, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 2  # the block's first line
        skip = SKIP.search(text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1] + "\n")
        block = Block(line, skip=skip.group(1) if skip else None)
        if kind == "console":
            block.commands = parse_console(body, line)
        else:
            block.commands = [Command(c.strip(), None, line + n) for n, c in enumerate(body.splitlines())
                              if c.strip() and not c.lstrip().startswith("#")]
        blocks.append(block)
    return blocks


def matches(expected: str, actual: str) -> bool:
    """Whether *actual* reads as *expected*: ``...`` is any text, whitespace does not count."""
    parts = [re.escape(re.sub(r"\s+", "", part)) for part in expected.split("...")]
    return re.fullmatch(".*?".join(parts), re.sub(r"\s+", "", actual), re.S) is not None


def _port(command: str) -> int:
    found = re.search(r"--port[ =](\d+)", command)
    return int(found.group(1)) if found else 8080


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class Shell:
    """One bash session, fed the README's commands one at a time, as a person types them."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, cwd=cwd,
                                        env=env, text=True, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, command: str) -> tuple[int, str]:
        """Run *command*; its exit status and everything it printed."""
        self.count += 1
        out, rc = self.scratch / f"{self.count}.out", self.scratch / f"{self.count}.rc"
        assert self.process.stdin is not None
        self.process.stdin.write(f"{{\n{command}\n}} >{out} 2>&1 </dev/null\n"
                                 f"echo $? >{rc}.part && mv {rc}.part {rc}\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while not rc.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"the shell exited ({self.process.returncode}) during: {command}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer within {COMMAND_TIMEOUT:.0f} s: {command}\n"
                                     f"{out.read_text(errors='replace') if out.exists() else ''}")
            time.sleep(0.05)
        return int(rc.read_text()), out.read_text(errors="replace")

    def close(self) -> None:
        """End the session and everything it started (servers in the background included)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
            time.sleep(0.5)  # the servers of the group end with their shell's TERM, given a moment


def test_the_readme_parses_into_runnable_blocks() -> None:
    blocks = parse_readme(README.read_text(encoding="utf-8"))
    run = [b for b in blocks if b.skip is None]
    assert len(run) >= 5 and sum(len(b.commands) for b in run) >= 25
    assert all(b.skip for b in blocks if any("make run" in c.text for c in b.commands))
    shown = [c for b in run for c in b.commands if c.expected is not None]
    assert any("ok: 4 runbook(s) valid" in c.expected for c in shown if c.expected)


def test_matching_reads_dots_as_any_text_and_ignores_whitespace() -> None:
    assert matches("run ...  succeeded\n...", "run 3f2a9c disk-full-cleanup  succeeded\n  more\n")
    assert matches('{"a":1,\n"b":2}', '{"a":1,"b":2}')
    assert not matches("ok: 4 runbook(s) valid", "ok: 3 runbook(s) valid")
    assert not matches("run ...  succeeded", "run 3f2a9c  failed")


def test_every_readme_command_works_as_printed(tmp_path: Path) -> None:
    for port in (8080,):
        if not _port_free(port):
            message = f"port {port} is busy: the README's walk-through serves on it"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    repo = tmp_path / "runbook-runner"
    shutil.copytree(ROOT, repo, ignore=COPY_IGNORE)
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "readme", "GIT_AUTHOR_EMAIL": "readme@example.com",
               "GIT_COMMITTER_NAME": "readme", "GIT_COMMITTER_EMAIL": "readme@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "a clone"]):
        subprocess.run(["git", *args], cwd=repo, env=git_env, check=True, capture_output=True)
    for directory in DEMO_DIRS:
        shutil.rmtree(directory, ignore_errors=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_") and k != "XDG_STATE_HOME"}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    scratch = tmp_path / "outputs"
    scratch.mkdir()
    shell = Shell(repo, env, scratch)
    try:
        for block in parse_readme(README.read_text(encoding="utf-8")):
            if block.skip is not None:
                continue
            for command in block.commands:
                serves = re.search(r"\brunbook serve\b", command.text) is not None
                if serves:
                    deadline = time.monotonic() + SERVER_WAIT
                    while not _port_free(_port(command.text)) and time.monotonic() < deadline:
                        time.sleep(0.1)
                code, output = shell.run(command.text)
                where = f"README.md:{command.line}: $ {command.text}"
                if serves and re.search(r"&\s*(#.*)?\Z", command.text):  # started in the background
                    deadline = time.monotonic() + SERVER_WAIT
                    while not _ready(_port(command.text)):
                        assert time.monotonic() < deadline, f"{where}\nthe server is not ready:\n{output}"
                        time.sleep(0.1)
                    continue
                if command.expected is None:
                    assert code == 0, f"{where}\nexited {code}:\n{output}"
                else:
                    assert matches(command.expected, output), (
                        f"{where}\nprinted:\n{output}\nbut the README shows:\n{command.expected}")
    finally:
        shell.close()
        for directory in DEMO_DIRS:
            shutil.rmtree(directory, ignore_errors=True)
