"""Which git revision of the runbooks repository a run used."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runner.records import GitRevision


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def revision(root: Path) -> GitRevision:
    """HEAD's commit and whether the catalog's files differ from it (None outside git)."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return GitRevision(None, False)
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return GitRevision(commit.strip(), bool(status and status.strip()))
