"""The active catalog of a long-running process, reloaded from its git checkout.

A load reads the runbooks directory, validates it and, when it has no problems, copies it
to a private snapshot that becomes active: later edits to the checkout (a ``git pull`` that
brings a broken revision) cannot change what runs until a reload validates them. A reload
that finds problems keeps the last good revision active and says why, in ``/readyz``, the
logs and a metric.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.catalog.gitrev import revision as git_revision
from runner.catalog.load import load_catalog
from runner.catalog.models import Catalog
from runner.errors import CatalogError, RunbookError
from runner.records import GitRevision
from runner.routing.router import Router

log = logging.getLogger("runner.service")
_KEPT_SNAPSHOTS = 2  # the active one and the one before, which a run may still be reading


@dataclass(frozen=True)
class Loaded:
    """One validated revision of the catalog, with its router."""

    catalog: Catalog
    router: Router
    revision: GitRevision
    loaded_at: datetime

    @property
    def commit(self) -> str:
        """The commit for messages: short SHA with ``+dirty``, or ``no git``."""
        rev = self.revision
        if rev.commit is None:
            return "no git"
        return rev.commit[:12] + ("+dirty" if rev.dirty else "")


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did."""

    ok: bool
    active: Loaded | None
    error: str | None = None
    changed: bool = False


class CatalogHolder:
    """The catalog a server or worker uses now; :meth:`reload` swaps it only for a valid one."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.error: str | None = None  # why the last reload was refused, until one succeeds
        self.failures = 0  # reloads refused since the process started
        self._active: Loaded | None = None
        self._lock = threading.Lock()
        self._snapshots: list[Path] = []
        self._listeners: list[Callable[[ReloadResult], None]] = []
        atexit.register(self.close)

    @property
    def active(self) -> Loaded:
        """The active revision; CatalogError when none ever loaded."""
        active = self._active
        if active is None:
            raise CatalogError(f"no valid catalog loaded from {self.source}: {self.error}")
        return active

    @property
    def loaded(self) -> bool:
        """True once a revision is active."""
        return self._active is not None

    def catalog(self) -> Catalog:
        """The active catalog."""
        return self.active.catalog

    def on_reload(self, listener: Callable[[ReloadResult], None]) -> None:
        """Call *listener* after every reload, good or refused."""
        self._listeners.append(listener)

    def reload(self) -> ReloadResult:
        """Load the source again; activate it only when it validates."""
        with self._lock:
            result = self._reload()
        for listener in self._listeners:
            listener(result)
        return result

    def _reload(self) -> ReloadResult:
        revision = git_revision(self.source)
        try:
            candidate = load_catalog(self.source)
        except RunbookError as e:
            return self._refuse(str(e))
        if candidate.problems:
            first = "; ".join(str(p) for p in candidate.problems[:3])
            more = f" (and {len(candidate.problems) - 3} more)" if len(candidate.problems) > 3 else ""
            return self._refuse(f"{len(candidate.problems)} validation problem(s): {first}{more}")
        snapshot = Path(tempfile.mkdtemp(prefix="runbook-catalog-"))
        try:
            shutil.copytree(self.source, snapshot / "runbooks", symlinks=True)
            catalog = load_catalog(snapshot / "runbooks")
        except (OSError, RunbookError) as e:
            shutil.rmtree(snapshot, ignore_errors=True)
            return self._refuse(f"cannot snapshot {self.source}: {e}")
        if catalog.problems:  # changed between the check and the copy: refuse, next reload will tell
            shutil.rmtree(snapshot, ignore_errors=True)
            return self._refuse(f"{self.source} changed while it was being loaded; reload again")
        previous = self._active
        self._active = Loaded(catalog, Router(catalog), revision, datetime.now(UTC))
        self.error = None
        self._snapshots.append(snapshot)
        while len(self._snapshots) > _KEPT_SNAPSHOTS:
            shutil.rmtree(self._snapshots.pop(0), ignore_errors=True)
        changed = previous is None or previous.revision != revision
        log.info("runbooks loaded from %s at %s: %d runbook(s)", self.source, self._active.commit,
                 len(catalog.runbooks))
        return ReloadResult(True, self._active, changed=changed)

    def _refuse(self, error: str) -> ReloadResult:
        self.error = error
        self.failures += 1
        kept = f"; keeping {self._active.commit}" if self._active else "; no revision is active"
        log.error("runbooks at %s refused: %s%s", self.source, error, kept)
        return ReloadResult(False, self._active, error)

    def close(self) -> None:
        """Remove the snapshots."""
        for snapshot in self._snapshots:
            shutil.rmtree(snapshot, ignore_errors=True)
        self._snapshots.clear()
