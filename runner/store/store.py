"""The run store: runs, their steps and their timelines, in SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from runner.alerts.batch import Batch
from runner.errors import NotFoundError, StoreError, UsageError
from runner.records import (
    FINAL_STATUSES,
    GitRevision,
    Incident,
    IncidentStatus,
    Ownership,
    RunRecord,
    RunStatus,
    StepRecord,
    TimelineEntry,
)
from runner.store import escalation, incidents, queue, reporting, retention
from runner.store.alerts import (
    DEDUP_WINDOW,
    GroupCommit,
    Receipt,
    StoredAlert,
    record_receipt,
    statement_error,
)
from runner.store.connection import Connected
from runner.store.mapping import run_record, run_row, step_row, timeline_row
from runner.store.queue import Candidate, Lease, Limits
from runner.store.reporting import ReportRows
from runner.store.tables import UTCDateTime, alerts, run_steps, run_timeline, runs

MIN_PREFIX = 6  # characters of a run id that may stand for the whole id, as with git short SHAs
_SHOWN_MATCHES = 5  # ids named in an "ambiguous prefix" error

_STEP_KEY = ("run_id", "idx", "host")
_STATUS_VALUES = [status.value for status in RunStatus]
_FINAL_VALUES = [status.value for status in FINAL_STATUSES]


class Store(Connected):
    """Runs, steps and timelines in one database; one engine, one transaction per write.

    ``display_url`` is the URL with its password masked, for messages and logs.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._group = GroupCommit(self._commit_receipts)

    def create_run(self, record: RunRecord) -> None:
        """Insert a new run with its steps and timeline (created_at defaults to now)."""
        with self._write(f"cannot create run {record.id}") as connection:
            connection.execute(sa.insert(runs).values(run_row(record)))
            if record.steps:
                connection.execute(sa.insert(run_steps), [step_row(record.id, s) for s in record.steps])
            if record.timeline:
                rows = [timeline_row(record.id, entry) for entry in record.timeline]
                connection.execute(sa.insert(run_timeline), rows)

    def set_status(
        self, run_id: str, status: RunStatus, *, detail: str = "", at: datetime | None = None,
        worker: str | None = None, attempt: int | None = None,
    ) -> bool:
        """Move a run to *status*, stamping started/finished times once, and note it on the timeline.

        A run already in a final state stays there (a worker that lost its lease must not
        overwrite ``interrupted``): then nothing changes and the answer is False. With *worker*,
        only while that worker holds the run (another may have taken it over since); with
        *attempt* too, only while it holds that claim of it.
        """
        at = at or datetime.now(UTC)
        values: dict[str, Any] = {"status": status.value}
        if status is RunStatus.RUNNING:
            values["started_at"] = sa.func.coalesce(runs.c.started_at, sa.literal(at, UTCDateTime()))
        if status.final:
            values["finished_at"] = sa.func.coalesce(runs.c.finished_at, sa.literal(at, UTCDateTime()))
            values["inputs"] = None  # the params a worker needed, secrets included, go with the run
            values["lease_until"] = None
        with self._write(f"cannot set the status of run {run_id}") as connection:
            open_run = [runs.c.id == run_id, runs.c.status.not_in(_FINAL_VALUES), *_fence(worker, attempt)]
            result = connection.execute(sa.update(runs).where(*open_run).values(values))
            if result.rowcount != 1:
                if connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                    raise StoreError(f"no run {run_id}")
                return False
            entry = TimelineEntry(at=at, event=status.value, detail=detail)
            connection.execute(sa.insert(run_timeline).values(timeline_row(run_id, entry)))
            incidents.on_run_status(connection, run_id, status.value, detail, at)
            return True

    def save_step(self, run_id: str, step: StepRecord, *, worker: str | None = None,
                  attempt: int | None = None) -> None:
        """Insert the step, or update it when the run already has one at this index and host.

        With *worker* (and *attempt*), only while that worker holds (that claim of) the running run.
        """
        row = step_row(run_id, step)
        with self._write(f"cannot save step {step.index} on {step.host} of run {run_id}") as connection:
            if worker is not None and connection.execute(sa.select(runs.c.id).where(
                    runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value,
                    *_fence(worker, attempt))).first() is None:
                return
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(run_steps).values(row)
            changes = {name: statement.excluded[name] for name in row if name not in _STEP_KEY}
            connection.execute(statement.on_conflict_do_update(index_elements=_STEP_KEY, set_=changes))

    def set_revision(self, run_id: str, revision: GitRevision) -> None:
        """Record the catalog revision that executes the run (a reload may follow the enqueue)."""
        commit = revision.commit or "no git"
        with self._write(f"cannot set the revision of run {run_id}") as connection:
            connection.execute(sa.update(runs).where(runs.c.id == run_id)
                               .values(git_commit=revision.commit, git_dirty=revision.dirty))
            entry = TimelineEntry(datetime.now(UTC), "revision", f"executing catalog revision {commit}")
            connection.execute(sa.insert(run_timeline).values(timeline_row(run_id, entry)))

    def add_timeline(self, run_id: str, event: str, detail: str = "", at: datetime | None = None) -> None:
        """Append an event to the timeline of a run."""
        entry = TimelineEntry(at=at or datetime.now(UTC), event=event, detail=detail)
        with self._write(f"cannot add to the timeline of run {run_id}") as connection:
            connection.execute(sa.insert(run_timeline).values(timeline_row(run_id, entry)))

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id or unique id prefix (>= 6 characters), steps and timeline included."""
        with self._read(f"cannot read run {run_id}") as connection:
            row = self._find(connection, run_id)
            if row is None:
                return None
            steps = connection.execute(
                sa.select(run_steps)
                .where(run_steps.c.run_id == row["id"])
                .order_by(run_steps.c.idx, _code_point_order(run_steps.c.host, connection))
            )
            timeline = connection.execute(
                sa.select(run_timeline).where(run_timeline.c.run_id == row["id"]).order_by(run_timeline.c.id)
            )
            return run_record(row, steps.mappings().all(), timeline.mappings().all())

    def list_runs(
        self,
        *,
        runbook: str | None = None,
        status: str | Collection[str] | None = None,
        since: datetime | None = None,
        limit: int | None = 50,
    ) -> list[RunRecord]:
        """Runs newest first, without steps or timeline.

        *status* is one status or several (RunStatus or its value); *since* includes runs created then.
        """
        query = sa.select(runs)
        if runbook is not None:
            query = query.where(runs.c.runbook == runbook)
        if status is not None:
            query = query.where(runs.c.status.in_(_statuses(status)))
        if since is not None:
            query = query.where(runs.c.created_at >= since)
        with self._read("cannot list runs") as connection:
            query = query.order_by(runs.c.created_at.desc(), _code_point_order(runs.c.id, connection).desc())
            if limit is not None:
                query = query.limit(limit)
            return [run_record(row) for row in connection.execute(query).mappings()]

    def record_alerts(
        self,
        batch: Batch,
        *,
        candidates: Sequence[Candidate | None] = (),
        owners: Sequence[Ownership | None] = (),
        received_at: datetime | None = None,
        window: timedelta = DEDUP_WINDOW,
    ) -> list[StoredAlert]:
        """Store every alert of *batch* durably and act on it, in one transaction.

        An alert repeats an earlier one when the last receipt of the same fingerprint had the
        same status and came within *window*: the sender re-notifying, not a new problem. A new
        firing alert enqueues its candidate run (``candidates[i]`` for ``batch.alerts[i]``),
        under the runbook's history limits; a new resolved alert cancels its runs not started.
        Every alert joins the open incident of its group (or fingerprint); a firing alert opens
        one if there is none, owned as ``owners[i]`` says; the last resolve resolves it.

        Calls from concurrent threads share a transaction (group commit): one commit, one
        fsync, for every batch waiting at that moment; each returns only after that commit.
        """
        receipt = Receipt(batch, tuple(candidates), received_at or datetime.now(UTC), window, tuple(owners))
        self._group.submit(receipt)
        return receipt.result

    def _commit_receipts(self, group: list[Receipt]) -> None:
        """Store *group* in one transaction; if that fails, each alone (one bad batch fails alone)."""
        try:
            self._store_receipts(group)
        except StoreError as e:
            if len(group) == 1 or not statement_error(e):  # the database is away: all fail at once
                for receipt in group:
                    receipt.error = e
                return
            for receipt in group:
                try:
                    self._store_receipts([receipt])
                except StoreError as alone:
                    receipt.error = alone

    def _store_receipts(self, group: list[Receipt]) -> None:
        keys = [queue.fingerprint_key(a.fingerprint or "") for r in group for a in r.batch.alerts]
        keys += [queue.runbook_key(c.record.runbook) for r in group for c in r.candidates if c is not None]
        keys += [incidents.incident_lock_key(incidents.incident_key(r.batch.source, a, r.batch.group_key))
                 for r in group for a in r.batch.alerts]
        n = sum(len(r.batch.alerts) for r in group)
        sources = ", ".join(sorted({r.batch.source for r in group}))
        with self._write(f"cannot store {n} alert(s) from {sources}") as connection:
            queue.lock(connection, keys)
            results = [record_receipt(connection, receipt) for receipt in group]
        for receipt, result in zip(group, results, strict=True):  # only once committed
            receipt.result = result

    def enqueue(
        self, candidate: Candidate, *, lease: Lease | None = None, now: datetime | None = None
    ) -> RunRecord:
        """Store a run (manual), deciding its history limits in the same transaction."""
        at = now or candidate.record.created_at or datetime.now(UTC)
        with self._write(f"cannot enqueue run {candidate.record.id}") as connection:
            queue.lock(connection, [queue.runbook_key(candidate.record.runbook)])
            return queue.enqueue(connection, candidate, at, lease)

    def claim(self, lease: Lease, *, run_id: str | None = None) -> tuple[str, dict[str, Any]] | None:
        """The oldest queued run (or *run_id*), now running and held by *lease*: id and inputs, or None."""
        with self._write("cannot claim a run") as connection:
            return queue.claim(connection, lease, datetime.now(UTC), run_id)

    def renew(self, lease: Lease, held: Iterable[str | tuple[str, int]]) -> dict[Any, bool]:
        """Extend *lease* on the runs (ids or (id, attempt)) still held: each, with its cancel request."""
        with self._write("cannot renew the lease") as connection:
            return queue.renew(connection, lease, held)

    def recover(self, *, idempotent: Callable[[str], bool],
                gone: Callable[[str], bool] = lambda worker: False) -> list[tuple[str, RunStatus, int]]:
        """Record ``interrupted`` (or queue again, if idempotent) the runs of dead workers."""
        with self._write("cannot recover abandoned runs") as connection:
            return queue.recover(connection, datetime.now(UTC), idempotent=idempotent, gone=gone)

    def request_cancel(self, run_id: str, actor: str) -> RunStatus:
        """Cancel a run not yet started, or ask its worker to stop it; the status after."""
        with self._write(f"cannot cancel run {run_id}") as connection:
            return queue.request_cancel(connection, run_id, actor, datetime.now(UTC))

    def decide(self, run_id: str, actor: str, *, approve: bool, limits: Limits | None = None,
               reason: str = "") -> RunStatus:
        """Approve or reject a run awaiting approval; the status after."""
        with self._write(f"cannot decide run {run_id}") as connection:
            row = connection.execute(sa.select(runs.c.runbook).where(runs.c.id == run_id)).first()
            if row is not None:
                queue.lock(connection, [queue.runbook_key(row.runbook)])
            return queue.decide(connection, run_id, actor, approve, limits or Limits(), datetime.now(UTC),
                                reason)

    def queue_depth(self) -> dict[str, int]:
        """Runs waiting: queued, and awaiting approval."""
        with self._read("cannot read the queue depth") as connection:
            return queue.queue_depth(connection)

    def status_counts(self) -> list[tuple[str, str, int]]:
        """(runbook, status, number of runs) for every pair present."""
        with self._read("cannot count runs") as connection:
            return queue.status_counts(connection)

    def acknowledge(self, incident_id: str, actor: str) -> Incident:
        """open -> acknowledged by *actor*; the incident after."""
        with self._write(f"cannot acknowledge incident {incident_id}") as connection:
            found = incidents.find(connection, incident_id)
            if found is None:
                raise NotFoundError(f"no incident {incident_id}")
            incidents.acknowledge(connection, found.id, actor, datetime.now(UTC))
        return self._incident(found.id)

    def resolve_incident(self, incident_id: str, actor: str, reason: str = "") -> Incident:
        """Resolve by hand; the incident after."""
        with self._write(f"cannot resolve incident {incident_id}") as connection:
            found = incidents.find(connection, incident_id)
            if found is None:
                raise NotFoundError(f"no incident {incident_id}")
            incidents.resolve_by_hand(connection, found.id, actor, datetime.now(UTC), reason)
        return self._incident(found.id)

    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident (id or unique prefix of 6+) with timeline, alerts and runs."""
        with self._read(f"cannot read incident {incident_id}") as connection:
            return incidents.find(connection, incident_id)

    def _incident(self, incident_id: str) -> Incident:
        found = self.get_incident(incident_id)
        assert found is not None
        return found

    def list_incidents(self, *, status: str | Collection[str] | None = None, team: str | None = None,
                       since: datetime | None = None, limit: int | None = 50) -> list[Incident]:
        """Incidents newest first, without their timelines."""
        values = [status] if isinstance(status, str) else list(status or [])
        known = [s.value for s in IncidentStatus]
        for value in values:
            if value not in known:
                raise UsageError(f"unknown incident status {value!r} (one of: {', '.join(known)})")
        with self._read("cannot list incidents") as connection:
            return incidents.listing(connection, status=values or None, team=team, since=since, limit=limit)

    def last_events(self, incident_ids: Collection[str]) -> dict[str, TimelineEntry]:
        """The latest timeline entry of each incident (a listing's "last event" column)."""
        with self._read("cannot read incident timelines") as connection:
            return incidents.last_events(connection, incident_ids)

    def incident_context(self, incident_id: str) -> dict[str, Any]:
        """The incident's escalation state and the context bundle an escalation would carry now."""
        with self._read(f"cannot read the context of incident {incident_id}") as connection:
            return escalation.context_of(connection, incident_id)

    def report_rows(self, since: datetime) -> ReportRows:
        """What ``runbook report`` sums up: the incidents opened since *since*, escalations, approvals."""
        with self._read("cannot read the report") as connection:
            return reporting.report_rows(connection, since)

    def fire_due_escalations(self, now: datetime | None = None) -> list[tuple[str, list[str]]]:
        """Fire every escalation level that is due, once each: (incident id, targets) of those fired."""
        at = now or datetime.now(UTC)
        fired = []
        with self._read("cannot read escalations") as connection:
            due = escalation.due(connection, at)
        for row in due:
            with self._write(f"cannot escalate incident {row['incident_id']}") as connection:
                queue.lock(connection, [f"escalation:{row['incident_id']}"])
                targets = escalation.fire(connection, row, at, dict(row["context"]))
            if targets is not None:
                fired.append((str(row["incident_id"]), targets))
        return fired

    def claim_messages(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Outbox messages due now, claimed for delivery (the oldest of each channel)."""
        with self._write("cannot claim messages") as connection:
            return escalation.claim_messages(connection, now or datetime.now(UTC))

    def message_delivered(self, message_id: int) -> None:
        """Mark an outbox message sent."""
        with self._write(f"cannot mark message {message_id} sent") as connection:
            escalation.delivered(connection, message_id, datetime.now(UTC))

    def message_failed(self, message_id: int, attempts: int, reason: str, *, retryable: bool,
                       now: datetime | None = None) -> str:
        """Retry later (backoff) or make a dead letter; the status after."""
        with self._write(f"cannot mark message {message_id} failed") as connection:
            at = now or datetime.now(UTC)
            return escalation.failed(connection, message_id, attempts, reason, retryable, at)

    def message_skipped(self, message_id: int, attempts: int, reason: str, *,
                        now: datetime | None = None) -> str:
        """Record a message whose channel is not configured as skipped, never sent; the status after."""
        with self._write(f"cannot mark message {message_id} skipped") as connection:
            return escalation.skipped(connection, message_id, attempts, reason, now or datetime.now(UTC))

    def outbox_counts(self) -> list[tuple[str, str, int]]:
        """(channel, status, number of messages) for every pair in the outbox."""
        with self._read("cannot count the outbox") as connection:
            return escalation.outbox_counts(connection)

    def outbox(self, incident_id: str | None = None) -> list[dict[str, Any]]:
        """The outbox (of one incident), oldest first."""
        with self._read("cannot read the outbox") as connection:
            return escalation.messages(connection, incident_id)

    def prune(self, older_than: timedelta, *, dry_run: bool = False) -> retention.Pruned:
        """Delete finished runs, resolved incidents, loose alerts older than *older_than*; or count them."""
        cutoff = datetime.now(UTC) - older_than
        if dry_run:
            with self._read("cannot count what to prune") as connection:
                return retention.count(connection, cutoff)

        def transaction(step: Callable[[sa.Connection], int]) -> int:
            with self._write("cannot prune") as connection:
                return step(connection)

        return retention.prune(transaction, cutoff)

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        with self._read("the database does not answer") as connection:
            connection.execute(sa.select(1))

    def count_alerts(self, *, fingerprint: str | None = None, repeats: bool | None = None) -> int:
        """How many alerts are stored (of one fingerprint; only repeats, or only first receipts)."""
        query = sa.select(sa.func.count()).select_from(alerts)
        if fingerprint is not None:
            query = query.where(alerts.c.fingerprint == fingerprint)
        if repeats is not None:
            query = query.where(alerts.c.repeat_of.is_not(None) if repeats else alerts.c.repeat_of.is_(None))
        with self._read("cannot count alerts") as connection:
            return int(connection.execute(query).scalar_one())

    def _find(self, connection: sa.Connection, run_id: str) -> sa.RowMapping | None:
        """The runs row with this id, or else the only one it is a long enough prefix of."""
        row = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is not None or len(run_id) < MIN_PREFIX:
            return row
        # substr, not LIKE: LIKE ignores case on SQLite and treats _ and % as wildcards.
        prefix = sa.func.substr(runs.c.id, 1, len(run_id)) == run_id
        query = sa.select(runs).where(prefix).order_by(runs.c.id).limit(_SHOWN_MATCHES + 1)
        rows = connection.execute(query).mappings().all()
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:_SHOWN_MATCHES])
            more = ", ..." if len(rows) > _SHOWN_MATCHES else ""
            raise UsageError(f"run id prefix {run_id!r} is ambiguous: {shown}{more}; give more characters")
        return rows[0] if rows else None


def _fence(worker: str | None, attempt: int | None) -> list[sa.ColumnElement[bool]]:
    """The conditions of a write that only the holder of the run (that claim of it) may make."""
    conditions = [] if worker is None else [runs.c.claimed_by == worker]
    if attempt is not None:
        conditions.append(runs.c.attempts == attempt)
    return conditions


def _statuses(status: str | Collection[str]) -> list[str]:
    """The values of one status or several, each checked."""
    values = [status] if isinstance(status, str) else list(status)
    for value in values:
        if value not in _STATUS_VALUES:
            raise UsageError(f"unknown run status {value!r} (one of: {', '.join(_STATUS_VALUES)})")
    return [str(value) for value in values]


def _code_point_order(column: sa.ColumnElement[str], connection: sa.Connection) -> sa.ColumnElement[str]:
    """Sort text by code point on PostgreSQL too, as SQLite does, whatever the database locale."""
    return column.collate("C") if connection.dialect.name == "postgresql" else column
