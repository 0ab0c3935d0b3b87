"""The run queue under real concurrency: history limits, dedup, claims, leases, cancel, approval.

Every test runs on SQLite and PostgreSQL. Where the point is concurrency the requests really
are concurrent: threads (and, in one variant, processes) released together by a barrier.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runner.alerts.batch import Batch
from runner.alerts.sources import parse
from runner.catalog.live import CatalogHolder, Loaded
from runner.errors import ConflictError, ForbiddenError
from runner.records import RunRecord, RunStatus, Trigger
from runner.runs import approvals
from runner.runs.candidates import alert_candidate
from runner.runs.lifecycle import Request, candidate, new_lease, prepare, worker_id
from runner.store import Store, queue
from runner.store.alerts import StoredAlert
from runner.store.engine import create_engine, parse_url
from runner.store.queue import Candidate, Lease
from runner.store.tables import runs
from tests.conftest import runbook_yaml

ALERTS = 100
HOSTS = ["web-1", "web-2", "pay-1", "relay-1", "db-1"]  # the repository's inventory
RUNBOOKS = {  # name: (alertname, limits); they act in dev, where the policy sets no ceiling
    "capped": ("Capped", "  max_runs: {count: 3, per: 1h}\n  concurrency: 100\n"),
    "single": ("Single", "  concurrency: 1\n"),
    "resting": ("Resting", "  cooldown: 10m\n  concurrency: 100\n"),
    "plain": ("Plain", "  concurrency: 100\n"),
    "gated": ("Gated", "  concurrency: 1\n  approval: required\n"),
}
ALICE = Trigger("manual", "alice")
MODES = ["one store", "four stores", "four processes"]


def runbook(name: str, alertname: str, limits: str) -> str:
    """A runbook for *alertname* alerts acting on one host in dev, with the given authority limits."""
    text = runbook_yaml(name, match=f"  - alertname: {alertname}")
    authority = f"authority:\n  environments: [dev]\n  max_hosts: 1\n{limits}  timeout: 5m\n"
    return text[:text.index("authority:")] + authority + text[text.index("steps:"):]


@pytest.fixture
def active(make_catalog) -> Iterator[Loaded]:  # type: ignore[no-untyped-def]
    """The RUNBOOKS catalog, validated and active as in the server."""
    holder = CatalogHolder(make_catalog({f"{n}.yaml": runbook(n, *spec) for n, spec in RUNBOOKS.items()}))
    result = holder.reload()
    assert result.ok and result.active is not None, result.error
    yield result.active
    holder.close()


def alert(alertname: str, host: str, fingerprint: str, status: str = "firing") -> Batch:
    """A generic-format request with one alert about *host* in dev."""
    labels = {"alertname": alertname, "env": "dev", "instance": f"{host}:9100"}
    return parse("generic", {"labels": labels, "status": status, "fingerprint": fingerprint})


def alert_request(active: Loaded, alertname: str, host: str, fingerprint: str) -> tuple[Batch, Candidate]:
    """A firing alert and the run the server would ask the store for."""
    batch = alert(alertname, host, fingerprint)
    wanted = alert_candidate(active, batch.alerts[0], datetime.now(UTC))
    assert wanted is not None and wanted.record.hosts == [host]
    return batch, wanted


def manual(store: Store, active: Loaded, name: str, host: str) -> RunRecord:
    """A run of *name* on *host* that alice asks for, stored (queued, or awaiting approval)."""
    prepared = prepare(active.catalog, Request(name, ALICE, params={"host": host}), active.revision)
    return store.enqueue(candidate(active.catalog, prepared))


def post(store: Store, request: tuple[Batch, Candidate | None]) -> list[StoredAlert]:
    """Store a request's alert with its candidate run, as the intake does."""
    return store.record_alerts(request[0], candidates=[request[1]])


def together(count: int, action: Callable[[int], object]) -> None:
    """Call action(0), ..., action(count - 1) from threads released at once; re-raise the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        barrier.wait()
        try:
            action(i)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    if errors:
        raise errors[0]


def post_from_process(url: str, root: str, alertname: str, hosts: list[str], tag: str, start: Any) -> None:
    """In a child process: post one alert per host with threads, when every process is ready."""
    holder = CatalogHolder(Path(root))
    try:
        loaded = holder.reload().active
        assert loaded is not None
        requests = [alert_request(loaded, alertname, h, f"{tag}-{i}") for i, h in enumerate(hosts)]
        with Store(url) as store:
            store.ping()
            start.wait()
            together(len(requests), lambda i: post(store, requests[i]))
    finally:
        holder.close()


def storm(url: str, active: Loaded, alertname: str, hosts: Sequence[str], tag: str,
          mode: str = "one store") -> None:
    """Post one *alertname* alert per entry of *hosts* (fingerprints tag-i), all at once."""
    if mode == "four processes":
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(4)
        root = str(active.catalog.root)
        processes = [context.Process(target=post_from_process,
                                     args=(url, root, alertname, list(hosts[n::4]), f"{tag}-p{n}", start))
                     for n in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=300)
        assert [p.exitcode for p in processes] == [0] * 4
        return
    requests = [alert_request(active, alertname, host, f"{tag}-{i}") for i, host in enumerate(hosts)]
    stores = [Store(url) for _ in range(1 if mode == "one store" else 4)]
    try:
        together(len(requests), lambda i: post(stores[i % len(stores)], requests[i]))
    finally:
        for store in stores:
            store.close()


def by_status(store: Store, name: str) -> dict[RunStatus, list[RunRecord]]:
    """The runs of runbook *name*, grouped by status."""
    grouped: dict[RunStatus, list[RunRecord]] = {}
    for record in store.list_runs(runbook=name, limit=None):
        grouped.setdefault(record.status, []).append(record)
    return grouped


def inputs_of(url: str, run_id: str) -> Any:
    """The inputs column of a run, read behind the store's back."""
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(runs.c.inputs).where(runs.c.id == run_id)).scalar_one()
    finally:
        engine.dispose()


def finish(store: Store, record: RunRecord) -> None:
    """Run *record* to success, as a worker would."""
    assert store.claim(new_lease(worker_id()), run_id=record.id) is not None
    store.set_status(record.id, RunStatus.SUCCEEDED, detail="done")


def wait_for_a_lock_waiter(admin: sa.Engine) -> None:
    """Return once a session of the test database waits for a row lock (bounded: fail after 30s)."""
    with admin.connect() as connection:
        for _ in range(3000):
            if connection.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                          "current_database() AND wait_event_type = 'Lock'")).scalar():
                return
            time.sleep(0.01)
    pytest.fail("the cancel never waited for the claim's row lock")


@pytest.mark.parametrize("mode", MODES)
def test_max_runs_allows_exactly_the_limit_under_100_concurrent_alerts(
    store_url: str, active: Loaded, mode: str
) -> None:
    with Store(store_url) as store:
        store.upgrade()
        storm(store_url, active, "Capped", [HOSTS[i % len(HOSTS)] for i in range(ALERTS)], "capped", mode)
        grouped = by_status(store, "capped")
        assert store.count_alerts(repeats=False) == ALERTS
    assert sorted(grouped) == [RunStatus.QUEUED, RunStatus.REJECTED]
    assert len(grouped[RunStatus.QUEUED]) == 3
    assert len(grouped[RunStatus.REJECTED]) == ALERTS - 3
    for record in grouped[RunStatus.REJECTED]:
        assert record.reason.startswith("max_runs: 3 run(s) of capped in the last 1h (limit 3 per 1h)")
        assert record.verdict == "rejected" and record.fingerprint is not None and record.alert_id


def test_concurrency_one_allows_one_run_per_target(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        storm(store_url, active, "Single", ["web-1", "web-2"] * (ALERTS // 2), "single")
        grouped = by_status(store, "single")
        assert sorted(r.target or "" for r in grouped[RunStatus.QUEUED]) == ["web-1", "web-2"]
        assert len(grouped[RunStatus.REJECTED]) == ALERTS - 2
        assert all(r.reason.startswith("concurrency: 1 run(s) of single already queued or running on ")
                   for r in grouped[RunStatus.REJECTED])
        first, second = grouped[RunStatus.QUEUED]
        finish(store, first)  # a finished run frees its target; a running one does not
        assert store.claim(new_lease(worker_id()), run_id=second.id) is not None
        storm(store_url, active, "Single", [first.target or "", second.target or ""] * 10, "again")
        grouped = by_status(store, "single")
    assert [r.target for r in grouped[RunStatus.QUEUED]] == [first.target]
    assert [r.id for r in grouped[RunStatus.RUNNING]] == [second.id]
    assert len(grouped[RunStatus.REJECTED]) == ALERTS - 2 + 19


def test_cooldown_rejects_the_target_that_just_ran_and_no_other(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        finish(store, manual(store, active, "resting", "web-1"))
        storm(store_url, active, "Resting", ["web-1", "web-2"] * 25, "resting")
        grouped = by_status(store, "resting")
    assert [r.target for r in grouped[RunStatus.SUCCEEDED]] == ["web-1"]
    # web-2 has not run: one run is queued; the others must wait for its end plus the cooldown.
    assert [r.target for r in grouped[RunStatus.QUEUED]] == ["web-2"]
    ended = grouped[RunStatus.SUCCEEDED][0].finished_at
    assert ended is not None
    rejected = Counter((r.target, r.reason.split(";")[0]) for r in grouped[RunStatus.REJECTED])
    last = f"cooldown: the last run on web-1 ended at {ended.isoformat(timespec='seconds')}"
    assert rejected == {("web-2", "cooldown: 1 run(s) of resting on web-2 not finished yet"): 24,
                        ("web-1", last): 25}
    for record in grouped[RunStatus.REJECTED]:
        if record.target == "web-1":
            assert record.reason.endswith("(cooldown 10m)")


def test_a_storm_of_one_alert_makes_one_run_and_99_repeats(store_url: str, active: Loaded) -> None:
    requests = [alert_request(active, "Plain", "web-1", "same-fingerprint") for _ in range(ALERTS)]
    stored: list[StoredAlert] = []
    with Store(store_url) as store:
        together(ALERTS, lambda i: stored.extend(post(store, requests[i])))
        all_runs = store.list_runs(limit=None)
        assert store.count_alerts(fingerprint="same-fingerprint") == ALERTS
        assert store.count_alerts(fingerprint="same-fingerprint", repeats=True) == ALERTS - 1
    [first] = [s for s in stored if s.repeat_of is None]
    assert first.run is not None and first.run.status is RunStatus.QUEUED
    assert [r.id for r in all_runs] == [first.run.id]
    assert all_runs[0].alert_id == first.id and all_runs[0].fingerprint == "same-fingerprint"
    assert Counter((s.repeat_of, s.run) for s in stored if s is not first) == {(first.id, None): ALERTS - 1}


def test_each_queued_run_is_claimed_by_exactly_one_worker(store_url: str, active: Loaded) -> None:
    claims: list[tuple[str, str, dict[str, Any]]] = []

    def work(_: int) -> None:
        worker = worker_id()
        while (taken := store.claim(new_lease(worker))) is not None:
            claims.append((taken[0], worker, taken[1]))

    with Store(store_url) as store:
        queued = {manual(store, active, "plain", HOSTS[i % 5]).id: HOSTS[i % 5] for i in range(20)}
        together(8, work)
        records = {run_id: store.get_run(run_id) for run_id in queued}
        assert store.queue_depth() == {"queued": 0, "awaiting_approval": 0}
    assert Counter(run_id for run_id, _, _ in claims) == dict.fromkeys(queued, 1)
    for run_id, worker, inputs in claims:
        record = records[run_id]
        assert record is not None and inputs == {"host": queued[run_id]}
        assert (record.status, record.claimed_by, record.attempts) == (RunStatus.RUNNING, worker, 1)
        assert (record.timeline[-1].event, record.timeline[-1].detail) == ("running", f"claimed by {worker}")


def test_runs_of_dead_workers_are_interrupted_or_queued_again_once(store_url: str, active: Loaded) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    with Store(store_url) as store:
        dead, retried, alive = (manual(store, active, "plain", host) for host in ("web-1", "web-2", "pay-1"))
        assert store.claim(Lease("worker-dead", past), run_id=dead.id) is not None
        assert store.claim(new_lease("worker-live"), run_id=alive.id) is not None
        assert store.recover(idempotent=lambda name: False) == [(dead.id, RunStatus.INTERRUPTED, 1)]
        record = store.get_run(dead.id)
        assert record is not None and record.status is RunStatus.INTERRUPTED and record.finished_at
        assert record.timeline[-1].event == "interrupted"
        assert "worker worker-dead stopped without finishing the run" in record.timeline[-1].detail

        assert store.claim(Lease("worker-gone-1", past), run_id=retried.id) is not None
        assert store.recover(idempotent=lambda name: name == "plain") == [(retried.id, RunStatus.QUEUED, 1)]
        record = store.get_run(retried.id)
        assert record is not None and (record.status, record.claimed_by, record.attempts) == (
            RunStatus.QUEUED, None, 1)
        assert "worker worker-gone-1" in record.timeline[-1].detail
        assert record.timeline[-1].detail.endswith("queued again")
        assert store.claim(Lease("worker-gone-2", past), run_id=retried.id) is not None
        assert store.recover(idempotent=lambda name: True) == [(retried.id, RunStatus.INTERRUPTED, 2)]
        record = store.get_run(retried.id)
        assert record is not None and (record.status, record.attempts) == (RunStatus.INTERRUPTED, 2)
        assert "worker worker-gone-2" in record.timeline[-1].detail

        live = store.get_run(alive.id)
        assert live is not None and (live.status, live.claimed_by) == (RunStatus.RUNNING, "worker-live")
        assert store.recover(idempotent=lambda name: False, gone=lambda w: w == "worker-live") == [
            (alive.id, RunStatus.INTERRUPTED, 1)]


def test_concurrent_recovery_records_each_abandoned_run_once(store_url: str, active: Loaded) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    recovered: list[tuple[str, RunStatus, int]] = []
    with Store(store_url) as store:
        abandoned = [manual(store, active, "plain", HOSTS[i % 5]).id for i in range(10)]
        for run_id in abandoned:
            assert store.claim(Lease("worker-dead", past), run_id=run_id) is not None
        together(8, lambda _: recovered.extend(store.recover(idempotent=lambda name: True)))
        records = [store.get_run(run_id) for run_id in abandoned]
    assert sorted(recovered) == sorted((run_id, RunStatus.QUEUED, 1) for run_id in abandoned)
    for record in records:
        assert record is not None and record.status is RunStatus.QUEUED
        assert [e.event for e in record.timeline].count("queued") == 2  # on creation, and once again


def test_cancel_depends_on_whether_the_run_started(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        waiting = manual(store, active, "plain", "web-1")
        assert inputs_of(store_url, waiting.id) == {"host": "web-1"}
        assert store.request_cancel(waiting.id, "bob") is RunStatus.CANCELED
        record = store.get_run(waiting.id)
        assert record is not None and record.status is RunStatus.CANCELED and record.finished_at
        assert (record.timeline[-1].event, record.timeline[-1].detail) == (
            "canceled", "canceled by bob before it started")
        assert inputs_of(store_url, waiting.id) is None

        started = manual(store, active, "plain", "web-2")
        lease = new_lease(worker_id())
        assert store.claim(lease, run_id=started.id) is not None
        assert store.renew(lease, [started.id]) == {started.id: False}
        assert store.request_cancel(started.id, "bob") is RunStatus.RUNNING
        assert store.request_cancel(started.id, "carol") is RunStatus.RUNNING
        record = store.get_run(started.id)
        assert record is not None and (record.status, record.cancel_requested) == (RunStatus.RUNNING, True)
        assert [e.event for e in record.timeline].count("cancel_requested") == 1
        assert store.renew(lease, [started.id]) == {started.id: True}
        assert store.renew(new_lease("another-worker"), [started.id]) == {}

        store.set_status(started.id, RunStatus.SUCCEEDED)
        with pytest.raises(ConflictError, match="is already succeeded"):
            store.request_cancel(started.id, "bob")
        with pytest.raises(ConflictError, match="is already canceled"):
            store.request_cancel(waiting.id, "bob")


def test_approval_queues_or_rejects_once_and_never_by_the_requester(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        first, second, third = (manual(store, active, "gated", h) for h in ("web-1", "web-1", "web-2"))
        assert {first.status, second.status, third.status} == {RunStatus.AWAITING_APPROVAL}
        assert store.decide(first.id, "bob", approve=True) is RunStatus.QUEUED
        record = store.get_run(first.id)
        assert record is not None and (record.status, record.decided_by) == (RunStatus.QUEUED, "bob")
        assert [e.event for e in record.timeline][-2:] == ["approved", "queued"]
        with pytest.raises(ConflictError, match="is queued, not awaiting approval"):
            store.decide(first.id, "carol", approve=False)

        with pytest.raises(ConflictError, match="cannot start now: concurrency: 1 run"):  # first holds web-1
            approvals.decide(store, active.catalog, second.id, "bob", approve=True)
        assert store.decide(second.id, "bob", approve=False, reason="not tonight") is RunStatus.REJECTED
        record = store.get_run(second.id)
        assert record is not None and record.status is RunStatus.REJECTED and record.finished_at
        assert (record.reason, record.decided_by) == ("rejected by bob: not tonight", "bob")
        with pytest.raises(ConflictError, match="is rejected, not awaiting approval"):
            store.decide(second.id, "bob", approve=True)

        with pytest.raises(ForbiddenError, match="four eyes: alice requested run"):
            approvals.decide(store, active.catalog, third.id, "alice", approve=True)
        assert store.get_run(third.id).status is RunStatus.AWAITING_APPROVAL  # type: ignore[union-attr]
        approved = approvals.decide(store, active.catalog, third.id, "carol", approve=True)
        assert (approved.status, approved.decided_by) == (RunStatus.QUEUED, "carol")


def test_a_resolved_alert_cancels_its_runs_not_started_and_notes_running_ones(
    store_url: str, active: Loaded
) -> None:
    def receive(name: str, host: str, fingerprint: str, status: str = "firing") -> StoredAlert:
        batch = alert(name, host, fingerprint, status)
        return post(store, (batch, alert_candidate(active, batch.alerts[0], datetime.now(UTC))))[0]

    with Store(store_url) as store:
        waiting = receive("Plain", "web-1", "fp-waiting").run
        gated = receive("Gated", "web-2", "fp-gated").run
        started = receive("Plain", "pay-1", "fp-started").run
        assert (waiting.status, gated.status) == (RunStatus.QUEUED, RunStatus.AWAITING_APPROVAL)
        assert store.claim(new_lease(worker_id()), run_id=started.id) is not None

        for name, host, fingerprint, run in (("Plain", "web-1", "fp-waiting", waiting),
                                             ("Gated", "web-2", "fp-gated", gated)):
            resolved = receive(name, host, fingerprint, "resolved")
            assert (resolved.run, resolved.canceled) == (None, (run.id,))
            record = store.get_run(run.id)
            assert record is not None and record.status is RunStatus.CANCELED
            assert (record.timeline[-1].event, record.timeline[-1].detail) == (
                "canceled", "the alert resolved before the run started")
            assert inputs_of(store_url, run.id) is None
        assert receive("Plain", "pay-1", "fp-started", "resolved").canceled == ()
        record = store.get_run(started.id)
    assert record is not None and record.status is RunStatus.RUNNING
    assert (record.timeline[-1].event, record.timeline[-1].detail) == (
        "alert_resolved", "the alert resolved while the run was running")


@pytest.mark.parametrize("by", ["operator", "resolved alert"])
def test_a_cancel_racing_a_claim_never_reports_a_running_run_canceled(
    postgresql_store_url: str, postgresql_admin: sa.Engine, active: Loaded, by: str
) -> None:
    """PostgreSQL only: on SQLite a write transaction excludes every other, so this cannot interleave."""
    url, answers = postgresql_store_url, list[object]()
    with Store(url) as store:
        [stored] = post(store, alert_request(active, "Plain", "web-1", "fp-race"))
        run_id = stored.run.id  # type: ignore[union-attr]
        resolved = (alert("Plain", "web-1", "fp-race", "resolved"), None)
        cancel = {"operator": lambda: store.request_cancel(run_id, "bob"),
                  "resolved alert": lambda: post(store, resolved)[0].canceled}[by]
        engine = create_engine(parse_url(url))
        try:
            with engine.begin() as worker:  # a worker claims the run and has not committed yet
                assert queue.claim(worker, new_lease("worker-x"), datetime.now(UTC), run_id) is not None
                thread = threading.Thread(target=lambda: answers.append(cancel()))
                thread.start()
                wait_for_a_lock_waiter(postgresql_admin)  # the cancel read "queued" and waits to update
            thread.join(timeout=60)
        finally:
            engine.dispose()
        record = store.get_run(run_id)
    assert record is not None and record.status is RunStatus.RUNNING  # the claim came first
    if by == "operator":  # the worker must be asked to stop, and the operator told it runs
        assert (answers, record.cancel_requested) == ([RunStatus.RUNNING], True)
    else:  # a running run is noted, not reported canceled
        assert answers == [()] and record.timeline[-1].event == "alert_resolved"


# --- what a review found ------------------------------------------------------------------------------


def test_a_worker_that_lost_the_run_cannot_write_its_outcome(store_url: str, active: Loaded) -> None:
    from runner.records import StepRecord, StepStatus

    past = datetime.now(UTC) - timedelta(minutes=1)
    with Store(store_url) as store:
        run = manual(store, active, "plain", "web-1")
        assert store.claim(Lease("worker-a", past), run_id=run.id) is not None
        assert store.recover(idempotent=lambda name: True) == [(run.id, RunStatus.QUEUED, 1)]
        assert store.claim(new_lease("worker-c"), run_id=run.id) is not None
        step = StepRecord(index=1, name="ping", kind="step", host="web-1", status=StepStatus.OK)
        store.save_step(run.id, step, worker="worker-a")  # too late: ignored
        assert store.set_status(run.id, RunStatus.CANCELED, detail="stale", worker="worker-a") is False
        record = store.get_run(run.id)
        assert record is not None and (record.status, record.claimed_by, record.steps) == (
            RunStatus.RUNNING, "worker-c", [])
        assert store.set_status(run.id, RunStatus.SUCCEEDED, worker="worker-c") is True


def test_a_dead_workers_run_with_a_cancel_request_is_canceled_not_queued_again(
    store_url: str, active: Loaded
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    with Store(store_url) as store:
        run = manual(store, active, "plain", "web-1")
        assert store.claim(Lease("worker-dead", past), run_id=run.id) is not None
        assert store.request_cancel(run.id, "bob") is RunStatus.RUNNING
        assert store.recover(idempotent=lambda name: True) == [(run.id, RunStatus.CANCELED, 1)]
        record = store.get_run(run.id)
        assert record is not None and record.status is RunStatus.CANCELED
        assert record.timeline[-1].detail.endswith("a cancel had been requested: not run again")


def test_cooldown_counts_runs_not_finished_yet(store_url: str, active: Loaded) -> None:
    with Store(store_url) as store:
        first = post(store, alert_request(active, "Resting", "web-1", "fp-rest-1"))[0].run
        second = post(store, alert_request(active, "Resting", "web-1", "fp-rest-2"))[0].run
    assert first is not None and first.status is RunStatus.QUEUED
    assert second is not None and second.status is RunStatus.REJECTED
    assert second.reason.startswith("cooldown: 1 run(s) of resting on web-1 not finished yet")


def test_approving_a_dry_run_ignores_the_limits_and_a_missing_runbook_refuses(
    store_url: str, active: Loaded
) -> None:
    with Store(store_url) as store:
        busy = manual(store, active, "gated", "web-2")  # concurrency 1: it will hold web-2
        approved = approvals.decide(store, active.catalog, busy.id, "bob", approve=True)
        assert approved.status is RunStatus.QUEUED
        gated = prepare(active.catalog, Request("gated", ALICE, params={"host": "web-2"}, dry_run=True),
                        active.revision)
        dry = store.enqueue(candidate(active.catalog, gated))
        assert dry.status is RunStatus.AWAITING_APPROVAL
        assert approvals.decide(store, active.catalog, dry.id, "bob", approve=True).status is RunStatus.QUEUED
        other = store.enqueue(candidate(active.catalog, prepare(
            active.catalog, Request("gated", ALICE, params={"host": "pay-1"}), active.revision)))
        without = type(active.catalog)(root=active.catalog.root, policy=active.catalog.policy,
                                       owners=active.catalog.owners)
        with pytest.raises(ConflictError, match="not in the active catalog"):
            approvals.decide(store, without, other.id, "bob", approve=True)
