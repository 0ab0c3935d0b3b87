"""Runs: turn a request (manual or from an alert) into a recorded, bounded execution.

``prepare`` decides everything that needs no history (params, hosts,
authority) and yields the record to store; ``carry_out`` executes an allowed
run and streams every step into the store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.alerts import Alert
from runner.authority import Decision, decide, environment_label
from runner.catalog import Catalog
from runner.errors import RunbookError
from runner.executor import Plan, execute
from runner.gitrev import revision
from runner.models import Runbook, Verdict
from runner.params import REDACTED, redact, resolve_params
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
    secrets: tuple[str, ...] = ()


def _environment(runbook: Runbook, catalog: Catalog, request: Request) -> str | None:
    if request.environment is not None:
        return request.environment
    if request.alert is not None and catalog.policy is not None:
        return request.alert.labels.get(environment_label(runbook, catalog.policy))
    if len(runbook.authority.environments) == 1:
        return runbook.authority.environments[0]
    raise RunbookError(f"runbook {runbook.name} acts in {', '.join(runbook.authority.environments)}: "
                       "say which environment (--env)")


def prepare(catalog: Catalog, request: Request) -> Prepared:
    """Check params (ParamError names the param and the rule), resolve hosts, decide authority."""
    runbook = catalog.runbooks.get(request.runbook)
    if runbook is None:
        raise RunbookError(f"no runbook named {request.runbook!r}")
    assert catalog.policy is not None
    params = resolve_params(runbook, request.alert, request.params)
    env = _environment(runbook, catalog, request)
    now = request.now or datetime.now(UTC)
    decision = decide(runbook, params, env, catalog.policy, catalog.inventory,
                      catalog.modules.get(runbook.name, frozenset()), now)
    status = _STATUS_OF[decision.verdict]
    run_id = uuid.uuid4().hex
    record = RunRecord(
        id=run_id, runbook=runbook.name, status=status, trigger=request.trigger,
        revision=revision(catalog.root), params=redact(runbook, params), hosts=list(decision.hosts),
        verdict=decision.verdict.value, reason=decision.reason, dry_run=request.dry_run,
        environment=decision.environment, created_at=now,
        timeline=[TimelineEntry(now, "created", f"by {request.trigger.kind}: {request.trigger.actor}"),
                  TimelineEntry(now, status.value, decision.reason)],
    )
    plan = None
    if decision.verdict is Verdict.ALLOWED:
        plan = Plan(runbook, params, decision.hosts, catalog.root, catalog.inventory,
                    dry_run=request.dry_run, run_id=run_id)
    secrets = tuple(str(v) for k, v in params.items() if runbook.params[k].secret and str(v))
    return Prepared(record, decision, plan, secrets)


def _scrub(step: StepRecord, secrets: tuple[str, ...]) -> StepRecord:
    for secret in secrets:
        step.stdout = step.stdout.replace(secret, REDACTED)
        step.stderr = step.stderr.replace(secret, REDACTED)
        step.message = step.message.replace(secret, REDACTED)
    return step


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

    def step_seen(step: StepRecord) -> None:
        store.save_step(run_id, _scrub(step, prepared.secrets))
        if on_step is not None:
            on_step(step)

    try:
        outcome = execute(plan, on_step=step_seen, cancel=cancel, work_dir=work_dir)
    except Exception as e:
        store.set_status(run_id, RunStatus.FAILED, detail=f"executor error: {type(e).__name__}: {e}")
        raise
    for step in outcome.steps:
        store.save_step(run_id, _scrub(step, prepared.secrets))
    message = outcome.message
    for secret in prepared.secrets:
        message = message.replace(secret, REDACTED)
    store.set_status(run_id, outcome.status, detail=message)
    final = store.get_run(run_id)
    assert final is not None
    return final


def submit(store: Store, catalog: Catalog, request: Request) -> Prepared:
    """Prepare and store a run (queued, rejected or awaiting approval)."""
    prepared = prepare(catalog, request)
    store.create_run(prepared.record)
    return prepared

