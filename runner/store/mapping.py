"""Records to rows and back: the only place that knows both the dataclasses and the columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping

from runner.records import (
    GitRevision,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    TimelineEntry,
    Trigger,
)

# PostgreSQL text cannot hold NUL; command output sometimes does. Replace it everywhere, so
# that both databases give back the same text.
NUL_REPLACEMENT = "\ufffd"


def storable(value: str) -> str:
    """*value* storable in any text column."""
    return value.replace("\x00", NUL_REPLACEMENT)


def run_row(record: RunRecord) -> dict[str, Any]:
    """The runs row of *record* (created_at defaults to now)."""
    return {
        "id": record.id,
        "runbook": record.runbook,
        "status": record.status.value,
        "trigger_kind": record.trigger.kind,
        "trigger_actor": record.trigger.actor,
        "trigger_alert": record.trigger.alert,
        "git_commit": record.revision.commit,
        "git_dirty": record.revision.dirty,
        "params": record.params,
        "hosts": record.hosts,
        "verdict": record.verdict,
        "reason": storable(record.reason),
        "reason_kind": record.reason_kind,
        "dry_run": record.dry_run,
        "environment": record.environment,
        "created_at": record.created_at or datetime.now(UTC),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "target": record.target,
        "alert_id": record.alert_id,
        "fingerprint": record.fingerprint,
        "claimed_by": record.claimed_by,
        "cancel_requested": record.cancel_requested,
        "attempts": record.attempts,
        "decided_by": record.decided_by,
        "incident_id": record.incident_id,
    }


def step_row(run_id: str, step: StepRecord) -> dict[str, Any]:
    """The run_steps row of *step*."""
    return {
        "run_id": run_id,
        "idx": step.index,
        "host": step.host,
        "name": step.name,
        "kind": step.kind,
        "status": step.status.value,
        "changed": step.changed,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "rc": step.rc,
        "stdout": storable(step.stdout),
        "stderr": storable(step.stderr),
        "message": storable(step.message),
        "retries": step.retries,
    }


def timeline_row(run_id: str, entry: TimelineEntry) -> dict[str, Any]:
    """The run_timeline row of *entry*."""
    return {"run_id": run_id, "at": entry.at, "event": entry.event, "detail": storable(entry.detail)}


def run_record(
    row: RowMapping, steps: Sequence[RowMapping] = (), timeline: Sequence[RowMapping] = ()
) -> RunRecord:
    """The RunRecord of a runs row, with the given step and timeline rows."""
    return RunRecord(
        id=row["id"],
        runbook=row["runbook"],
        status=RunStatus(row["status"]),
        trigger=Trigger(kind=row["trigger_kind"], actor=row["trigger_actor"], alert=row["trigger_alert"]),
        revision=GitRevision(commit=row["git_commit"], dirty=row["git_dirty"]),
        params=row["params"],
        hosts=row["hosts"],
        verdict=row["verdict"],
        reason=row["reason"],
        reason_kind=row.get("reason_kind"),
        dry_run=row["dry_run"],
        environment=row["environment"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        steps=[step_record(step) for step in steps],
        timeline=[timeline_entry(entry) for entry in timeline],
        target=row["target"],
        alert_id=row["alert_id"],
        fingerprint=row["fingerprint"],
        claimed_by=row["claimed_by"],
        cancel_requested=row["cancel_requested"],
        attempts=row["attempts"],
        decided_by=row["decided_by"],
        incident_id=row["incident_id"],
    )


def step_record(row: RowMapping) -> StepRecord:
    """The StepRecord of a run_steps row."""
    return StepRecord(
        index=row["idx"],
        name=row["name"],
        kind=row["kind"],
        host=row["host"],
        status=StepStatus(row["status"]),
        changed=row["changed"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        rc=row["rc"],
        stdout=row["stdout"],
        stderr=row["stderr"],
        message=row["message"],
        retries=row["retries"],
    )


def timeline_entry(row: RowMapping) -> TimelineEntry:
    """The TimelineEntry of a run_timeline row."""
    return TimelineEntry(at=row["at"], event=row["event"], detail=row["detail"])
