"""Incidents from the command line: list, show, acknowledge, resolve."""

from __future__ import annotations

import click

from runner.cli.root import emit_json, fail, main, open_store, output_option, print_table
from runner.cli.run_cmds import operator_name, parse_since
from runner.records import Incident, IncidentStatus, incident_as_data


def _when(incident: Incident) -> str:
    return incident.opened_at.isoformat(timespec="seconds")


@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice([s.value for s in IncidentStatus]), help="Only in this state.")
@click.option("--team", help="Only incidents this team owns.")
@click.option("--since", help="Only incidents opened since: a duration (1h, 2d) or an RFC 3339 time.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only the incidents' ids, one a line (for scripts).")
@output_option
@click.pass_context
def incidents(ctx: click.Context, status: str | None, team: str | None, since: str | None, limit: int,
              quiet: bool, output: str) -> None:
    """List incidents newest first, each with its owner team and owner.

    \b
    Example:
      runbook incidents --status open
      runbook incidents show 7be1c2
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_store() as store:
        found = store.list_incidents(status=status, team=team, since=parse_since(since), limit=limit)
    if quiet:
        for i in found:
            click.echo(i.id)
        return
    if output == "json":
        emit_json([incident_as_data(i) for i in found])
        return
    rows = [("ID", "STATUS", "SEVERITY", "TEAM", "OWNER", "OPENED", "TITLE")]
    rows += [(i.id[:12], i.status.value, i.severity, i.owner_team, i.owner, _when(i), i.title[:60])
             for i in found]
    print_table(rows)


@incidents.command("show")
@click.argument("incident_id")
@output_option
def incidents_show(incident_id: str, output: str) -> None:
    """One incident: owner, alerts, runs and timeline (an id's first characters are enough).

    \b
    Example:
      runbook incidents show 7be1c2
      runbook incidents show 7be1c2 -o json
    """
    with open_store() as store:
        incident = store.get_incident(incident_id)
    if incident is None:
        fail(f"no incident {incident_id!r}", 2)
    if output == "json":
        emit_json(incident_as_data(incident))
        return
    click.echo(f"incident {incident.id}  {incident.status.value}  {incident.severity}  {incident.title}")
    click.echo(f"  owner:    team {incident.owner_team}, {incident.owner}"
               + (f" (runbook {incident.runbook})" if incident.runbook else " (no runbook)"))
    click.echo(f"  opened:   {_when(incident)}")
    if incident.acknowledged_at:
        click.echo(f"  acked:    {incident.acknowledged_at.isoformat(timespec='seconds')} by "
                   f"{incident.acknowledged_by}")
    if incident.resolved_at:
        click.echo(f"  resolved: {incident.resolved_at.isoformat(timespec='seconds')}: {incident.resolution}")
    for run in incident.runs:
        click.echo(f"  run {run['id'][:12]}  {run['runbook']}  {run['status']}")
    click.echo("\ntimeline:")
    print_table([(e.at.isoformat(timespec="seconds"), e.event, e.detail) for e in incident.timeline], "  ")


def _act(action: str, incident_id: str, output: str, reason: str = "") -> None:
    with open_store() as store:
        if action == "ack":
            incident = store.acknowledge(incident_id, operator_name())
        else:
            incident = store.resolve_incident(incident_id, operator_name(), reason)
    if output == "json":
        emit_json(incident_as_data(incident))
    else:
        click.echo(f"incident {incident.id}: {incident.status.value}")


@main.command()
@click.argument("incident_id")
@output_option
def ack(incident_id: str, output: str) -> None:
    """Acknowledge an open incident, as $RUNBOOK_OPERATOR (or your login name).

    \b
    Example:
      runbook ack 7be1c2
      runbook ack 7be1c2 -o json
    """
    _act("ack", incident_id, output)


@main.command()
@click.argument("incident_id")
@click.option("--reason", default="", help="How it was resolved, for the record.")
@output_option
def resolve(incident_id: str, reason: str, output: str) -> None:
    """Resolve an incident by hand.

    \b
    Example:
      runbook resolve 7be1c2 --reason "disk replaced"
    """
    _act("resolve", incident_id, output, reason)
