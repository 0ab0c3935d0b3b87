"""What the incidents of a period say, per runbook and per owner team (``runbook report``).

For the incidents opened since a moment: the alerts they received, how many there were, the
automated fixes that held (the incident resolved by its alert resolving after a run
succeeded), the escalations and why, the time to acknowledge (MTTA: opened -> acknowledged)
and to resolve (MTTR: opened -> resolved), and how long runs waited for approval
(awaiting_approval -> approved). The runbooks that escalate most come first: they are the
structural work for developers. Incidents no runbook matches appear as ``(no runbook)``.

Times are seconds; a median or 90th percentile is None when there is nothing to measure.
Percentiles interpolate linearly between the closest ranks (numpy's default), so the
median of an even count is the mean of the two middle values.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from runner.store import Store
from runner.store.reporting import ApprovalFacts, EscalationFacts, IncidentFacts, ReportRows

NO_RUNBOOK = "(no runbook)"
FIX_HELD = "the alert resolved after run "  # how incidents.py words a resolution after a fix succeeded
REJECTED = "rejected"
OTHER = "other"
REJECTION_LIMITS = ("max_runs", "concurrency", "cooldown")  # limit reasons begin "<name>: ..."

FIX_DID_NOT_HOLD = "fix_did_not_hold"

_KIND_LABELS = {"timed_out": "timed out", "awaiting_approval": "awaiting approval",
                "no_runbook": "no runbook matches", FIX_DID_NOT_HOLD: "the fix did not hold"}
_TRIGGER_KINDS = {"unmatched": "no_runbook"}  # a trigger (owners.yaml) the report names otherwise
_REJECTED = re.compile(r"run \S+ of \S+ was rejected: (.*)", re.S)
_KINDS = (  # escalation reasons as runner.store.incidents words them, and their kind
    (re.compile(r"run \S+ failed\b"), "failed"),
    (re.compile(r"run \S+ timed out\b"), "timed_out"),
    (re.compile(r"run \S+ interrupted\b"), "interrupted"),
    (re.compile(r"run \S+ of \S+ awaits approval\b"), "awaiting_approval"),
    (re.compile(r"no runbook matches\b"), "no_runbook"),
    (re.compile(r"the fix did not hold\b"), FIX_DID_NOT_HOLD),
)


def reason_kind(reason: str, trigger: str | None = None) -> str:
    """The kind of an escalation: the kind stored beside its reason (its trigger, with the limit
    of a rejection: ``rejected:max_runs``), or for one an older version stored without it, the
    kind its words give.

    ``failed``, ``timed_out``, ``interrupted``, ``awaiting_approval``, ``no_runbook``,
    ``fix_did_not_hold``; ``rejected``, or ``rejected:<limit>`` when a limit made it
    (``max_runs``, ``concurrency``, ``cooldown``, ``max_hosts``, ``environment``); else ``other``.
    """
    if trigger is not None:
        return _TRIGGER_KINDS.get(trigger, trigger)
    return _legacy_kind(reason)


def _legacy_kind(reason: str) -> str:
    """The kind of an escalation from its words: only for timeline entries written before 0008."""
    rejected = _REJECTED.match(reason)
    if rejected is not None:
        why = rejected.group(1)
        limit = next((name for name in REJECTION_LIMITS if why.startswith(f"{name}:")), None)
        if limit is None and re.search(r"\bexceed max_hosts\b", why):
            limit = "max_hosts"
        if limit is None and (why.startswith("environment '") or why.startswith("no environment:")):
            limit = "environment"
        return f"{REJECTED}:{limit}" if limit else REJECTED
    return next((kind for pattern, kind in _KINDS if pattern.match(reason)), OTHER)


def reason_label(kind: str) -> str:
    """How people read an escalation reason kind (``rejected:max_runs`` -> rejected (max_runs))."""
    if kind.startswith(f"{REJECTED}:"):
        return f"{REJECTED} ({kind.partition(':')[2]})"
    return _KIND_LABELS.get(kind, kind)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The *q* quantile (0..1) of *values*, interpolated linearly; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """Durations in seconds: how many, their median and 90th percentile (None when none)."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        """The spread of *seconds*."""
        return cls(len(seconds), percentile(seconds, 0.5), percentile(seconds, 0.9))


@dataclass(frozen=True)
class Stats:
    """What the incidents of one runbook, one team, or all of them, came to."""

    alerts_received: int  # every receipt of their alerts: firing, resolved and repeats
    incidents: int
    fixes_held: int  # resolved by the alert resolving after a run succeeded
    escalations: int  # escalation starts (an incident acknowledged may escalate again later)
    escalation_reasons: Mapping[str, int]  # reason kind -> escalations, most first
    mtta: Spread  # opened -> acknowledged
    mttr: Spread  # opened -> resolved
    approval_wait: Spread  # a run's awaiting_approval -> approved


@dataclass(frozen=True)
class Group:
    """The stats of one runbook (or ``(no runbook)``), or of one owner team."""

    name: str
    stats: Stats


@dataclass(frozen=True)
class Report:
    """The incidents opened from *since* to *until*, by runbook (most escalations first) and by team."""

    since: datetime
    until: datetime
    total: Stats
    runbooks: tuple[Group, ...]
    teams: tuple[Group, ...]

    @property
    def top_escalating(self) -> Group | None:
        """The runbook that escalated most (alerts no runbook matches aside), if any escalated."""
        return next((g for g in self.runbooks if g.name != NO_RUNBOOK and g.stats.escalations), None)


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def _stats(incidents: Sequence[IncidentFacts], escalations: Iterable[EscalationFacts],
           approvals: Iterable[ApprovalFacts]) -> Stats:
    kinds = Counter(reason_kind(e.reason, e.kind) for e in escalations)
    acked = [s for i in incidents if (s := _seconds(i.opened_at, i.acknowledged_at)) is not None]
    resolved = [s for i in incidents if (s := _seconds(i.opened_at, i.resolved_at)) is not None]
    waits = [s for a in approvals if (s := _seconds(a.requested_at, a.approved_at)) is not None]
    return Stats(
        alerts_received=sum(i.alerts for i in incidents),
        incidents=len(incidents),
        fixes_held=sum(1 for i in incidents if (i.resolution or "").startswith(FIX_HELD)),
        escalations=sum(kinds.values()),
        escalation_reasons=dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        mtta=Spread.of(acked), mttr=Spread.of(resolved), approval_wait=Spread.of(waits),
    )


def _groups(rows: ReportRows, key: Mapping[str, str]) -> tuple[Group, ...]:
    """The stats per value of *key* (incident id -> group name), most escalations first."""
    incidents: dict[str, list[IncidentFacts]] = {}
    escalations: dict[str, list[EscalationFacts]] = {}
    approvals: dict[str, list[ApprovalFacts]] = {}
    for incident in rows.incidents:
        incidents.setdefault(key[incident.id], []).append(incident)
    for escalation in rows.escalations:
        escalations.setdefault(key[escalation.incident_id], []).append(escalation)
    for approval in rows.approvals:
        approvals.setdefault(key[approval.incident_id], []).append(approval)
    groups = [Group(name, _stats(found, escalations.get(name, []), approvals.get(name, [])))
              for name, found in incidents.items()]
    groups.sort(key=lambda g: (-g.stats.escalations, -g.stats.incidents, g.name))
    return tuple(groups)


def summarize(rows: ReportRows, until: datetime) -> Report:
    """The report of *rows* (what the store read), computed without the store."""
    known = {i.id for i in rows.incidents}  # each query saw its own snapshot: keep what matches
    rows = replace(rows, escalations=tuple(e for e in rows.escalations if e.incident_id in known),
                   approvals=tuple(a for a in rows.approvals if a.incident_id in known))
    by_runbook = {i.id: i.runbook or NO_RUNBOOK for i in rows.incidents}
    by_team = {i.id: i.team for i in rows.incidents}
    return Report(since=rows.since, until=until,
                  total=_stats(rows.incidents, rows.escalations, rows.approvals),
                  runbooks=_groups(rows, by_runbook), teams=_groups(rows, by_team))


def build_report(store: Store, since: datetime) -> Report:
    """The report of the incidents opened at or after *since* (timezone-aware), until now."""
    until = datetime.now(UTC)
    return summarize(store.report_rows(since), until)


def report_as_data(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (times as RFC 3339 text, durations in seconds)."""
    top = report.top_escalating
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "total": asdict(report.total),
        "runbooks": [{"runbook": g.name, **asdict(g.stats)} for g in report.runbooks],
        "teams": [{"team": g.name, **asdict(g.stats)} for g in report.teams],
        "top_escalating_runbook": top.name if top else None,
    }
