"""What operators do to runs, shared by the API and the CLI: approve, reject, cancel.

Who may act on which runbook (team, role) is the caller's check; the rules that hold for
every caller live here: the person who asked for a run cannot approve it (four eyes), and a
run is approved only if its runbook's limits allow it to start now.
"""

from __future__ import annotations

from runner.catalog.models import Catalog
from runner.errors import ConflictError, ForbiddenError, NotFoundError
from runner.records import RunRecord
from runner.runs.lifecycle import limits_of
from runner.store import Store
from runner.store.queue import Limits


def get_run(store: Store, run_id: str) -> RunRecord:
    """The run with this id (or unique prefix), or NotFoundError."""
    record = store.get_run(run_id)
    if record is None:
        raise NotFoundError(f"no run {run_id}")
    return record


def decide(store: Store, catalog: Catalog, run_id: str, actor: str, *, approve: bool,
           reason: str = "") -> RunRecord:
    """Approve or reject a run awaiting approval, as *actor*; the record after."""
    record = get_run(store, run_id)
    if approve and record.requester == actor:
        raise ForbiddenError(f"four eyes: {actor} requested run {record.id}; someone else must approve it")
    runbook = catalog.runbooks.get(record.runbook)
    if approve and runbook is None:
        raise ConflictError(f"runbook {record.runbook} is not in the active catalog: "
                            "its run cannot be approved")
    limits = limits_of(runbook) if runbook is not None else Limits()
    store.decide(record.id, actor, approve=approve, limits=limits, reason=reason)
    return get_run(store, record.id)


def cancel(store: Store, run_id: str, actor: str) -> RunRecord:
    """Cancel a run not started, or ask its worker to stop it; the record after."""
    record = get_run(store, run_id)
    store.request_cancel(record.id, actor)
    return get_run(store, record.id)
