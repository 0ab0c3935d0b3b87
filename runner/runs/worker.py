"""Workers: claim queued runs from the store and execute them, under a lease.

A worker thread loops: recover runs abandoned by dead workers, claim the oldest queued run
(compare-and-set, SKIP LOCKED on PostgreSQL), execute it with the active catalog, record
every step. Idle threads wait for a wake-up: LISTEN/NOTIFY on PostgreSQL (a run queued by any
process on any machine), in memory for runs queued in this process, and a poll as the fallback.
One heartbeat per pool renews the lease of every run it holds and relays cancel requests.
``stop()`` stops claiming; running runs get a grace period, then are stopped and recorded
``interrupted``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from runner.catalog.live import CatalogHolder, Loaded
from runner.errors import RunbookError, StoreError
from runner.notify.escalator import Escalator, report_channels
from runner.records import RunRecord, RunStatus
from runner.runs import reaper
from runner.runs.executor import MARKER_VAR
from runner.runs.lifecycle import (
    LEASE,
    Heartbeat,
    carry_out,
    new_lease,
    pid_namespace,
    set_lease,
    stored_prepared,
    worker_id,
)
from runner.store import Store

log = logging.getLogger("runner.worker")
POLL_INTERVAL = 0.2  # seconds between claims while the queue is empty and nothing else wakes us
LISTEN_POLL_INTERVAL = 2.0  # the same while LISTEN is up: only a safety net, so the database rests
RECOVER_INTERVAL = 5.0  # seconds between sweeps for runs of dead workers
DEFAULT_GRACE = 30.0  # seconds running runs get to finish on shutdown


def _local_gone(worker: str) -> bool:
    """True when *worker* ran on this host, in this PID namespace, in a process that no longer exists."""
    parts = worker.partition("@")[2].split(":")
    if len(parts) != 4:
        return False
    host, pid, namespace, _ = parts
    if host != socket.gethostname() or namespace != pid_namespace() or not pid.isdigit() \
            or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class WorkerPool:
    """*size* worker threads over one store, executing with whatever catalog is active."""

    def __init__(
        self,
        store: Store,
        active: Callable[[], Loaded],
        *,
        size: int = 1,
        grace: float = DEFAULT_GRACE,
        poll: float = POLL_INTERVAL,
        listen: bool = True,
        listen_poll: float = LISTEN_POLL_INTERVAL,
        on_finish: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.active = active
        self.size = size
        self.grace = grace
        self.poll = poll
        self.listen_poll = max(poll, listen_poll)
        self.on_finish = on_finish
        self.name = worker_id()
        self.heartbeat = Heartbeat(store, new_lease(self.name))
        self._stopping = threading.Event()  # stop claiming
        self._wake = threading.Event()  # a run was queued in this process: claim now, not at the next poll
        self._shutdown = threading.Event()  # grace ended: stop running runs as interrupted
        self._cancels: dict[int, threading.Event] = {}  # one per execution (a run may be claimed again)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._last_sweep = 0.0
        self.listener = store.listener(self.notify) if listen else None

    def start(self) -> WorkerPool:
        """Recover what dead workers left, then start the threads."""
        self.recover()
        self.heartbeat.start()
        if self.listener is not None:
            self.listener.start()
        for i in range(self.size):
            thread = threading.Thread(target=self._loop, name=f"worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("%d worker(s) started as %s", self.size, self.name)
        return self

    def recover(self) -> None:
        """Record ``interrupted`` (or queue again, if idempotent) the runs of dead workers."""
        self._last_sweep = time.monotonic()
        try:
            catalog = self.active().catalog
            done = self.store.recover(
                idempotent=lambda name: name in catalog.runbooks and catalog.runbooks[name].idempotent,
                gone=_local_gone)
        except RunbookError as e:  # the store is away, or no catalog is loaded yet
            log.warning("cannot recover abandoned runs: %s", e)
            return
        for run_id, status, attempt in done:
            # Its ansible processes may outlive the dead worker on this host: stop them (the marker
            # names the attempt, so a new attempt of the same run is never hit).
            killed = reaper.reap(MARKER_VAR, f"{run_id}.{attempt}")
            log.warning("run %s of a dead worker recorded %s (%d orphan process(es) killed)", run_id,
                        status.value, killed)

    def notify(self) -> None:
        """A run was queued: an idle worker claims it now (others find it at their next poll)."""
        self._wake.set()

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let running runs finish within *grace* seconds, then interrupt them."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + max(self.grace if grace is None else grace, self.poll + 0.5)
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        for thread in self._threads:  # idle threads leave within one poll interval
            thread.join(timeout=max(0.0, deadline - time.monotonic()) if not self.busy else 0)
        if self.busy:
            log.warning("grace period over: interrupting the runs still executing")
            self._shutdown.set()
            with self._lock:
                for event in self._cancels.values():
                    event.set()
            for thread in self._threads:
                thread.join(timeout=30)
        if self.listener is not None:
            self.listener.stop()
        self.heartbeat.stop()

    @property
    def busy(self) -> int:
        """Runs executing now."""
        with self._lock:
            return len(self._cancels)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if time.monotonic() - self._last_sweep > RECOVER_INTERVAL:
                self.recover()
            try:
                worked = self.run_one()
            except Exception:  # a worker thread must survive any one run
                log.exception("worker error")
                worked = False
            if not worked:
                self._wake.wait(self.idle_wait)
                self._wake.clear()

    @property
    def wakeup(self) -> str:
        """How idle threads learn of new runs, for the start-up message."""
        if self.listener is None:
            return f"polling every {self.poll:g}s"
        return f"LISTEN/NOTIFY, polling every {self.listen_poll:g}s as a fallback"

    @property
    def idle_wait(self) -> float:
        """Seconds an idle thread waits before it polls: longer while LISTEN wakes it."""
        listening = self.listener is not None and self.listener.listening.is_set()
        return self.listen_poll if listening else self.poll

    def run_one(self) -> bool:
        """Claim and execute one queued run; False when none waits (or the store is away)."""
        lease = new_lease(self.name)
        try:
            claimed = self.store.claim(lease)
        except StoreError as e:
            log.warning("cannot claim: %s", e)
            return False
        if claimed is None:
            return False
        run_id, inputs = claimed
        cancel = threading.Event()
        with self._lock:
            self._cancels[id(cancel)] = cancel
        try:
            self._execute(run_id, inputs, cancel)
        finally:
            with self._lock:
                self._cancels.pop(id(cancel), None)
        return True

    def _execute(self, run_id: str, inputs: dict[str, object], cancel: threading.Event) -> None:
        record = self.store.get_run(run_id)
        assert record is not None
        try:
            active = self.active()
            prepared = stored_prepared(active.catalog, record, inputs)
        except RunbookError as e:
            self.store.set_status(run_id, RunStatus.FAILED, detail=str(e))
            log.error("run %s failed before it started: %s", run_id, e)
            return
        if active.revision != record.revision:  # reloaded between enqueue and claim: say what ran
            self.store.set_revision(run_id, active.revision)
        started = datetime.now(UTC)
        log.info("run %s (%s on %s) started", run_id, record.runbook, ", ".join(record.hosts))
        final = carry_out(self.store, prepared, cancel=cancel, shutdown=self._shutdown,
                          heartbeat=self.heartbeat, attempt=record.attempts)
        log.info("run %s ended %s after %.1fs", run_id, final.status.value,
                 (datetime.now(UTC) - started).total_seconds())
        if self.on_finish is not None:
            self.on_finish(final)


@dataclass(frozen=True)
class WorkerSettings:
    """How a process's workers claim and execute runs (`runbook worker` / `serve` options)."""

    size: int = 1
    grace: float = DEFAULT_GRACE
    listen: bool = True  # PostgreSQL LISTEN/NOTIFY wakes idle workers
    poll: float = POLL_INTERVAL  # seconds between polls while nothing wakes them
    lease: float = LEASE.total_seconds()


class Workers:
    """A process's workers and its escalator, started together and stopped in order: the life
    cycle `runbook worker` runs alone and `runbook serve` beside its HTTP server.

    Used as a context manager: started on entry; on exit the pool stops claiming (running runs
    get the grace period, then are recorded ``interrupted``), then the escalator stops.
    """

    def __init__(self, store: Store, holder: CatalogHolder, settings: WorkerSettings, *,
                 on_finish: Callable[[RunRecord], None] | None = None) -> None:
        set_lease(settings.lease)  # before the pool exists: its heartbeat renews every third of it
        self.pool = WorkerPool(store, lambda: holder.active, size=settings.size, grace=settings.grace,
                               listen=settings.listen, poll=settings.poll,
                               listen_poll=max(10 * settings.poll, LISTEN_POLL_INTERVAL), on_finish=on_finish)
        self.escalator = Escalator(store, lambda: holder.active)
        report_channels(holder)  # the process that sends says which channels cannot: once, not per message

    def __enter__(self) -> Workers:
        self.pool.start()
        self.escalator.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.stop()
        self.escalator.stop()
