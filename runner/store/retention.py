"""Retention: delete what is finished and older than a cutoff, in small transactions.

What goes, oldest first, in batches (each its own transaction, so a live store is never held
for long and an interrupted prune loses nothing it had not finished deciding):

- incidents resolved before the cutoff, with their timeline, escalation state and messages,
  unless a run of theirs is still pending or running;
- runs in a final state that ended before the cutoff, with their steps and timeline, unless
  their incident is kept;
- alerts received before the cutoff that no kept incident and no kept run refers to.

Queued, running and awaiting runs and open or acknowledged incidents are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from runner.records import FINAL_STATUSES
from runner.store.tables import (
    UTCDateTime,
    alerts,
    escalations,
    incident_timeline,
    incidents,
    outbox,
    run_steps,
    run_timeline,
    runs,
)

BATCH = 500  # rows per transaction
_FINAL = [status.value for status in FINAL_STATUSES]


@dataclass(frozen=True)
class Pruned:
    """How many rows of each kind a prune removed (or would remove, on a dry run)."""

    incidents: int = 0
    runs: int = 0
    alerts: int = 0
    messages: int = 0


def _old_incidents(cutoff: datetime) -> sa.Select[tuple[str]]:
    busy = sa.select(runs.c.id).where(runs.c.incident_id == incidents.c.id, runs.c.status.not_in(_FINAL))
    return sa.select(incidents.c.id).where(
        incidents.c.status == "resolved", incidents.c.resolved_at < sa.literal(cutoff, UTCDateTime()),
        ~sa.exists(busy))


def _kept_incident(column: sa.ColumnElement[str | None], cutoff: datetime) -> sa.ColumnElement[bool]:
    """True where *column* names an incident that stays."""
    return sa.exists(sa.select(incidents.c.id).where(incidents.c.id == column,
                                                     incidents.c.id.not_in(_old_incidents(cutoff))))


def _old_runs(cutoff: datetime) -> sa.Select[tuple[str]]:
    ended = sa.func.coalesce(runs.c.finished_at, runs.c.created_at)
    return sa.select(runs.c.id).where(runs.c.status.in_(_FINAL), ended < sa.literal(cutoff, UTCDateTime()),
                                      ~_kept_incident(runs.c.incident_id, cutoff))


def _old_alerts(cutoff: datetime) -> sa.Select[tuple[int]]:
    kept_run = sa.select(runs.c.id).where(runs.c.alert_id == alerts.c.id, runs.c.id.not_in(_old_runs(cutoff)))
    return sa.select(alerts.c.id).where(alerts.c.received_at < sa.literal(cutoff, UTCDateTime()),
                                        ~_kept_incident(alerts.c.incident_id, cutoff), ~sa.exists(kept_run))


def count(connection: sa.Connection, cutoff: datetime) -> Pruned:
    """What a prune at *cutoff* would remove now."""

    def n(select: sa.Select[tuple[str]] | sa.Select[tuple[int]]) -> int:
        return int(connection.execute(sa.select(sa.func.count()).select_from(select.subquery())).scalar_one())

    old = _old_incidents(cutoff)
    messages = int(connection.execute(sa.select(sa.func.count()).select_from(outbox)
                                      .where(outbox.c.incident_id.in_(old))).scalar_one())
    # Runs and alerts are counted as they will be once the old incidents (and runs) are gone.
    return Pruned(incidents=n(old), runs=n(_old_runs(cutoff)), alerts=n(_old_alerts(cutoff)),
                  messages=messages)


Batch = Callable[[Callable[[sa.Connection], int]], int]  # runs one step in its own write transaction


def prune(transaction: Batch, cutoff: datetime) -> Pruned:
    """Delete what is finished and older than *cutoff*, BATCH rows per transaction; what went."""

    def incidents_step(connection: sa.Connection) -> int:
        ids = list(connection.execute(_old_incidents(cutoff).limit(BATCH)).scalars())
        if not ids:
            return 0
        sent = connection.execute(sa.delete(outbox).where(outbox.c.incident_id.in_(ids))).rowcount
        counts["messages"] += sent
        connection.execute(sa.delete(escalations).where(escalations.c.incident_id.in_(ids)))
        connection.execute(sa.delete(incident_timeline).where(incident_timeline.c.incident_id.in_(ids)))
        return int(connection.execute(sa.delete(incidents).where(incidents.c.id.in_(ids))).rowcount)

    def runs_step(connection: sa.Connection) -> int:
        ids = list(connection.execute(_old_runs(cutoff).limit(BATCH)).scalars())
        if not ids:
            return 0
        connection.execute(sa.delete(run_steps).where(run_steps.c.run_id.in_(ids)))
        connection.execute(sa.delete(run_timeline).where(run_timeline.c.run_id.in_(ids)))
        return int(connection.execute(sa.delete(runs).where(runs.c.id.in_(ids))).rowcount)

    def alerts_step(connection: sa.Connection) -> int:
        ids = list(connection.execute(_old_alerts(cutoff).limit(BATCH)).scalars())
        if not ids:
            return 0
        # A kept receipt may name a pruned one in repeat_of (no foreign key): it stays marked a repeat.
        return int(connection.execute(sa.delete(alerts).where(alerts.c.id.in_(ids))).rowcount)

    counts = {"incidents": 0, "runs": 0, "alerts": 0, "messages": 0}
    for kind, step in (("incidents", incidents_step), ("runs", runs_step), ("alerts", alerts_step)):
        while True:
            removed = transaction(step)
            counts[kind] += removed
            if removed < BATCH:
                break
    return Pruned(**counts)
