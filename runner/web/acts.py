"""Acts on runs from the web, the API's and the dashboard's alike: approve, reject, cancel.

Each checks the team rule (runner.web.rights), acts through the core (runner.runs.approvals),
and does what follows in this process (the metric, waking the workers).
"""

from __future__ import annotations

from runner.records import ReasonKind, RunRecord, RunStatus
from runner.runs import approvals
from runner.web.rights import may_act_on_run
from runner.web.state import Runtime
from runner.web.tokens import Identity


def run_to_act_on(state: Runtime, who: Identity, run_id: str, action: str) -> RunRecord:
    """The run *run_id*, once *who* is found to be allowed to *action* ("cancel runs of") it."""
    record = approvals.get_run(state.store, run_id)
    may_act_on_run(who, state.holder.active.catalog, record, action)
    return record


def decide_action(approve: bool) -> str:
    """The action :func:`run_to_act_on` checks before :func:`decide`."""
    return "approve runs of" if approve else "reject runs of"


def decide(state: Runtime, who: Identity, record: RunRecord, *, approve: bool, reason: str = "") -> RunRecord:
    """Approve or reject *record* (checked by :func:`run_to_act_on`) as *who*; the run after."""
    after = approvals.decide(state.store, state.holder.active.catalog, record.id, who.name, approve=approve,
                           reason=reason)
    if not approve:
        state.metrics.rejected.labels(ReasonKind.APPROVAL.value).inc()
    elif after.status is RunStatus.QUEUED:
        state.queued()
    return after


def cancel(state: Runtime, who: Identity, run_id: str) -> RunRecord:
    """Cancel the run *run_id* (or ask its worker to stop it) as *who*, within their teams; the run after."""
    record = run_to_act_on(state, who, run_id, "cancel runs of")
    return approvals.cancel(state.store, record.id, who.name)
