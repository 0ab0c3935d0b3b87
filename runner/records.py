"""What a run leaves behind: the run record, its steps and its timeline.

These are the typed values passed between the executor, the store and the
surfaces (CLI, API). Only ``runner.store`` turns them into SQL rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

OUTPUT_TAIL = 4096  # characters of stdout/stderr kept per step


class ReasonKind(StrEnum):
    """Why authority put a run where it is, as data beside the reason's words (``runs.reason_kind``).

    Metrics, the report, the API and the dashboard read this, never the words. A new limit is a
    model field, its schema, one check that returns its kind, and its member here.
    """

    ALLOWED = "allowed"  # within authority
    ENVIRONMENT = "environment"  # no environment, or one the runbook does not act in
    TARGET = "target"  # a host or group the inventory does not have
    MAX_HOSTS = "max_hosts"
    PARAMS = "params"  # a param the alert or the operator got wrong
    FORBIDDEN = "forbidden"  # the operator may not run this runbook
    MAX_RUNS = "max_runs"
    CONCURRENCY = "concurrency"
    COOLDOWN = "cooldown"
    APPROVAL_REQUIRED = "approval_required"  # the runbook always needs it
    OUTSIDE_HOURS = "outside_hours"  # the runbook needs it outside working hours
    MODULE_APPROVAL = "module_approval"  # the policy needs it for a module the runbook uses
    APPROVAL_ASKED = "approval_asked"  # the requester asked for it
    APPROVAL = "approval"  # a person rejected it when asked to approve
    ERROR = "error"  # the catalog could not decide (never for a validated catalog)


LIMIT_KINDS = frozenset({ReasonKind.ENVIRONMENT, ReasonKind.MAX_HOSTS, ReasonKind.MAX_RUNS,
                         ReasonKind.CONCURRENCY, ReasonKind.COOLDOWN})  # what "rejected (limit)" names


class RunStatus(StrEnum):
    """States of a run (see docs: queued -> running -> a final state)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"
    REJECTED = "rejected"
    AWAITING_APPROVAL = "awaiting_approval"
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the run."""
        return self in FINAL_STATUSES


PENDING_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.AWAITING_APPROVAL})  # not started yet

FINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED,
     RunStatus.REJECTED, RunStatus.INTERRUPTED}
)


class StepStatus(StrEnum):
    """Outcome of one step on one host."""

    RUNNING = "running"
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


def tail(text: str | None, limit: int = OUTPUT_TAIL) -> str:
    """The last *limit* characters of *text*, marked when cut."""
    if not text:
        return ""
    return text if len(text) <= limit else "[...]" + text[-limit:]


@dataclass
class Trigger:
    """Who or what started a run: an operator (manual) or an alert."""

    kind: str  # "manual" | "alert"
    actor: str  # operator name, or the alert's source
    alert: dict[str, Any] | None = None  # labels/annotations/fingerprint of the alert


def target_key(hosts: list[str] | tuple[str, ...]) -> str:
    """The hosts of a run as one key: the same set of hosts gives the same key."""
    return ",".join(sorted(set(hosts)))


@dataclass
class GitRevision:
    """Which revision of the runbooks repository a run used."""

    commit: str | None  # None when the catalog is not in a git work tree
    dirty: bool = False


@dataclass
class StepRecord:
    """One step on one host."""

    index: int  # position among steps, verify steps follow the steps
    name: str
    kind: str  # "step" | "verify"
    host: str
    status: StepStatus
    changed: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    message: str = ""
    retries: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds the step took, when it finished."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass
class TimelineEntry:
    """A state change of a run, with when and why."""

    at: datetime
    event: str
    detail: str = ""


@dataclass
class RunRecord:
    """Everything recorded about one run."""

    id: str
    runbook: str
    status: RunStatus
    trigger: Trigger
    revision: GitRevision
    params: dict[str, Any]
    hosts: list[str]
    verdict: str
    reason: str
    dry_run: bool = False
    environment: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[StepRecord] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    target: str | None = None  # the hosts as one key: limits per target compare it
    alert_id: int | None = None  # the stored alert that caused the run
    fingerprint: str | None = None  # that alert's fingerprint
    claimed_by: str | None = None  # the worker that holds (or held) the run
    cancel_requested: bool = False
    attempts: int = 0  # times a worker claimed the run
    decided_by: str | None = None  # who approved or rejected it
    incident_id: str | None = None  # the incident of the alert that caused it
    reason_kind: str | None = None  # ReasonKind: why authority decided so (None in runs older than 0009)

    @property
    def requester(self) -> str | None:
        """The operator who asked for the run by hand (None for runs an alert started)."""
        return self.trigger.actor if self.trigger.kind == "manual" else None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def record_as_data(record: RunRecord) -> dict[str, Any]:
    """A run record as JSON-ready data (times stay datetimes: the caller's encoder renders them)."""
    data = asdict(record)
    data["duration"] = record.duration
    for step, raw in zip(record.steps, data["steps"], strict=True):
        raw["duration"] = step.duration
    return data


class IncidentStatus(StrEnum):
    """States of an incident: open -> acknowledged -> resolved (resolved may come at any time)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Ownership:
    """Who owns an alert's incident from its first second, and what the incident is about."""

    team: str
    owner: str  # the team's primary incident owner
    severity: str
    title: str
    runbook: str | None = None  # None: no runbook matches; the policy's default owner has it
    policy: dict[str, Any] | None = None  # the team's escalation policy (see runner.store.escalation)


@dataclass
class Incident:
    """The alerts of one group (or one fingerprint), their owner, runs and timeline."""

    id: str
    key: str
    status: IncidentStatus
    title: str
    severity: str
    source: str
    runbook: str | None
    owner_team: str
    owner: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # id, fingerprint, status, received_at
    runs: list[dict[str, Any]] = field(default_factory=list)  # id, runbook, status, created_at


def incident_as_data(incident: Incident) -> dict[str, Any]:
    """An incident as JSON-ready data."""
    return asdict(incident)


def json_default(value: object) -> object:
    """What ``json.dumps`` cannot: times as RFC 3339 (``2026-12-02T03:00:00+00:00``), the rest as text.

    The API and ``-o json`` of the CLI both use it, so a time reads the same in either.
    """
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
