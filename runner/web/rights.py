"""Who may act on what: the team rule the API and the dashboard share, and the acts on runs.

An operator acts for the teams the tokens file gives them, an admin for all; a run is acted
on for the team that owns its runbook, and only an admin acts on a run whose runbook left
the catalog (no team owns it any more). :func:`decide` and :func:`cancel` check that rule,
act, and do what follows in this process (the metric, waking the workers), for both.
"""

from __future__ import annotations

from runner.catalog.models import Catalog
from runner.errors import ForbiddenError
from runner.records import ReasonKind, RunRecord, RunStatus
from runner.runs import approvals
from runner.web.state import Runtime
from runner.web.tokens import Identity, Role


def may_act_for(who: Identity, team: str, what: str) -> None:
    """ForbiddenError unless *who* acts for *team*, which owns *what* ("run runbook x")."""
    if not who.acts_for(team):
        teams = ", ".join(sorted(who.teams)) or "no team"
        raise ForbiddenError(f"{who.name} ({who.role.value}; {teams}) may not {what}: "
                             f"it is owned by team {team}")


def may_act_on_run(who: Identity, catalog: Catalog, record: RunRecord, action: str) -> None:
    """ForbiddenError unless *who* may *action* ("cancel runs of") the run *record*."""
    runbook = catalog.runbooks.get(record.runbook)
    if runbook is not None:
        may_act_for(who, runbook.owner, f"{action} runbook {runbook.name}")
    elif who.role is not Role.ADMIN:
        raise ForbiddenError(f"runbook {record.runbook} is not in the active catalog: only an admin may "
                             f"{action} its runs")


def acts_on_run(who: Identity, catalog: Catalog, record: RunRecord) -> bool:
    """True when *who* may act on the run *record* (what the dashboard shows buttons for)."""
    runbook = catalog.runbooks.get(record.runbook)
    return who.acts_for(runbook.owner) if runbook is not None else who.role is Role.ADMIN



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
