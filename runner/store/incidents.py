"""Incidents in SQL: open one with its owner, add alerts and runs, acknowledge, resolve.

Every function runs inside the caller's write transaction; the intake takes the lock of
the incident key first (see ``queue.lock``), so two requests for one group open one incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runner.alerts.model import Alert
from runner.errors import ConflictError, NotFoundError
from runner.records import (
    LIMIT_KINDS,
    Incident,
    IncidentStatus,
    Ownership,
    RunRecord,
    RunStatus,
    TimelineEntry,
)
from runner.store import escalation
from runner.store.mapping import storable
from runner.store.tables import alerts, incident_timeline, incidents, runs
from runner.store.timeline import note, still_firing

_OPEN = [IncidentStatus.OPEN.value, IncidentStatus.ACKNOWLEDGED.value]
ESCALATE_UNMATCHED = ("critical", "high")  # severities of alerts no runbook matches that escalate at once
ESCALATING_EVENTS = ("failed", "timed_out", "interrupted")  # run outcomes automation could not fix
_GROUPED = {"alertmanager", "grafana"}  # sources whose webhooks carry the sender's group key


def incident_key(source: str, alert: Alert, group_key: str | None) -> str:
    """The alerts of one Alertmanager (or Grafana) group form one incident; others, one fingerprint."""
    group = alert.group_key or group_key
    if source in _GROUPED and group:
        return f"{source}:group:{group}"
    return f"{source}:fingerprint:{alert.fingerprint or ''}"


def incident_lock_key(key: str) -> str:
    """The lock key of decisions about incident *key*."""
    return f"incident:{key}"


def _open_incident(connection: sa.Connection, key: str) -> sa.RowMapping | None:
    return connection.execute(
        sa.select(incidents).where(incidents.c.key == key, incidents.c.status.in_(_OPEN)).with_for_update()
    ).mappings().first()


def join(
    connection: sa.Connection, *, key: str, alert: Alert, source: str, repeat: bool,
    ownership: Ownership | None, at: datetime, seen_in: str | None = None,
) -> tuple[str | None, bool]:
    """The open incident an alert about to be stored joins (opened now if needed): its id, and
    whether it was opened now. None for a resolve of nothing open, or with no owner known.

    *seen_in* is the incident of the last receipt of the same fingerprint: an alert already
    in the incident is not announced again.
    """
    incident = _open_incident(connection, key)
    if incident is None and (alert.status != "firing" or ownership is None):
        return None, False
    if incident is not None:
        incident_id = str(incident["id"])
        if not repeat and alert.status == "firing" and seen_in != incident_id:
            note(connection, incident_id, at, "alert_added", f"alert {alert.name} ({alert.fingerprint})")
        return incident_id, False
    assert ownership is not None
    incident_id = uuid.uuid4().hex
    connection.execute(sa.insert(incidents).values(
        id=incident_id, key=key, status=IncidentStatus.OPEN.value, title=storable(ownership.title),
        severity=ownership.severity, source=source, runbook=ownership.runbook, owner_team=ownership.team,
        owner=ownership.owner, opened_at=at, policy=ownership.policy))
    note(connection, incident_id, at, "opened", f"alert {alert.name} ({alert.fingerprint or '-'})")
    why = f"runbook {ownership.runbook}" if ownership.runbook else "no runbook matches: the default owner"
    note(connection, incident_id, at, "owner_assigned",
         f"team {ownership.team}, primary {ownership.owner} ({why})")
    escalation.update(connection, incident_id, f"opened: {ownership.title} ({ownership.severity}); owner "
                      f"{ownership.owner} of team {ownership.team}", at)
    return incident_id, True


def after_alert(
    connection: sa.Connection, incident_id: str, *, opened: bool, alert: Alert, repeat: bool,
    ownership: Ownership | None, run: RunRecord | None, at: datetime,
) -> None:
    """Once the alert (and its run) are stored: the run on the timeline, escalation, resolution."""
    if opened and ownership is not None and ownership.runbook is None:
        severe = (ownership.policy or {}).get("unmatched_severities", ESCALATE_UNMATCHED)
        if ownership.severity in severe:
            reason = f"no runbook matches this {ownership.severity} alert"
            escalation.start(connection, incident_id, reason,
                             escalation.message_for(connection, incident_id, reason), at, "unmatched")
    if run is not None:
        note(connection, incident_id, at, f"run_{run.status.value}",
             f"run {run.id} of {run.runbook}: {run.reason}")
        if run.status.value in ("rejected", "awaiting_approval"):
            reason = (f"run {run.id[:12]} of {run.runbook} was rejected: {run.reason}"
                      if run.status.value == "rejected" else
                      f"run {run.id[:12]} of {run.runbook} awaits approval: {run.reason}")
            escalation.start(connection, incident_id, reason,
                             escalation.message_for(connection, incident_id, reason, run.id), at,
                             run.status.value, kind=escalation_kind(run))
    if alert.status == "resolved" and not repeat:
        note(connection, incident_id, at, "alert_resolved", f"alert {alert.name} ({alert.fingerprint})")
        if not still_firing(connection, incident_id):
            _resolve(connection, incident_id, at, _how_resolved(connection, incident_id))


def _how_resolved(connection: sa.Connection, incident_id: str) -> str:
    fixed = connection.execute(sa.select(runs.c.id).where(
        runs.c.incident_id == incident_id, runs.c.status == "succeeded", runs.c.dry_run.is_(False),
    ).order_by(runs.c.finished_at.desc()).limit(1)).scalar()
    if fixed is not None:
        return f"the alert resolved after run {fixed} succeeded"
    return "the alert resolved"


def _resolve(connection: sa.Connection, incident_id: str, at: datetime, resolution: str) -> None:
    _close_escalation(connection, incident_id, "resolve", f"resolved: {resolution}", at)
    connection.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(
        status=IncidentStatus.RESOLVED.value, resolved_at=at, resolution=storable(resolution)))
    note(connection, incident_id, at, "resolved", resolution)


def _close_escalation(
    connection: sa.Connection, incident_id: str, kind: str, text: str, at: datetime
) -> None:
    """Stop escalating; tell the channels that were told, and the updates channel."""
    for channel in escalation.stop(connection, incident_id, text, at):
        escalation.queue_message(connection, incident_id, channel, kind, {
            "kind": kind, "incident_id": incident_id, "summary": text[:200], "severity": "info",
            "source": "runbook-runner", "context": {"incident": {"id": incident_id}}}, at)
    escalation.update(connection, incident_id, text, at)


def _row(connection: sa.Connection, incident_id: str) -> sa.RowMapping:
    row = connection.execute(
        sa.select(incidents).where(incidents.c.id == incident_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFoundError(f"no incident {incident_id}")
    return row


def acknowledge(connection: sa.Connection, incident_id: str, actor: str, at: datetime) -> None:
    """open -> acknowledged, by *actor*."""
    row = _row(connection, incident_id)
    if row["status"] != IncidentStatus.OPEN.value:
        raise ConflictError(f"incident {incident_id} is already {row['status']}")
    connection.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(
        status=IncidentStatus.ACKNOWLEDGED.value, acknowledged_at=at, acknowledged_by=actor))
    note(connection, incident_id, at, "acknowledged", f"by {actor}")
    _close_escalation(connection, incident_id, "acknowledge", f"acknowledged by {actor}", at)


def resolve_by_hand(
    connection: sa.Connection, incident_id: str, actor: str, at: datetime, reason: str
) -> None:
    """Resolve an incident that is not resolved yet, by *actor*."""
    row = _row(connection, incident_id)
    if row["status"] == IncidentStatus.RESOLVED.value:
        raise ConflictError(f"incident {incident_id} is already resolved")
    _resolve(connection, incident_id, at, f"by hand, by {actor}" + (f": {reason}" if reason else ""))


def on_run_status(connection: sa.Connection, run_id: str, event: str, detail: str, at: datetime) -> None:
    """Note a run's new status on its incident's timeline (if it has one)."""
    found = connection.execute(sa.select(runs.c.incident_id).where(runs.c.id == run_id)).scalar()
    if found is None:
        return
    incident_id = str(found)
    text = f"run {run_id}" + (f": {detail}" if detail else "")
    note(connection, incident_id, at, f"run_{event}", text)
    if event in ESCALATING_EVENTS:
        reason = f"run {run_id[:12]} {event.replace('_', ' ')}" + (f": {detail}" if detail else "")
        escalation.start(connection, incident_id, reason,
                         escalation.message_for(connection, incident_id, reason, run_id), at, event)
    elif event in ("running", "succeeded"):
        hint = " (the alert should resolve now; if not, the fix did not hold)" if event == "succeeded" else ""
        escalation.update(connection, incident_id, f"run {run_id[:12]} {event}{hint}", at)
        dry = connection.execute(sa.select(runs.c.dry_run).where(runs.c.id == run_id)).scalar()
        if event == "succeeded" and not dry:
            escalation.watch(connection, incident_id, run_id, at)


def find(connection: sa.Connection, incident_id: str) -> Incident | None:
    """The incident with this id (or unique prefix of 6+), with timeline, alerts and runs."""
    row = connection.execute(sa.select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    if row is None and len(incident_id) >= 6:
        rows = connection.execute(sa.select(incidents).where(
            sa.func.substr(incidents.c.id, 1, len(incident_id)) == incident_id).limit(2)).mappings().all()
        row = rows[0] if len(rows) == 1 else None
    if row is None:
        return None
    incident = incident_of(row)
    timeline = connection.execute(sa.select(incident_timeline).where(
        incident_timeline.c.incident_id == row["id"]).order_by(incident_timeline.c.id)).mappings()
    incident.timeline = [TimelineEntry(t["at"], t["event"], t["detail"]) for t in timeline]
    incident.alerts = [dict(a) for a in connection.execute(sa.select(
        alerts.c.id, alerts.c.fingerprint, alerts.c.status, alerts.c.alertname, alerts.c.received_at,
        alerts.c.repeat_of).where(alerts.c.incident_id == row["id"]).order_by(alerts.c.id)).mappings()]
    incident.runs = [dict(r) for r in connection.execute(sa.select(
        runs.c.id, runs.c.runbook, runs.c.status, runs.c.reason, runs.c.created_at, runs.c.finished_at,
    ).where(runs.c.incident_id == row["id"]).order_by(runs.c.created_at)).mappings()]
    return incident


def listing(connection: sa.Connection, *, status: list[str] | None, team: str | None,
            since: datetime | None, limit: int | None) -> list[Incident]:
    """Incidents newest first (without timeline, alerts and runs)."""
    query = sa.select(incidents)
    if status:
        query = query.where(incidents.c.status.in_(status))
    if team:
        query = query.where(incidents.c.owner_team == team)
    if since is not None:
        query = query.where(incidents.c.opened_at >= since)
    query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [incident_of(row) for row in connection.execute(query).mappings()]


def last_events(connection: sa.Connection, incident_ids: Collection[str]) -> dict[str, TimelineEntry]:
    """The latest timeline entry of each of *incident_ids* (one query for a whole listing)."""
    if not incident_ids:
        return {}
    latest = sa.select(sa.func.max(incident_timeline.c.id)).where(
        incident_timeline.c.incident_id.in_(list(incident_ids))).group_by(incident_timeline.c.incident_id)
    rows = connection.execute(sa.select(incident_timeline).where(incident_timeline.c.id.in_(latest)))
    return {row.incident_id: TimelineEntry(row.at, row.event, row.detail) for row in rows}


def incident_of(row: Any) -> Incident:
    """The Incident of an incidents row."""
    return Incident(
        id=row["id"], key=row["key"], status=IncidentStatus(row["status"]), title=row["title"],
        severity=row["severity"], source=row["source"], runbook=row["runbook"], owner_team=row["owner_team"],
        owner=row["owner"], opened_at=row["opened_at"], acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"], resolved_at=row["resolved_at"], resolution=row["resolution"],
    )


def escalation_kind(run: RunRecord) -> str:
    """What the report counts an escalation over *run* as: its status, and for a rejection the limit
    that made it (``rejected:max_runs``), from the run's reason kind."""
    status = run.status.value
    if run.status is RunStatus.REJECTED and run.reason_kind in LIMIT_KINDS:
        return f"{status}:{run.reason_kind}"
    return status
