"""Alerts to runs: which runbook, which params and hosts, what authority says, before storing.

Everything here is a pure function of the alert and the active catalog; the store then
decides the history limits and enqueues in the transaction that stores the alert. Alert
data is only ever matched and copied into params (strings Ansible treats as unsafe): it is
never templated, evaluated or put on a command line.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from runner.alerts.batch import Batch
from runner.alerts.model import Alert
from runner.catalog.live import Loaded
from runner.catalog.models import Owners, Runbook, Severity, Team
from runner.errors import ParamError, RunbookError
from runner.records import GitRevision, Ownership, ReasonKind, RunRecord, RunStatus, TimelineEntry, Trigger
from runner.routing.params import redact_alert
from runner.runs.lifecycle import Request, candidate, limits_of, prepare
from runner.store.queue import Candidate

_SEVERITIES = {s.value for s in Severity}
_TITLE_MAX = 200


def alert_trigger(alert: Alert) -> Trigger:
    """The trigger of a run an alert starts: its source, and what identifies the alert."""
    return Trigger("alert", alert.source, {
        "alertname": alert.alertname, "fingerprint": alert.fingerprint, "status": alert.status,
        "labels": alert.labels, "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat() if alert.starts_at else None,
        "generator_url": alert.generator_url,
    })


def rejected(runbook: Runbook, trigger: Trigger, reason: str, kind: ReasonKind, revision: GitRevision,
             now: datetime, alert: Alert | None = None) -> RunRecord:
    """A run recorded as rejected before any param was resolved (bad params, a forbidden operator)."""
    if trigger.alert is not None and alert is not None:
        labels, annotations = redact_alert(runbook, alert)
        trigger = Trigger(trigger.kind, trigger.actor, {**trigger.alert, "labels": labels,
                                                        "annotations": annotations})
    return RunRecord(
        id=uuid.uuid4().hex, runbook=runbook.name, status=RunStatus.REJECTED, trigger=trigger,
        revision=revision, params={}, hosts=[], verdict="rejected", reason=reason, reason_kind=kind.value,
        created_at=now,
        timeline=[TimelineEntry(now, "created", f"by {trigger.kind}: {trigger.actor}"),
                  TimelineEntry(now, RunStatus.REJECTED.value, reason)],
        fingerprint=alert.fingerprint if alert is not None else None,
    )


def _best(active: Loaded, alert: Alert) -> Runbook | None:
    """The runbook that answers *alert* (routing precedence), None when none matches."""
    matches = active.router.matches(alert)
    return matches[0].runbook if matches else None


def alert_candidate(active: Loaded, alert: Alert, now: datetime) -> Candidate | None:
    """The run a firing alert asks for, decided as far as no history is needed; None if no runbook."""
    return _candidate(active, alert, _best(active, alert), now)


def _candidate(active: Loaded, alert: Alert, runbook: Runbook | None, now: datetime) -> Candidate | None:
    if alert.status != "firing" or runbook is None:
        return None
    trigger = alert_trigger(alert)
    try:
        prepared = prepare(active.catalog, Request(runbook.name, trigger, alert=alert, now=now),
                           revision=active.revision)
    except ParamError as e:
        record = rejected(runbook, trigger, str(e), ReasonKind.PARAMS, active.revision, now, alert)
        return Candidate(record, None, limits_of(runbook))
    except RunbookError as e:  # cannot happen for a validated catalog; keep the alert, say why
        record = rejected(runbook, trigger, str(e), ReasonKind.ERROR, active.revision, now, alert)
        return Candidate(record, None)
    return candidate(active.catalog, prepared)


def route(
    active: Loaded | None, batch: Batch, now: datetime | None = None
) -> tuple[list[Candidate | None], list[Ownership | None]]:
    """For each alert of *batch*, in order: its candidate run (or None) and its incident's owner
    (None each when no catalog is loaded). Each alert is matched once."""
    if active is None:
        return [None] * len(batch.alerts), [None] * len(batch.alerts)
    at = now or datetime.now(UTC)
    runbooks = [_best(active, alert) for alert in batch.alerts]
    return ([_candidate(active, alert, rb, at) for alert, rb in zip(batch.alerts, runbooks, strict=True)],
            [_ownership(active, alert, rb) for alert, rb in zip(batch.alerts, runbooks, strict=True)])


def candidates(active: Loaded | None, batch: Batch, now: datetime | None = None) -> list[Candidate | None]:
    """One candidate (or None) per alert of *batch*, in order."""
    return route(active, batch, now)[0]


def ownership(active: Loaded, alert: Alert) -> Ownership:
    """Who owns *alert*'s incident: the matching runbook's team, else the policy's default owner."""
    return _ownership(active, alert, _best(active, alert))


def _ownership(active: Loaded, alert: Alert, runbook: Runbook | None) -> Ownership:
    catalog = active.catalog
    assert catalog.policy is not None and catalog.owners is not None
    team_name = runbook.owner if runbook else catalog.policy.default_owner
    team = catalog.owners.teams.get(team_name)
    label = alert.labels.get("severity", "")
    default = label if label in _SEVERITIES else Severity.WARNING.value
    severity = runbook.severity.value if runbook else default
    return Ownership(team=team_name, owner=team.primary if team else team_name, severity=severity,
                     title=alert.title[:_TITLE_MAX], runbook=runbook.name if runbook else None,
                     policy=escalation_policy(catalog.owners, team) if team else None)


def escalation_policy(owners: Owners, team: Team) -> dict[str, Any]:
    """A team's escalation policy as the store keeps it on each incident (it survives reloads)."""
    levels = []
    for level in team.levels:
        entry: dict[str, Any] = {"after": int(level.after.total_seconds()), "notify": list(level.notify)}
        if level.handoff:
            entry["handoff"] = level.handoff
            other = owners.teams.get(level.handoff)
            entry["handoff_notify"] = list(other.levels[0].notify) if other and other.levels else []
        levels.append(entry)
    return {"levels": levels, "repeat": team.repeat, "updates": team.updates,
            "triggers": sorted(team.triggers), "unmatched_severities": sorted(team.unmatched_severities),
            "verify_window": int(team.verify_window.total_seconds())}


def ownerships(active: Loaded | None, batch: Batch) -> list[Ownership | None]:
    """The owner of each alert's incident, in order (None each when no catalog is loaded)."""
    return route(active, batch)[1]
