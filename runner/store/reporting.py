"""Read-only SQL for ``runbook report``: the facts of the incidents opened since a moment.

Every function runs inside the caller's read transaction and returns plain facts (one row
per incident, per escalation start, per run that awaited approval); ``runner.report`` turns
them into counts, medians and percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from runner.store.tables import alerts, incident_timeline, incidents, run_timeline, runs

APPROVAL_EVENTS = ("awaiting_approval", "approved", "queued")  # a decision notes approved, then queued


@dataclass(frozen=True)
class IncidentFacts:
    """One incident: who owns it, when it was opened, acknowledged and resolved, and how."""

    id: str
    runbook: str | None  # None: no runbook matches its alerts
    team: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    alerts: int  # receipts of its alerts: firing, resolved and repeats


@dataclass(frozen=True)
class EscalationFacts:
    """One start of an incident's escalation, with the reason it gave."""

    incident_id: str
    at: datetime
    reason: str
    kind: str | None = None  # the trigger it started on; None when an older process wrote it


@dataclass(frozen=True)
class ApprovalFacts:
    """A run of an incident that awaited approval; approved_at None while it waits (or was not approved)."""

    incident_id: str
    run_id: str
    requested_at: datetime
    approved_at: datetime | None


@dataclass(frozen=True)
class ReportRows:
    """Everything ``runbook report`` needs about the incidents opened since *since*."""

    since: datetime
    incidents: tuple[IncidentFacts, ...]
    escalations: tuple[EscalationFacts, ...]
    approvals: tuple[ApprovalFacts, ...]


def _opened_since(since: datetime) -> sa.Select[tuple[str]]:
    return sa.select(incidents.c.id).where(incidents.c.opened_at >= since)


def incident_facts(connection: sa.Connection, since: datetime) -> list[IncidentFacts]:
    """The incidents opened at or after *since*, oldest first, with how many alerts each received."""
    counts = (sa.select(alerts.c.incident_id, sa.func.count().label("n"))
              .where(alerts.c.incident_id.in_(_opened_since(since)))
              .group_by(alerts.c.incident_id).subquery())
    query = (sa.select(incidents.c.id, incidents.c.runbook, incidents.c.owner_team, incidents.c.opened_at,
                       incidents.c.acknowledged_at, incidents.c.resolved_at, incidents.c.resolution,
                       sa.func.coalesce(counts.c.n, 0).label("n"))
             .outerjoin(counts, counts.c.incident_id == incidents.c.id)
             .where(incidents.c.opened_at >= since)
             .order_by(incidents.c.opened_at, incidents.c.id))
    return [IncidentFacts(id=row.id, runbook=row.runbook, team=row.owner_team, opened_at=row.opened_at,
                          acknowledged_at=row.acknowledged_at, resolved_at=row.resolved_at,
                          resolution=row.resolution, alerts=int(row.n))
            for row in connection.execute(query)]


def escalation_facts(connection: sa.Connection, since: datetime) -> list[EscalationFacts]:
    """Every escalation start of those incidents (an incident acknowledged may escalate again later)."""
    query = (sa.select(incident_timeline.c.incident_id, incident_timeline.c.at, incident_timeline.c.detail,
                       incident_timeline.c.kind)
             .where(incident_timeline.c.event == "escalation_started",
                    incident_timeline.c.incident_id.in_(_opened_since(since)))
             .order_by(incident_timeline.c.id))
    return [EscalationFacts(row.incident_id, row.at, row.detail, row.kind)
            for row in connection.execute(query)]


def approval_facts(connection: sa.Connection, since: datetime) -> list[ApprovalFacts]:
    """The runs of those incidents that awaited approval: when they began to wait, when approved."""
    query = (sa.select(runs.c.incident_id, run_timeline.c.run_id, run_timeline.c.event, run_timeline.c.at)
             .join(runs, runs.c.id == run_timeline.c.run_id)
             .where(runs.c.incident_id.in_(_opened_since(since)),
                    run_timeline.c.event.in_(APPROVAL_EVENTS))
             .order_by(run_timeline.c.run_id, run_timeline.c.id))
    return _approvals((r.incident_id, r.run_id, r.event, r.at) for r in connection.execute(query))


def _approvals(rows: Iterable[tuple[str, str, str, datetime]]) -> list[ApprovalFacts]:
    """Per run: the first awaiting_approval, and the first approved (or queued) at or after it."""
    found: dict[str, ApprovalFacts] = {}
    for incident_id, run_id, event, at in rows:
        seen = found.get(run_id)
        if seen is None:
            if event == "awaiting_approval":
                found[run_id] = ApprovalFacts(incident_id, run_id, at, None)
        elif seen.approved_at is None and event in ("approved", "queued") and at >= seen.requested_at:
            found[run_id] = ApprovalFacts(incident_id, run_id, seen.requested_at, at)
    return list(found.values())


def report_rows(connection: sa.Connection, since: datetime) -> ReportRows:
    """The facts of the incidents opened at or after *since*."""
    return ReportRows(since=since, incidents=tuple(incident_facts(connection, since)),
                      escalations=tuple(escalation_facts(connection, since)),
                      approvals=tuple(approval_facts(connection, since)))
