"""Settings: defaults, then ``RUNBOOK_*`` environment variables, then command-line options."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def state_dir() -> Path:
    """Where local state (the SQLite database) lives: $RUNBOOK_STATE_DIR or the XDG state dir."""
    explicit = os.environ.get("RUNBOOK_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook-runner"


def default_db_url() -> str:
    """The embedded default: a SQLite file in the state directory."""
    return f"sqlite:///{state_dir() / 'runbook.db'}"


@dataclass(frozen=True)
class Settings:
    """Where the runbooks are and which database records runs."""

    runbooks_dir: Path
    db_url: str

    @classmethod
    def load(cls, runbooks_dir: Path | None = None, db_url: str | None = None) -> Settings:
        """Options win over environment variables, which win over defaults."""
        return cls(
            runbooks_dir=runbooks_dir or Path(os.environ.get("RUNBOOK_RUNBOOKS_DIR", "runbooks")),
            db_url=store_url(db_url or os.environ.get("RUNBOOK_DB_URL") or default_db_url()),
        )


def store_url(text: str) -> str:
    """*text* as a store URL: a plain file name, as people type it, is a SQLite file."""
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"
