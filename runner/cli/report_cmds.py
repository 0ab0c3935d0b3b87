"""``runbook report``: what the incidents of a period say, per runbook and per owner team."""

from __future__ import annotations

import click

from runner.cli.root import emit_json, main, open_store, output_option, print_table
from runner.cli.run_cmds import parse_since
from runner.durations import human
from runner.report import NO_RUNBOOK, Group, Report, Spread, Stats, build_report, reason_label, report_as_data

_HEADER = ("ALERTS", "INCIDENTS", "FIXES HELD", "ESCALATIONS", "WHY", "MTTA p50/p90", "MTTR p50/p90",
           "APPROVAL WAIT p50/p90")


def _reasons(stats: Stats) -> str:
    return ", ".join(f"{reason_label(kind)} {n}" for kind, n in stats.escalation_reasons.items()) or "-"


def _spread(spread: Spread) -> str:
    if spread.median is None or spread.p90 is None:
        return "-"
    return f"{human(spread.median)} / {human(spread.p90)}"


def _table(title: str, groups: tuple[Group, ...]) -> None:
    rows = [(title, *_HEADER)]
    rows += [(g.name, str(g.stats.alerts_received), str(g.stats.incidents), str(g.stats.fixes_held),
              str(g.stats.escalations), _reasons(g.stats), _spread(g.stats.mtta), _spread(g.stats.mttr),
              _spread(g.stats.approval_wait)) for g in groups]
    print_table(rows)


def print_report(report: Report) -> None:
    """The report as text: a summary line, a table by runbook, a table by team, the top escalator."""
    total = report.total
    click.echo(f"Incidents opened since {report.since.isoformat(timespec='seconds')}: {total.incidents} "
               f"incident(s), {total.alerts_received} alert(s) received, {total.fixes_held} automated "
               f"fix(es) held, {total.escalations} escalation(s).")
    if not total.incidents:
        return
    click.echo()
    _table("RUNBOOK", report.runbooks)
    click.echo()
    _table("TEAM", report.teams)
    click.echo()
    top = report.top_escalating
    if top is not None:
        click.echo(f"Top escalating runbook: {top.name}, {top.stats.escalations} escalation(s) "
                   f"({_reasons(top.stats)}): the structural work for developers.")
    else:
        click.echo("No runbook escalated.")
    unmatched = next((g for g in report.runbooks if g.name == NO_RUNBOOK and g.stats.escalations), None)
    if unmatched is not None:
        click.echo(f"Alerts no runbook matches escalated {unmatched.stats.escalations} time(s): "
                   "a runbook for them would take that work off people.")


@main.command()
@click.option("--since", default="30d", show_default=True,
              help="Incidents opened since: a duration (30d, 12h) or an RFC 3339 time.")
@output_option
def report(since: str, output: str) -> None:
    """What the incidents of a period say, per runbook and per owner team.

    For the incidents opened since --since: alerts received, automated fixes that held,
    escalations and why, MTTA and MTTR, approval waits (median / 90th percentile). The
    runbooks that escalate most come first: they are the structural work for developers.

    \b
    Example:
      runbook report
      runbook report --since 7d -o json
    """
    start = parse_since(since)
    assert start is not None  # parse_since gives None only for None
    with open_store() as store:
        found = build_report(store, start)
    if output == "json":
        emit_json(report_as_data(found))
    else:
        print_report(found)
