"""The run queue in SQL: enqueue under history limits, claim, lease, cancel, decide, recover.

Every function here runs inside the caller's write transaction. On PostgreSQL, transactions
that decide about the same runbook or the same alert fingerprint take the same advisory
locks first (in one global order, so they cannot deadlock); on SQLite a write transaction
(BEGIN IMMEDIATE) already excludes every other writer. Either way the count that a limit
compares and the insert of the run it allows happen as one step: 100 alerts at once cannot
all see "2 runs so far" and all enqueue a third.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from runner.catalog.models import Rate
from runner.durations import format_duration
from runner.errors import ConflictError, NotFoundError
from runner.records import PENDING_STATUSES, ReasonKind, RunRecord, RunStatus, TimelineEntry
from runner.store import incidents, wakeup
from runner.store.mapping import run_record, run_row, timeline_row
from runner.store.tables import UTCDateTime, run_steps, run_timeline, runs

LOCK_BUCKETS = 4096
_LOCK_BASE = 0x72756E0000  # our advisory lock ids: clear of the migration lock and of other users'
_LOCK_MANY = sa.text("SELECT pg_advisory_xact_lock(id) FROM unnest(CAST(:ids AS bigint[])) AS id ORDER BY id")
RENEW_TIMEOUT_S = 3.0  # PostgreSQL: a renewal waiting longer fails, so the heartbeat can fence itself in time
MAX_ATTEMPTS = 2  # an idempotent run whose worker died is queued again once, not forever
_ACTIVE = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
_PENDING = [s.value for s in PENDING_STATUSES]


@dataclass(frozen=True)
class Limits:
    """The history limits of a runbook: runs per window, runs at once per target, rest between runs."""

    max_runs: Rate | None = None
    concurrency: int | None = None
    cooldown: timedelta | None = None


@dataclass
class Candidate:
    """A run about to be stored: its record, the params a worker needs, the limits to check."""

    record: RunRecord
    inputs: dict[str, Any] | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Lease:
    """A worker's hold on the runs it claims."""

    worker: str
    until: datetime

    def end(self, connection: sa.Connection) -> Any:
        """When the lease ends, as the value to store: on PostgreSQL by the database's clock.

        Workers on several machines compare leases written by each other; with the times taken
        from the one database clock, a host whose clock is off cannot see a live lease expired.
        The length is what remains of *until* by this host's clock, which only measures a span.
        """
        if connection.dialect.name != "postgresql":
            return self.until  # one machine, one clock
        remaining = max(0.0, (self.until - datetime.now(UTC)).total_seconds())
        return _DB_NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.literal(remaining, sa.Float()))


_DB_NOW = sa.func.clock_timestamp()  # now, not the transaction's start: a lock wait may come first


def _expired(connection: sa.Connection, now: datetime) -> sa.ColumnElement[bool]:
    """True for a run whose lease has ended, by the clock its lease was written with."""
    now_value = _DB_NOW if connection.dialect.name == "postgresql" else sa.literal(now, UTCDateTime())
    return sa.or_(runs.c.lease_until.is_(None), runs.c.lease_until < now_value)


def lock(connection: sa.Connection, keys: Iterable[str]) -> None:
    """Serialise transactions about the same keys (PostgreSQL advisory locks, held to commit)."""
    if connection.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE has already excluded every other writer
    # Keys hash into a fixed set of locks, so one transaction never holds more than LOCK_BUCKETS
    # (PostgreSQL's lock table is shared and finite); a collision only serialises two keys.
    ids = sorted({_LOCK_BASE + int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big")
                  % LOCK_BUCKETS for k in keys})
    if ids:  # one statement, locks taken in ascending order: no two transactions wait in a cycle
        connection.execute(_LOCK_MANY, {"ids": ids})


def runbook_key(name: str) -> str:
    """The lock key of decisions about runbook *name*."""
    return f"runbook:{name}"


def fingerprint_key(fingerprint: str) -> str:
    """The lock key of receipts of one alert fingerprint."""
    return f"alert:{fingerprint}"


def _count(connection: sa.Connection, *where: sa.ColumnElement[bool]) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(runs).where(*where)).scalar_one())


def limit_reason(
    connection: sa.Connection, record: RunRecord, limits: Limits, now: datetime, exclude: str | None = None
) -> tuple[ReasonKind, str] | None:
    """Which limit of the history forbids *record* now and why, or None. Dry runs change nothing
    and are not counted."""
    same = [runs.c.runbook == record.runbook, runs.c.dry_run.is_(False)]
    if exclude is not None:
        same.append(runs.c.id != exclude)
    target = record.target
    if limits.concurrency is not None and target:
        active = _count(connection, *same, runs.c.target == target, runs.c.status.in_(_ACTIVE))
        if active >= limits.concurrency:
            return ReasonKind.CONCURRENCY, (f"concurrency: {active} run(s) of {record.runbook} already "
                                            f"queued or running on {target} (limit {limits.concurrency})")
    if limits.cooldown is not None and target:
        active = _count(connection, *same, runs.c.target == target, runs.c.status.in_(_ACTIVE))
        if active:
            wait = format_duration(limits.cooldown)
            return ReasonKind.COOLDOWN, (f"cooldown: {active} run(s) of {record.runbook} on {target} not "
                                         f"finished yet; the next may start {wait} after the last ends")
        last = connection.execute(
            sa.select(sa.func.max(runs.c.finished_at)).where(
                *same, runs.c.target == target, runs.c.started_at.is_not(None))
        ).scalar()
        if last is not None and now - last < limits.cooldown:
            return ReasonKind.COOLDOWN, (
                f"cooldown: the last run on {target} ended at {last.isoformat(timespec='seconds')}; "
                f"the next may start after {(last + limits.cooldown).isoformat(timespec='seconds')} "
                f"(cooldown {format_duration(limits.cooldown)})")
    if limits.max_runs is not None:
        rate = limits.max_runs
        never_ran = sa.and_(runs.c.status == RunStatus.CANCELED.value, runs.c.started_at.is_(None))
        counted = _count(connection, *same, runs.c.created_at > now - rate.per,
                         runs.c.status != RunStatus.REJECTED.value, sa.not_(never_ran))
        if counted >= rate.count:
            per = format_duration(rate.per)
            return ReasonKind.MAX_RUNS, (f"max_runs: {counted} run(s) of {record.runbook} in the last "
                                         f"{per} (limit {rate.count} per {per})")
    return None


def enqueue(
    connection: sa.Connection, candidate: Candidate, now: datetime, lease: Lease | None = None
) -> RunRecord:
    """Store the candidate's run; a limit the history forbids turns it ``rejected`` first.

    With *lease*, an allowed run is stored already ``running``, held by that worker (the CLI's
    ``runbook run`` executes what it enqueues, and no other worker may take it).
    """
    record = candidate.record
    if record.status in PENDING_STATUSES and not record.dry_run:
        limited = limit_reason(connection, record, candidate.limits, now)
        if limited is not None:
            kind, reason = limited
            timeline = [*record.timeline[:-1], TimelineEntry(now, RunStatus.REJECTED.value, reason)]
            record = replace(record, status=RunStatus.REJECTED, verdict="rejected", reason=reason,
                             reason_kind=kind.value, timeline=timeline)
    row = run_row(record)
    row["inputs"] = candidate.inputs if record.status in PENDING_STATUSES else None
    if lease is not None and record.status is RunStatus.QUEUED:
        claimed = TimelineEntry(now, RunStatus.RUNNING.value, f"claimed by {lease.worker}")
        record = replace(record, status=RunStatus.RUNNING, started_at=now, claimed_by=lease.worker,
                         attempts=1, timeline=[*record.timeline, claimed])
        row.update(status=record.status.value, started_at=now, claimed_by=lease.worker, attempts=1,
                   lease_until=lease.end(connection))
    connection.execute(sa.insert(runs).values(row))
    if record.timeline:
        connection.execute(sa.insert(run_timeline), [timeline_row(record.id, e) for e in record.timeline])
    if record.status is RunStatus.QUEUED:
        wakeup.announce(connection)
    return record


def _note(connection: sa.Connection, run_id: str, now: datetime, event: str, detail: str) -> None:
    """Note an event on the run's timeline, and on its incident's."""
    entry = TimelineEntry(now, event, detail)
    connection.execute(sa.insert(run_timeline).values(timeline_row(run_id, entry)))
    incidents.on_run_status(connection, run_id, event, detail, now)


def _at(now: datetime) -> sa.ColumnElement[datetime]:
    return sa.literal(now, UTCDateTime())


def _finish_values(status: RunStatus, now: datetime) -> dict[str, Any]:
    """Column values of a run entering a final *status*: the secrets in inputs go with it."""
    return {"status": status.value, "finished_at": sa.func.coalesce(runs.c.finished_at, _at(now)),
            "inputs": None, "lease_until": None}


def claim(
    connection: sa.Connection, lease: Lease, now: datetime, run_id: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """Take the oldest queued run (or run *run_id*) for *lease*'s worker: its id and inputs, or None."""
    pick = sa.select(runs.c.id).where(runs.c.status == RunStatus.QUEUED.value)
    if run_id is not None:
        pick = pick.where(runs.c.id == run_id)
    pick = pick.order_by(runs.c.created_at, runs.c.id).limit(1)
    if connection.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)  # other workers take the next one, not wait
    picked = connection.execute(pick).scalar()
    if picked is None:
        return None
    run_id = str(picked)
    taken = connection.execute(
        sa.update(runs).where(runs.c.id == run_id, runs.c.status == RunStatus.QUEUED.value).values(
            status=RunStatus.RUNNING.value, claimed_by=lease.worker, lease_until=lease.end(connection),
            attempts=runs.c.attempts + 1, started_at=sa.func.coalesce(runs.c.started_at, _at(now)),
        ).returning(runs.c.inputs)
    ).first()
    if taken is None:  # compare-and-set lost: another worker took it between select and update
        return None
    _note(connection, run_id, now, RunStatus.RUNNING.value, f"claimed by {lease.worker}")
    return run_id, dict(taken[0] or {})


def renew(connection: sa.Connection, lease: Lease, held: Iterable[str | tuple[str, int]]
          ) -> dict[Any, bool]:
    """Extend the lease on the runs still held; for each, whether a cancel was requested.

    *held* names runs by id, or by (id, attempt): then only that claim of the run counts, so an
    execution whose run was recovered and claimed again, even by this same worker, learns it
    lost the run. The answer has the keys of *held* that are still held.
    """
    keys = list(held)
    if not keys:
        return {}
    if connection.dialect.name == "postgresql":  # a renewal that waits long is worse than one that fails
        connection.execute(sa.text(f"SET LOCAL statement_timeout = '{int(RENEW_TIMEOUT_S * 1000)}ms'"))
    ids = {key if isinstance(key, str) else key[0] for key in keys}
    mine = (runs.c.id.in_(ids), runs.c.claimed_by == lease.worker, runs.c.status == RunStatus.RUNNING.value)
    connection.execute(sa.update(runs).where(*mine).values(lease_until=lease.end(connection)))
    rows = connection.execute(sa.select(runs.c.id, runs.c.attempts, runs.c.cancel_requested).where(*mine))
    state = {(row.id, int(row.attempts)): bool(row.cancel_requested) for row in rows}
    by_id = {run_id: cancel for (run_id, _), cancel in state.items()}
    return {key: (by_id[key] if isinstance(key, str) else state[key]) for key in keys
            if (key in by_id if isinstance(key, str) else key in state)}


def recover(
    connection: sa.Connection, now: datetime, *, idempotent: Callable[[str], bool],
    gone: Callable[[str], bool] = lambda worker: False,
) -> list[tuple[str, RunStatus, int]]:
    """Runs left ``running`` by a worker that stopped renewing (or is known *gone*): id, status, attempt.

    They are recorded ``interrupted``; an idempotent runbook's run is queued again instead,
    once (MAX_ATTEMPTS). Nothing else is ever re-run.
    """
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.runbook, runs.c.claimed_by, runs.c.lease_until, runs.c.attempts,
                  runs.c.cancel_requested, _expired(connection, now).label("expired"))
        .where(runs.c.status == RunStatus.RUNNING.value)
    ).all()
    done: list[tuple[str, RunStatus, int]] = []
    for row in rows:
        expired = bool(row.expired)
        if not expired and not (row.claimed_by and gone(row.claimed_by)):
            continue
        why = f"worker {row.claimed_by or '?'} stopped without finishing the run"
        if row.lease_until is not None:
            why += f" (lease expired {row.lease_until.isoformat(timespec='seconds')})"
        same = [runs.c.id == row.id, runs.c.status == RunStatus.RUNNING.value,
                runs.c.attempts == row.attempts]
        if row.claimed_by is not None:
            same.append(runs.c.claimed_by == row.claimed_by)
        if expired:  # checked again in the update: a renewal that came after the read keeps the run
            same.append(_expired(connection, now))
        values: dict[str, Any]
        if row.cancel_requested:  # someone asked it to stop: it is not run again
            values, status = _finish_values(RunStatus.CANCELED, now), RunStatus.CANCELED
            detail = f"{why}; a cancel had been requested: not run again"
        elif idempotent(row.runbook) and row.attempts < MAX_ATTEMPTS and row.lease_until is not None:
            values = {"status": RunStatus.QUEUED.value, "claimed_by": None, "lease_until": None}
            status, detail = RunStatus.QUEUED, f"{why}; the runbook is idempotent: queued again"
            wakeup.announce(connection)
        else:
            values, status = _finish_values(RunStatus.INTERRUPTED, now), RunStatus.INTERRUPTED
            detail = f"{why}; not re-run (the runbook is not idempotent, or was already retried)"
        if connection.execute(sa.update(runs).where(*same).values(values)).rowcount == 1:
            connection.execute(
                sa.update(run_steps).where(run_steps.c.run_id == row.id, run_steps.c.status == "running")
                .values(status="canceled", message="the worker stopped", finished_at=_at(now))
            )
            _note(connection, row.id, now, status.value, detail)
            done.append((row.id, status, int(row.attempts)))
    return done


def _row(connection: sa.Connection, run_id: str) -> sa.RowMapping:
    """The run's row, locked until commit (PostgreSQL): a claim committing meanwhile is waited for."""
    row = connection.execute(sa.select(runs).where(runs.c.id == run_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFoundError(f"no run {run_id}")
    return row


def request_cancel(connection: sa.Connection, run_id: str, actor: str, now: datetime) -> RunStatus:
    """Cancel a run not started yet; ask the worker of a running one to stop. The status after."""
    row = _row(connection, run_id)
    status = RunStatus(row["status"])
    if status in PENDING_STATUSES:
        done = connection.execute(sa.update(runs).where(runs.c.id == run_id, runs.c.status == status.value)
                                  .values(_finish_values(RunStatus.CANCELED, now)))
        if done.rowcount != 1:  # cannot happen with the row locked; never claim a cancel that did not happen
            raise ConflictError(f"run {run_id} changed while canceling it; look again")
        _note(connection, run_id, now, RunStatus.CANCELED.value, f"canceled by {actor} before it started")
        return RunStatus.CANCELED
    if status is RunStatus.RUNNING:
        if not row["cancel_requested"]:
            connection.execute(sa.update(runs).where(runs.c.id == run_id).values(cancel_requested=True))
            _note(connection, run_id, now, "cancel_requested", f"by {actor}; the worker stops the run")
        return RunStatus.RUNNING
    raise ConflictError(f"run {run_id} is already {status.value}")


def decide(
    connection: sa.Connection, run_id: str, actor: str, approve: bool, limits: Limits, now: datetime,
    reason: str = "",
) -> RunStatus:
    """Approve (-> queued, if the limits allow it now) or reject a run awaiting approval."""
    row = _row(connection, run_id)
    if row["status"] != RunStatus.AWAITING_APPROVAL.value:
        raise ConflictError(f"run {run_id} is {row['status']}, not awaiting approval")
    if approve:
        blocked = None if row["dry_run"] else limit_reason(connection, run_record(row), limits, now,
                                                             exclude=run_id)
        if blocked is not None:
            raise ConflictError(f"run {run_id} cannot start now: {blocked[1]}; it still awaits approval")
        values: dict[str, Any] = {"status": RunStatus.QUEUED.value, "decided_by": actor}
        status, detail = RunStatus.QUEUED, f"approved by {actor}" + (f": {reason}" if reason else "")
    else:
        values = {**_finish_values(RunStatus.REJECTED, now), "decided_by": actor, "verdict": "rejected",
                  "reason": f"rejected by {actor}" + (f": {reason}" if reason else ""),
                  "reason_kind": ReasonKind.APPROVAL.value}
        status, detail = RunStatus.REJECTED, values["reason"]
    done = connection.execute(sa.update(runs).where(
        runs.c.id == run_id, runs.c.status == RunStatus.AWAITING_APPROVAL.value).values(values))
    if done.rowcount != 1:
        raise ConflictError(f"run {run_id} changed while deciding; look again")
    _note(connection, run_id, now, "approved" if approve else "rejected", detail)
    if approve:
        _note(connection, run_id, now, RunStatus.QUEUED.value, "waiting for a worker")
        wakeup.announce(connection)
    return status


def cancel_for_alert(connection: sa.Connection, fingerprint: str, now: datetime) -> list[str]:
    """A resolved alert: cancel its runs that have not started; note it on running ones."""
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.status).where(runs.c.fingerprint == fingerprint,
                                                   runs.c.status.in_([*_PENDING, RunStatus.RUNNING.value]))
        .with_for_update()  # a claim committing meanwhile is waited for, then seen as running
    ).all()
    canceled = []
    for row in rows:
        if row.status == RunStatus.RUNNING.value:
            _note(connection, row.id, now, "alert_resolved", "the alert resolved while the run was running")
            continue
        done = connection.execute(sa.update(runs).where(runs.c.id == row.id, runs.c.status == row.status)
                                  .values(_finish_values(RunStatus.CANCELED, now)))
        if done.rowcount != 1:
            continue
        _note(connection, row.id, now, RunStatus.CANCELED.value, "the alert resolved before the run started")
        canceled.append(row.id)
    return canceled


def queue_depth(connection: sa.Connection) -> dict[str, int]:
    """How many runs wait: queued, and awaiting approval."""
    rows = connection.execute(sa.select(runs.c.status, sa.func.count()).where(runs.c.status.in_(_PENDING))
                              .group_by(runs.c.status)).all()
    counts = {s: 0 for s in _PENDING}
    counts.update({status: int(n) for status, n in rows})
    return counts


def status_counts(connection: sa.Connection) -> list[tuple[str, str, int]]:
    """(runbook, status, runs) for every pair present."""
    rows = connection.execute(sa.select(runs.c.runbook, runs.c.status, sa.func.count())
                              .group_by(runs.c.runbook, runs.c.status)).all()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]
