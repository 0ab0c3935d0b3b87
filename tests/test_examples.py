"""The example suite: a valid base catalog, and overlays on it that are invalid or valid.

``examples/base/`` is a small valid catalog. Each directory under ``examples/invalid/`` and
``examples/valid/`` is a case: an overlay whose files replace or add to a copy of base.

- ``<name>.delete`` removes ``<name>`` from the copy;
- ``<name>.symlink`` makes ``<name>`` a symbolic link to the path the file holds;
- ``_outside/`` is copied next to the catalog (into its parent directory), for paths that
  escape the catalog;
- ``expected.txt`` lists the exact problem lines, ``file:line: field.path: message`` with
  files relative to the catalog root (a line starting with ``#`` is a comment). A valid
  case has none, and the tests of its runbooks (``runbook test``) must pass too;
- ``xfail.txt`` marks behaviour the validator does not have yet (a crash, a fault it does
  not catch, a misleading message, a valid catalog it refuses): its first line is the
  reason, the rest the details and a suggested fix. The case is a strict xfail, so it
  fails loudly once fixed.

Every case goes through the library (``load_catalog``) and through ``runbook validate``;
the real command also runs in a subprocess over one invalid case and over base.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.catalog.load import load_catalog
from runner.routing.cases import run_tests

EXAMPLES = Path(__file__).parent / "examples"
BASE = EXAMPLES / "base"
OUTSIDE = "_outside"
CASE_FILES = {"expected.txt", "xfail.txt"}
# The invalid case the real command is run on, checking text and JSON output in detail.
CLI_CASE = EXAMPLES / "invalid" / "collects-every-problem"


def _cases(kind: str) -> list[Any]:
    cases = []
    for case in sorted((EXAMPLES / kind).iterdir()):
        if not case.is_dir():
            continue
        marks = []
        xfail = case / "xfail.txt"
        if xfail.is_file():
            reason = xfail.read_text(encoding="utf-8").splitlines()[0]
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        cases.append(pytest.param(case, id=f"{kind}/{case.name}", marks=marks))
    return cases


INVALID = _cases("invalid")
VALID = _cases("valid")


def build_catalog(case: Path, dest: Path) -> Path:
    """Copy base to *dest* and apply the overlay in *case*; return the catalog root."""
    shutil.copytree(BASE, dest)
    for src in sorted(case.rglob("*")):
        rel = src.relative_to(case)
        if src.is_dir() or rel.as_posix() in CASE_FILES:
            continue
        target = dest.parent.joinpath(*rel.parts[1:]) if rel.parts[0] == OUTSIDE else dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".delete":
            gone = target.with_suffix("")
            assert gone.exists(), f"{case.name}: {rel} deletes nothing"
            if gone.is_dir():
                shutil.rmtree(gone)
            else:
                gone.unlink()
        elif src.suffix == ".symlink":
            link = target.with_suffix("")
            link.unlink(missing_ok=True)
            link.symlink_to(src.read_text(encoding="utf-8").strip())
        else:
            shutil.copyfile(src, target)
    return dest


def expected_lines(case: Path) -> list[str]:
    """The problem lines a case must produce, sorted (empty for a valid case)."""
    file = case / "expected.txt"
    if not file.is_file():
        return []
    lines = file.read_text(encoding="utf-8").splitlines()
    return sorted(line for line in lines if line.strip() and not line.startswith("#"))


def problem_line(p: dict[str, Any]) -> str:
    """A problem of ``--output json`` in the ``file:line: field.path: message`` form."""
    path = f" {p['path']}:" if p["path"] else ""
    return f"{p['file']}:{p['line']}:{path} {p['message']}"


def run_real_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``runbook`` command (its console script, else ``python -m runner``)."""
    script = Path(sys.executable).with_name("runbook")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "runner"]
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_DEBUG"}
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def assert_no_crash(code: int, stderr: str) -> None:
    """The command failed, if at all, because of problems: no traceback, no internal error."""
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr
    assert code in (0, 1), stderr


def test_base_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = shutil.copytree(BASE, tmp_path / "catalog")
    monkeypatch.chdir(root)
    catalog = load_catalog(Path("."))
    assert [str(p) for p in catalog.problems] == []
    assert sorted(catalog.runbooks) == ["clear-stuck-spool", "disk-full-cleanup"]
    assert all(r.passed for r in run_tests(catalog))


def test_cases_are_well_formed() -> None:
    assert INVALID and VALID
    for param in INVALID:
        (case,) = param.values
        assert expected_lines(case), f"{case.name}: an invalid case needs expected.txt"
    for param in VALID:
        (case,) = param.values
        assert not (case / "expected.txt").exists(), f"{case.name}: a valid case expects no problems"


@pytest.mark.parametrize("case", INVALID + VALID)
def test_library(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_catalog(case, tmp_path / "catalog")
    monkeypatch.chdir(root)
    catalog = load_catalog(Path("."))
    # a list, not a set: the same problem reported twice is a fault too
    assert sorted(str(p) for p in catalog.problems) == expected_lines(case)
    if not catalog.problems:
        failures = [f"{r.runbook}: {r.case.name}: {f}" for r in run_tests(catalog) for f in r.failures]
        assert failures == []


@pytest.mark.parametrize("case", INVALID + VALID)
def test_command(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.cli import main  # here, so that a broken CLI fails these tests only

    root = build_catalog(case, tmp_path / "catalog")
    monkeypatch.chdir(root)
    monkeypatch.delenv("RUNBOOK_DEBUG", raising=False)
    result = CliRunner().invoke(main, ["validate", ".", "--output", "json"], catch_exceptions=False)
    assert_no_crash(result.exit_code, result.stderr)
    expected = expected_lines(case)
    assert result.exit_code == (1 if expected else 0)
    report = json.loads(result.stdout)
    assert report["ok"] is not expected
    assert sorted(problem_line(p) for p in report["problems"]) == expected


def test_real_command_on_invalid_catalog(tmp_path: Path) -> None:
    root = build_catalog(CLI_CASE, tmp_path / "catalog")
    expected = expected_lines(CLI_CASE)
    assert len({line.split(":", 1)[0] for line in expected}) > 1  # problems in several files

    text = run_real_cli("validate", ".", cwd=root)
    assert_no_crash(text.returncode, text.stderr)
    assert text.returncode == 1
    assert sorted(text.stdout.splitlines()) == expected
    files = len({line.split(":", 1)[0] for line in expected})
    assert text.stderr.strip() == f"{len(expected)} problem(s) in {files} file(s)"

    # from the parent directory, files are named relative to it
    js = run_real_cli("validate", "catalog", "--output", "json", cwd=tmp_path)
    assert_no_crash(js.returncode, js.stderr)
    assert js.returncode == 1
    report = json.loads(js.stdout)
    assert report["ok"] is False
    assert report["runbooks"] == 3  # base's two and bad-meaning.yaml; bad-shape.yaml is not loaded
    for p in report["problems"]:
        assert set(p) == {"file", "line", "path", "message"}
        assert isinstance(p["line"], int) and p["line"] >= 1
        assert p["file"].startswith("catalog/")
        p["file"] = p["file"].removeprefix("catalog/")
    assert sorted(problem_line(p) for p in report["problems"]) == expected


def test_real_command_on_valid_catalog(tmp_path: Path) -> None:
    root = shutil.copytree(BASE, tmp_path / "catalog")
    result = run_real_cli("validate", ".", cwd=root)
    assert_no_crash(result.returncode, result.stderr)
    assert result.returncode == 0
    assert result.stdout.strip() == "ok: 2 runbook(s) valid"
    js = run_real_cli("validate", ".", "--output", "json", cwd=root)
    assert json.loads(js.stdout) == {"ok": True, "problems": [], "runbooks": 2}
