"""Runs: turn a request (manual or from an alert) into a recorded, bounded execution.

``prepare`` decides everything that needs no history (params, hosts,
authority) and yields the record to store; ``carry_out`` executes an allowed
run and streams every step into the store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.alerts import Alert
from runner.authority import Decision, decide_in, environment_label
from runner.catalog import Catalog
from runner.errors import RunbookError, StoreError, UsageError
from runner.executor import Plan, execute
from runner.gitrev import revision
from runner.models import Runbook, Verdict
from runner.params import redact, redact_alert, resolve_params
from runner.records import RunRecord, RunStatus, StepRecord, TimelineEntry, Trigger
from runner.store import Store

_STATUS_OF = {Verdict.ALLOWED: RunStatus.QUEUED, Verdict.REJECTED: RunStatus.REJECTED,
              Verdict.AWAITING_APPROVAL: RunStatus.AWAITING_APPROVAL}


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


@dataclass
class Prepared:
    """A decided run: its record, and the plan to execute when it is allowed."""

    record: RunRecord
    decision: Decision
    plan: Plan | None


def _environment(runbook: Runbook, catalog: Catalog, request: Request) -> str | None:
    if request.environment is not None:
        return request.environment
    if request.alert is not None and catalog.policy is not None:
        return request.alert.labels.get(environment_label(runbook, catalog.policy))
    if len(runbook.authority.environments) == 1:
        return runbook.authority.environments[0]
    raise UsageError(f"runbook {runbook.name} acts in {', '.join(runbook.authority.environments)}: "
                     "say which environment (--env)")


def _recorded_trigger(runbook: Runbook, request: Request) -> Trigger:
    """The trigger as recorded: the alert's values that feed secret params are redacted."""
    trigger = request.trigger
    if trigger.alert is None or request.alert is None:
        return trigger
    labels, annotations = redact_alert(runbook, request.alert)
    return replace(trigger, alert={**trigger.alert, "labels": labels, "annotations": annotations})


def prepare(catalog: Catalog, request: Request) -> Prepared:
    """Check params (ParamError names the param and the rule), resolve hosts, decide authority."""
    runbook = catalog.runbooks.get(request.runbook)
    if runbook is None:
        have = ", ".join(sorted(catalog.runbooks))
        raise UsageError(f"no runbook named {request.runbook!r} (have: {have})")
    assert catalog.policy is not None
    params = resolve_params(runbook, request.alert, request.params)
    env = _environment(runbook, catalog, request)
    now = request.now or datetime.now(UTC)
    decision = decide_in(catalog, runbook, params, env, now)
    status = _STATUS_OF[decision.verdict]
    run_id = uuid.uuid4().hex
    record = RunRecord(
        id=run_id, runbook=runbook.name, status=status, trigger=_recorded_trigger(runbook, request),
        revision=revision(catalog.root), params=redact(runbook, params), hosts=list(decision.hosts),
        verdict=decision.verdict.value, reason=decision.reason, dry_run=request.dry_run,
        environment=decision.environment, created_at=now,
        timeline=[TimelineEntry(now, "created", f"by {request.trigger.kind}: {request.trigger.actor}"),
                  TimelineEntry(now, status.value, decision.reason)],
    )
    plan = None
    if decision.verdict is Verdict.ALLOWED:
        secrets = tuple(str(v) for k, v in params.items() if runbook.params[k].secret and str(v))
        plan = Plan(runbook, params, decision.hosts, catalog.root, catalog.inventory,
                    dry_run=request.dry_run, run_id=run_id, secrets=secrets)
    return Prepared(record, decision, plan)


def carry_out(
    store: Store,
    prepared: Prepared,
    *,
    on_step: Callable[[StepRecord], None] | None = None,
    cancel: threading.Event | None = None,
    work_dir: Path | None = None,
) -> RunRecord:
    """Execute an allowed, stored run and record every step and the outcome."""
    plan = prepared.plan
    run_id = prepared.record.id
    if plan is None:
        raise RunbookError(f"run {run_id} is {prepared.record.status.value}, not allowed to execute")
    store.set_status(run_id, RunStatus.RUNNING, detail="dry run (check mode)" if plan.dry_run else "")
    unsaved: dict[tuple[int, str], StepRecord] = {}

    def step_seen(step: StepRecord) -> None:
        # Recording must never stop a run half way: a step that cannot be saved now is saved at the end.
        try:
            store.save_step(run_id, step)
            unsaved.pop((step.index, step.host), None)
        except StoreError:
            unsaved[(step.index, step.host)] = step
        if on_step is not None:
            on_step(step)

    try:
        outcome = execute(plan, on_step=step_seen, cancel=cancel, work_dir=work_dir)
    except Exception as e:
        store.set_status(run_id, RunStatus.FAILED, detail=f"executor error: {type(e).__name__}: {e}")
        raise
    except BaseException as e:  # Ctrl-C, SystemExit: the run did not finish, and must not look running
        store.set_status(run_id, RunStatus.INTERRUPTED, detail=f"interrupted: {type(e).__name__}")
        raise
    for step in unsaved.values():
        store.save_step(run_id, step)
    store.set_status(run_id, outcome.status, detail=outcome.message)
    final = store.get_run(run_id)
    assert final is not None
    return final


def submit(store: Store, catalog: Catalog, request: Request) -> Prepared:
    """Prepare and store a run (queued, rejected or awaiting approval)."""
    prepared = prepare(catalog, request)
    store.create_run(prepared.record)
    return prepared

