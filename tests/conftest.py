"""Shared fixtures: the repository's own catalog, and private copies of it to break."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "runbooks"


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    """A private copy of runbooks/ that a test may change."""
    dest = tmp_path / "runbooks"
    shutil.copytree(CATALOG, dest)
    return dest


def runbook_yaml(name: str, *, match: str, extra: str = "", owner: str = "platform-ops") -> str:
    """A minimal valid runbook for *name* with the given match block (YAML text)."""
    return f"""apiVersion: runbook-runner/v1
kind: Runbook
name: {name}
title: Test runbook {name}
owner: {owner}
severity: warning
match:
{match}
params:
  host: {{from: labels.instance, type: string, extract: '([a-z0-9-]+)(:[0-9]+)?'}}
targets: {{hosts_from: host}}
authority:
  environments: [staging, prod]
  max_hosts: 1
  max_runs: {{count: 3, per: 1h}}
  cooldown: 10m
  timeout: 5m
steps:
  - name: ping
    task: {{ansible.builtin.ping: {{}}}}
{extra}"""


@pytest.fixture
def make_catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build a catalog from the repository's policy/owners/inventory plus given runbook files."""

    def build(runbooks: dict[str, str]) -> Path:
        root = tmp_path / "catalog"
        root.mkdir(exist_ok=True)
        for name in ("policy.yaml", "owners.yaml", "inventory.yaml"):
            shutil.copy(CATALOG / name, root / name)
        for file, text in runbooks.items():
            (root / file).write_text(text)
        return root

    return build


def old_logs(directory: Path) -> list[Path]:
    """Two rotated logs ten days old in *directory* (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = [directory / "a.log.1", directory / "b.gz"]
    for f in files:
        f.write_text("old")
        os.utime(f, (time.time() - 10 * 86400,) * 2)
    return files


def catalog_owned_by(root: Path, owners: str, runbooks: dict[str, str], *, default_owner: str) -> Path:
    """A catalog at *root*: the shipped inventory and policy (with *default_owner*), *owners*
    as owners.yaml, and *runbooks* (file name -> text)."""
    root.mkdir()
    shutil.copy(CATALOG / "inventory.yaml", root / "inventory.yaml")
    policy = (CATALOG / "policy.yaml").read_text()
    (root / "policy.yaml").write_text(re.sub(r"(?m)^default_owner: \S+", f"default_owner: {default_owner}",
                                             policy))
    (root / "owners.yaml").write_text(owners)
    for name, text in runbooks.items():
        (root / name).write_text(text)
    return root
