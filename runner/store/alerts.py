"""Alerts as received: each stored durably with its repeat and its incident, the run it asks for
enqueued and the runs its resolve cancels, all in one transaction; and group commit, so that
concurrent receipts share that transaction and its fsync."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StatementError,
)

from runner.alerts.batch import Batch
from runner.errors import StoreError
from runner.records import Ownership, RunRecord
from runner.store import incidents, queue
from runner.store.queue import Candidate
from runner.store.tables import alerts

DEDUP_WINDOW = timedelta(hours=6)  # longer than Alertmanager's default repeat_interval (4h)
# Built once: SQLAlchemy then reuses their compiled form (intake runs them for every alert).
_LAST_RECEIPT = (
    sa.select(alerts.c.id, alerts.c.status, alerts.c.received_at, alerts.c.repeat_of, alerts.c.incident_id)
    .where(alerts.c.fingerprint == sa.bindparam("fingerprint")).order_by(alerts.c.id.desc()).limit(1)
)
_INSERT_ALERT = sa.insert(alerts).returning(alerts.c.id)


@dataclass(frozen=True)
class StoredAlert:
    """An alert as the store accepted it: its id, and the first receipt it repeats, if any."""

    id: int
    fingerprint: str
    status: str
    repeat_of: int | None
    run: RunRecord | None = None  # the run the alert caused, if any (queued, rejected...)
    canceled: tuple[str, ...] = ()  # runs a resolved alert canceled before they started
    incident_id: str | None = None  # the incident the alert belongs to


@dataclass
class Receipt:
    """One call of record_alerts waiting for its group's commit."""

    batch: Batch
    candidates: tuple[Candidate | None, ...]
    at: datetime
    window: timedelta
    owners: tuple[Ownership | None, ...] = ()
    result: list[StoredAlert] = field(default_factory=list)
    error: StoreError | None = None
    lead: bool = False
    finished: bool = False
    event: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Leader/follower group commit: the first waiting caller commits for everyone waiting.

    The leader takes every pending receipt (its own among them), commits them together, wakes
    their callers, and hands the lead to the oldest receipt still pending, so that no caller
    works for others longer than one commit.
    """

    MAX_GROUP = 64

    def __init__(self, commit: Callable[[list[Receipt]], None]) -> None:
        self._commit = commit
        self._pending: list[Receipt] = []
        self._lock = threading.Lock()
        self._leading = False

    def submit(self, receipt: Receipt) -> None:
        """Return once *receipt* is committed; raise its StoreError when it could not be."""
        with self._lock:
            self._pending.append(receipt)
            if not self._leading:
                self._leading = receipt.lead = True
        while not receipt.finished:
            if receipt.lead:
                self._lead()
            else:
                receipt.event.wait()
        if receipt.error is not None:
            raise receipt.error

    def _lead(self) -> None:
        with self._lock:
            group, self._pending = self._pending[:self.MAX_GROUP], self._pending[self.MAX_GROUP:]
        try:
            self._commit(group)
        except BaseException as e:  # never leave followers waiting forever
            for receipt in group:
                receipt.error = receipt.error or StoreError(f"alerts not stored: {type(e).__name__}")
            raise
        finally:
            for receipt in group:
                receipt.finished = True
                receipt.event.set()
            with self._lock:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    successor.event.set()
                else:
                    self._leading = False


def record_receipt(connection: sa.Connection, receipt: Receipt) -> list[StoredAlert]:
    """Store the alerts of one receipt; enqueue or cancel runs (inside the caller's transaction)."""
    batch, at, candidates = receipt.batch, receipt.at, receipt.candidates
    envelope = {k: v for k, v in batch.raw.items() if k != "alerts"}
    listed = batch.raw.get("alerts")
    raw_alerts: list[Any] = listed if isinstance(listed, list) else [batch.raw]
    stored = []
    for i, alert in enumerate(batch.alerts):
        fingerprint = alert.fingerprint or ""
        previous = connection.execute(_LAST_RECEIPT, {"fingerprint": fingerprint}).mappings().first()
        repeat_of = None
        if previous and previous["status"] == alert.status and at - previous["received_at"] <= receipt.window:
            repeat_of = previous["repeat_of"] or previous["id"]
        raw = {"envelope": envelope, "alert": raw_alerts[i] if i < len(raw_alerts) else None}
        ownership = receipt.owners[i] if i < len(receipt.owners) else None
        incident_id, opened = incidents.join(
            connection, key=incidents.incident_key(batch.source, alert, batch.group_key), alert=alert,
            source=batch.source, repeat=repeat_of is not None, ownership=ownership, at=at,
            seen_in=previous["incident_id"] if previous else None)
        new_id = int(connection.execute(_INSERT_ALERT, dict(
            received_at=at, source=batch.source, fingerprint=fingerprint, status=alert.status,
            group_key=alert.group_key or batch.group_key, alertname=alert.alertname,
            labels=alert.labels, annotations=alert.annotations, starts_at=alert.starts_at,
            ends_at=alert.ends_at, generator_url=alert.generator_url, repeat_of=repeat_of, raw=raw,
            incident_id=incident_id,
        )).scalar_one())
        run: RunRecord | None = None
        canceled: tuple[str, ...] = ()
        candidate = candidates[i] if i < len(candidates) else None
        if repeat_of is None and alert.status == "resolved" and fingerprint:
            canceled = tuple(queue.cancel_for_alert(connection, fingerprint, at))
        elif repeat_of is None and candidate is not None:
            candidate.record.alert_id = new_id
            candidate.record.fingerprint = fingerprint or None
            candidate.record.incident_id = incident_id
            run = queue.enqueue(connection, candidate, at)
        if incident_id is not None:
            incidents.after_alert(connection, incident_id, opened=opened, alert=alert,
                                  repeat=repeat_of is not None, ownership=ownership, run=run, at=at)
        stored.append(StoredAlert(new_id, fingerprint, alert.status, repeat_of, run, canceled, incident_id))
    return stored


def statement_error(error: StoreError) -> bool:
    """True when one statement was refused (bad data), not the database being away or busy."""
    cause = error.__cause__
    return isinstance(cause, (IntegrityError, DataError, ProgrammingError)) or (
        isinstance(cause, StatementError) and not isinstance(cause, (OperationalError, InterfaceError)))
