"""Runs: turn a request (manual or from an alert) into a recorded, bounded execution.

``prepare`` decides everything that needs no history (params, hosts, authority) and yields
the record to store; ``submit`` stores it, the history limits decided in the same
transaction; ``carry_out`` executes an allowed run under a lease and streams every step
into the store. Workers (``runner.runs.worker``) do the same for runs they claim.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runner.alerts.model import Alert
from runner.catalog.gitrev import revision as git_revision
from runner.catalog.models import Catalog, Runbook, Verdict
from runner.errors import NotFoundError, RunbookError, StoreError, UsageError
from runner.records import (
    GitRevision,
    ReasonKind,
    RunRecord,
    RunStatus,
    StepRecord,
    TimelineEntry,
    Trigger,
    target_key,
)
from runner.routing.authority import Decision
from runner.routing.decision import decide_run
from runner.routing.params import redact, redact_alert
from runner.runs.executor import Plan, execute
from runner.store import Store
from runner.store.queue import Candidate, Lease, Limits

_STATUS_OF = {Verdict.ALLOWED: RunStatus.QUEUED, Verdict.REJECTED: RunStatus.REJECTED,
              Verdict.AWAITING_APPROVAL: RunStatus.AWAITING_APPROVAL}
LEASE = timedelta(seconds=15)  # a worker renews every LEASE/3; a run unrenewed this long is abandoned
MIN_LEASE = 3.0  # seconds: below this a database hiccup would make live workers give up their runs


def set_lease(seconds: float) -> None:
    """Set this process's lease time (``--lease``): how long a run survives its worker's silence."""
    global LEASE
    if seconds < MIN_LEASE:
        raise UsageError(f"a lease of {seconds:g}s is too short: at least {MIN_LEASE:g}s")
    LEASE = timedelta(seconds=seconds)


def pid_namespace() -> str:
    """This process's PID namespace (two containers may share a host name, never this)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def worker_id(kind: str = "worker") -> str:
    """A name for this process's worker: ``kind@host:pid:pidns:random``, unique across restarts."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{pid_namespace()}:{uuid.uuid4().hex[:6]}"


def new_lease(worker: str) -> Lease:
    """A lease for *worker* from now."""
    return Lease(worker, datetime.now(UTC) + LEASE)


@dataclass
class Request:
    """A request to run a runbook: by an operator, or for an alert."""

    runbook: str
    trigger: Trigger
    params: Mapping[str, Any] = field(default_factory=dict)
    alert: Alert | None = None
    environment: str | None = None
    dry_run: bool = False
    now: datetime | None = None
    ask_approval: bool = False  # the requester wants a second person to approve, whatever authority says


@dataclass
class Prepared:
    """A decided run: its record, and the plan to execute when it is allowed."""

    record: RunRecord
    decision: Decision
    plan: Plan | None
    params: dict[str, Any] = field(default_factory=dict)  # as resolved, secrets included: never recorded


def limits_of(runbook: Runbook) -> Limits:
    """The history limits of *runbook*."""
    a = runbook.authority
    return Limits(max_runs=a.max_runs, concurrency=a.concurrency, cooldown=a.cooldown)


def _recorded_trigger(runbook: Runbook, request: Request) -> Trigger:
    """The trigger as recorded: the alert's values that feed secret params are redacted."""
    trigger = request.trigger
    if trigger.alert is None or request.alert is None:
        return trigger
    labels, annotations = redact_alert(runbook, request.alert)
    return replace(trigger, alert={**trigger.alert, "labels": labels, "annotations": annotations})


def runbook_named(catalog: Catalog, name: str) -> Runbook:
    """The runbook called *name*, or NotFoundError listing those there are."""
    runbook = catalog.runbooks.get(name)
    if runbook is None:
        have = ", ".join(sorted(catalog.runbooks))
        raise NotFoundError(f"no runbook named {name!r} (have: {have})")
    return runbook


def make_plan(catalog: Catalog, runbook: Runbook, params: Mapping[str, Any], hosts: Sequence[str],
              *, dry_run: bool, run_id: str, attempt: int = 1) -> Plan:
    """The executor's plan, the values of secret params listed for scrubbing."""
    secrets = tuple(str(v) for k, v in params.items() if k in runbook.params and runbook.params[k].secret
                    and str(v))
    return Plan(runbook, dict(params), tuple(hosts), catalog.root, catalog.inventory, dry_run=dry_run,
                run_id=run_id, secrets=secrets, attempt=attempt)


def prepare(catalog: Catalog, request: Request, revision: GitRevision | None = None) -> Prepared:
    """Check params (ParamError names the param and the rule), resolve hosts, decide authority.

    *revision* is the catalog's git revision when the caller knows it (the server reads it
    once per load); otherwise git is asked.
    """
    runbook = runbook_named(catalog, request.runbook)
    assert catalog.policy is not None
    now = request.now or datetime.now(UTC)
    decided = decide_run(catalog, runbook, now, alert=request.alert, given=dict(request.params),
                         environment=request.environment, ask_approval=request.ask_approval,
                         requester=request.trigger.actor)
    params, decision = decided.params, decided.decision
    status = _STATUS_OF[decision.verdict]
    run_id = uuid.uuid4().hex
    record = RunRecord(
        id=run_id, runbook=runbook.name, status=status, trigger=_recorded_trigger(runbook, request),
        revision=revision or git_revision(catalog.root), params=redact(runbook, params),
        hosts=list(decision.hosts), verdict=decision.verdict.value, reason=decision.reason,
        reason_kind=decision.kind.value,
        dry_run=request.dry_run, environment=decision.environment, created_at=now,
        timeline=[TimelineEntry(now, "created", f"by {request.trigger.kind}: {request.trigger.actor}"),
                  TimelineEntry(now, status.value, decision.reason)],
        target=target_key(decision.hosts) if decision.hosts else None,
        fingerprint=request.alert.fingerprint if request.alert is not None else None,
    )
    plan = None
    if decision.verdict is Verdict.ALLOWED:
        plan = make_plan(catalog, runbook, params, decision.hosts, dry_run=request.dry_run, run_id=run_id)
    return Prepared(record, decision, plan, dict(params))


def candidate(catalog: Catalog, prepared: Prepared) -> Candidate:
    """What the store needs to enqueue *prepared*: its record, its inputs, its runbook's limits."""
    runbook = catalog.runbooks[prepared.record.runbook]
    return Candidate(prepared.record, prepared.params, limits_of(runbook))


def submit(store: Store, catalog: Catalog, request: Request, *, lease: Lease | None = None,
           revision: GitRevision | None = None) -> Prepared:
    """Prepare and store a run (queued, rejected or awaiting approval), history limits included:
    what the API does for a manual run.

    With *lease* an allowed run is stored already running, held by the caller, who executes it
    next with :func:`carry_out`.
    """
    return store_prepared(store, catalog, prepare(catalog, request, revision), lease=lease)


def store_prepared(store: Store, catalog: Catalog, prepared: Prepared, *,
                   lease: Lease | None = None) -> Prepared:
    """Store a prepared run; the history limits may reject it only now (then it has no plan)."""
    stored = store.enqueue(candidate(catalog, prepared), lease=lease if prepared.plan else None)
    if stored.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return replace(prepared, record=stored, plan=None)
    return replace(prepared, record=stored)


def run_here(store: Store, catalog: Catalog, prepared: Prepared,
             on_step: Callable[[StepRecord], None] | None = None) -> RunRecord:
    """Store a prepared run and execute it in this process, held under a lease of its own (what
    `runbook run` does); the stored record when authority or the history did not allow it."""
    heartbeat = Heartbeat(store, new_lease(worker_id("cli")))
    stored = store_prepared(store, catalog, prepared, lease=heartbeat.lease)
    if stored.record.status is not RunStatus.RUNNING:
        return stored.record
    heartbeat.start()
    try:
        return carry_out(store, stored, on_step=on_step, heartbeat=heartbeat)
    finally:
        heartbeat.stop()


class Heartbeat:
    """Renews a lease while runs execute; sets a run's cancel event when asked to stop it.

    A run the store no longer shows as held by this worker (recovered by another after a
    long stall) is stopped too: two workers must never execute one run.
    """

    def __init__(self, store: Store, lease: Lease, interval: float | None = None) -> None:
        self.store = store
        self.lease = lease
        self.interval = interval if interval is not None else LEASE.total_seconds() / 3
        self._runs: dict[tuple[str, int], threading.Event] = {}  # by claim: run id and attempt
        self._lock = threading.Lock()
        self._renewed = time.monotonic()  # last time the store confirmed the lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Start renewing."""
        self._thread.start()
        return self

    def hold(self, run_id: str, attempt: int, cancel: threading.Event) -> None:
        """Renew the lease on this claim of *run_id*; set *cancel* when the run must stop."""
        with self._lock:
            self._runs[(run_id, attempt)] = cancel

    def release(self, run_id: str, attempt: int) -> None:
        """Stop renewing this claim of *run_id* (it ended)."""
        with self._lock:
            self._runs.pop((run_id, attempt), None)

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def beat(self) -> None:
        """Renew once, now."""
        with self._lock:
            held = dict(self._runs)
        if not held:
            self._renewed = time.monotonic()
            return
        lease = new_lease(self.lease.worker)
        try:
            state = self.store.renew(lease, held)
        except StoreError:
            # The store is away. The lease outlives a few missed beats; past that, another worker
            # may take the runs over, so stop them here first: a run must never execute twice.
            if time.monotonic() - self._renewed > LEASE.total_seconds() - self.interval:
                for event in held.values():
                    event.set()
            return
        self.lease, self._renewed = lease, time.monotonic()
        for claim, event in held.items():
            if state.get(claim, True):  # a cancel request, or no longer ours
                event.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()


def carry_out(
    store: Store,
    prepared: Prepared,
    *,
    on_step: Callable[[StepRecord], None] | None = None,
    cancel: threading.Event | None = None,
    shutdown: threading.Event | None = None,
    work_dir: Path | None = None,
    heartbeat: Heartbeat | None = None,
    attempt: int | None = None,
) -> RunRecord:
    """Execute an allowed, stored run under a lease; record every step and the outcome.

    A run still queued is claimed first (compare-and-set: if a worker took it, RunbookError).
    When *shutdown* is set as well as *cancel*, the run ends ``interrupted``, not ``canceled``.
    """
    plan = prepared.plan
    run_id = prepared.record.id
    if plan is None:
        raise RunbookError(f"run {run_id} is {prepared.record.status.value}, not allowed to execute")
    own = heartbeat is None
    beat = heartbeat or Heartbeat(store, new_lease(worker_id("cli"))).start()
    if prepared.record.status is RunStatus.QUEUED and store.claim(beat.lease, run_id=run_id) is None:
        if own:
            beat.stop()
        raise RunbookError(f"run {run_id} was taken by another worker")
    if attempt is None:  # the claim this execution holds: what fences it off from a later one
        claimed = store.get_run(run_id)
        attempt = claimed.attempts if claimed is not None else 1
    stop = cancel or threading.Event()
    beat.hold(run_id, attempt, stop)
    try:
        return _execute(store, plan, run_id, on_step, stop, shutdown, work_dir, (beat.lease.worker, attempt))
    finally:
        beat.release(run_id, attempt)
        if own:
            beat.stop()


def _execute(store: Store, plan: Plan, run_id: str, on_step: Callable[[StepRecord], None] | None,
             cancel: threading.Event, shutdown: threading.Event | None, work_dir: Path | None,
             holder: tuple[str, int]) -> RunRecord:
    worker, attempt = holder
    if plan.dry_run:
        store.add_timeline(run_id, "dry_run", "check mode: nothing is changed")
    unsaved: dict[tuple[int, str], StepRecord] = {}

    def step_seen(step: StepRecord) -> None:
        # Recording must never stop a run half way: a step that cannot be saved now is saved at the end.
        try:
            store.save_step(run_id, step, worker=worker, attempt=attempt)
            unsaved.pop((step.index, step.host), None)
        except StoreError:
            unsaved[(step.index, step.host)] = step
        if on_step is not None:
            on_step(step)

    try:
        outcome = execute(plan, on_step=step_seen, cancel=cancel, work_dir=work_dir)
    except Exception as e:
        store.set_status(run_id, RunStatus.FAILED, detail=f"executor error: {type(e).__name__}: {e}",
                         worker=worker, attempt=attempt)
        raise
    except BaseException as e:  # Ctrl-C, SystemExit: the run did not finish, and must not look running
        store.set_status(run_id, RunStatus.INTERRUPTED, detail=f"interrupted: {type(e).__name__}",
                         worker=worker, attempt=attempt)
        raise
    status, message = outcome.status, outcome.message
    if status is RunStatus.CANCELED and shutdown is not None and shutdown.is_set():
        status, message = RunStatus.INTERRUPTED, "the worker shut down and its grace period ended"
    _record_outcome(store, run_id, list(unsaved.values()), status, message, holder)
    final = store.get_run(run_id)
    assert final is not None
    return final


def _record_outcome(store: Store, run_id: str, unsaved: list[StepRecord], status: RunStatus, message: str,
                    holder: tuple[str, int]) -> None:
    """Save what is left and the final status; through a short store outage, keep trying.

    The heartbeat keeps the lease meanwhile (and stops trying to, so that recovery can act, if
    the outage outlasts it); the outcome of a run that did execute is never silently lost.
    """
    delay, deadline = 0.5, time.monotonic() + LEASE.total_seconds()
    while True:
        try:
            worker, attempt = holder
            for step in unsaved:
                store.save_step(run_id, step, worker=worker, attempt=attempt)
            store.set_status(run_id, status, detail=message, worker=worker, attempt=attempt)
            return
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def stored_prepared(catalog: Catalog, record: RunRecord, inputs: Mapping[str, Any]) -> Prepared:
    """A claimed run as the executor needs it, from the record and the inputs kept with it.

    RunbookError when the active catalog no longer has the runbook or its params changed.
    """
    runbook = catalog.runbooks.get(record.runbook)
    if runbook is None:
        raise RunbookError(f"runbook {record.runbook} is not in the active catalog any more")
    missing = sorted(n for n, p in runbook.params.items()
                     if p.required and p.default is None and n not in inputs)
    if missing:
        raise RunbookError(f"the runbook's params changed since the run was queued: no value for "
                           f"{', '.join(missing)}")
    plan = make_plan(catalog, runbook, inputs, record.hosts, dry_run=record.dry_run, run_id=record.id,
                     attempt=max(record.attempts, 1))
    decision = Decision(Verdict.ALLOWED, record.reason, ReasonKind(record.reason_kind or ReasonKind.ALLOWED),
                        tuple(record.hosts), record.environment)
    return Prepared(record, decision, plan, dict(inputs))
