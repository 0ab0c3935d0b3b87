"""Who may act on what: the team rule the API and the dashboard share (no Flask here).

An operator acts for the teams the tokens file gives them, an admin for all; a run is acted
on for the team that owns its runbook, and only an admin acts on a run whose runbook left
the catalog (no team owns it any more).
"""

from __future__ import annotations

from runner.catalog.models import Catalog
from runner.errors import ForbiddenError
from runner.records import RunRecord
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
