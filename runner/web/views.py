"""What the dashboard's pages show, computed from records and the catalog without Flask.

Each page's rows are plain dataclasses: the templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from runner.catalog.models import Catalog, Runbook
from runner.durations import format_duration, human
from runner.records import Incident, IncidentStatus, RunRecord, RunStatus, TimelineEntry
from runner.report import Report, Spread, reason_label
from runner.web.charts import BarChart, bar_chart, seconds_text
from runner.web.rights import acts_on_run
from runner.web.tokens import Identity

_STATE_ORDER = {IncidentStatus.OPEN: 0, IncidentStatus.ACKNOWLEDGED: 1, IncidentStatus.RESOLVED: 2}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2, "info": 3}
# Runs that executed to an end: the ones a success rate is about (rejected and canceled runs
# never ran their steps through, so they say nothing about the runbook's fix).
EXECUTED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.INTERRUPTED)
RECENT_RUNS = 5


def age(since: datetime | None, now: datetime) -> str:
    """How long ago *since* was, as runbooks write durations ("12m5s")."""
    return "" if since is None else human(max((now - since).total_seconds(), 0.0))


def trigger_text(record: RunRecord) -> str:
    """What started a run, in a few words."""
    trigger = record.trigger
    if trigger.kind == "manual":
        return f"manual, by {trigger.actor}"
    labels = (trigger.alert or {}).get("labels") or {}
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return f"alert {name} ({trigger.actor})" if name else f"alert ({trigger.actor})"


@dataclass(frozen=True)
class IncidentRow:
    """One incident of a listing, with its last event and whether the viewer may acknowledge it."""

    incident: Incident
    age: str
    last_event: TimelineEntry | None
    can_act: bool


def incident_rows(incidents: Iterable[Incident], last: Mapping[str, TimelineEntry], who: Identity,
                  now: datetime) -> list[IncidentRow]:
    """Open incidents first, the most severe first among them, then the newest."""
    ordered = sorted(incidents, key=lambda i: (_STATE_ORDER[i.status], _SEVERITY_ORDER.get(i.severity, 9),
                                               -i.opened_at.timestamp()))
    return [IncidentRow(i, age(i.opened_at, now), last.get(i.id), who.acts_for(i.owner_team))
            for i in ordered]


@dataclass(frozen=True)
class RunRow:
    """One run of a listing, with what started it and whether the viewer may act on it."""

    run: RunRecord
    trigger: str
    age: str
    duration: str
    can_act: bool


def run_rows(records: Iterable[RunRecord], catalog: Catalog, who: Identity, now: datetime) -> list[RunRow]:
    """Rows for *records*, in their order."""
    return [RunRow(r, trigger_text(r), age(r.created_at, now),
                   "" if r.duration is None else seconds_text(r.duration),
                   acts_on_run(who, catalog, r))
            for r in records]


@dataclass(frozen=True)
class RunbookRow:
    """One runbook of the catalog: who owns it, what triggers it, its authority and its record."""

    runbook: Runbook
    triggers: tuple[str, ...]
    authority: tuple[str, ...]
    succeeded: int
    executed: int
    recent: tuple[RunRecord, ...]

    @property
    def success(self) -> str:
        """The success rate as text, with the counts it comes from."""
        if not self.executed:
            return "no run executed yet"
        return f"{round(100 * self.succeeded / self.executed)}% ({self.succeeded} of {self.executed})"


def authority_text(runbook: Runbook) -> tuple[str, ...]:
    """A runbook's authority in short phrases."""
    a = runbook.authority
    parts = [f"in {', '.join(a.environments)}", f"at most {a.max_hosts} host(s)",
             f"approval {a.approval.value.replace('_', ' ')}", f"timeout {format_duration(a.timeout)}"]
    if a.max_runs is not None:
        parts.append(f"{a.max_runs.count} run(s) per {format_duration(a.max_runs.per)}")
    if a.cooldown is not None:
        parts.append(f"cooldown {format_duration(a.cooldown)}")
    return tuple(parts)


def runbook_rows(catalog: Catalog, counts: Iterable[tuple[str, str, int]],
                 recent: Iterable[RunRecord]) -> list[RunbookRow]:
    """Every runbook with its success rate (of *counts*) and latest runs (of *recent*, newest first)."""
    succeeded: dict[str, int] = {}
    executed: dict[str, int] = {}
    for name, status, n in counts:
        if status in EXECUTED:
            executed[name] = executed.get(name, 0) + n
        if status == RunStatus.SUCCEEDED:
            succeeded[name] = succeeded.get(name, 0) + n
    latest: dict[str, list[RunRecord]] = {}
    for record in recent:
        runs = latest.setdefault(record.runbook, [])
        if len(runs) < RECENT_RUNS:
            runs.append(record)
    return [RunbookRow(rb, tuple(str(s) for s in rb.selectors), authority_text(rb), succeeded.get(name, 0),
                       executed.get(name, 0), tuple(latest.get(name, ())))
            for name, rb in sorted(catalog.runbooks.items())]


def spread_text(spread: Spread) -> str:
    """A median and 90th percentile as ``12m / 1h`` (``-`` when nothing was measured)."""
    if spread.median is None or spread.p90 is None:
        return "-"
    return f"{human(spread.median)} / {human(spread.p90)}"


def reasons_text(reasons: Mapping[str, int]) -> str:
    """Escalation reasons as ``failed 3, rejected (max_runs) 1``."""
    return ", ".join(f"{reason_label(kind)} {n}" for kind, n in reasons.items()) or "-"


def report_charts(report: Report) -> Sequence[BarChart]:
    """The report's small charts: escalations per runbook and why, MTTR per team."""
    escalations = bar_chart("Escalations by runbook", [
        (g.name, float(g.stats.escalations), str(g.stats.escalations)) for g in report.runbooks],
        "escalation")
    reasons = bar_chart("Why incidents escalated", [
        (reason_label(kind), float(n), str(n)) for kind, n in report.total.escalation_reasons.items()],
        "escalation")
    mttr = bar_chart("Time to resolve by team (median)", [
        (g.name, g.stats.mttr.median or 0.0, spread_text(g.stats.mttr) + " p50/p90") for g in report.teams],
        "resolved")
    return (escalations, reasons, mttr)
