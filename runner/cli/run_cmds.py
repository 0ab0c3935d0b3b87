"""Commands that execute and inspect runs: run, runs, runs show, db upgrade."""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

import click

from runner import durations
from runner.alerts.files import read_alerts
from runner.alerts.model import Alert
from runner.cli.root import (
    emit_json,
    fail,
    main,
    open_catalog,
    open_store,
    output_option,
    print_table,
    settings,
)
from runner.errors import (
    AlertFormatError,
    UsageError,
    YamlError,
)
from runner.records import RunRecord, RunStatus, StepRecord, Trigger, record_as_data
from runner.runs import approvals
from runner.runs.lifecycle import Request, prepare, run_here
from runner.store import Store

WAIT_POLL = 0.2  # seconds between looks at a run `runs show --wait` waits for


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param {pair!r} is not KEY=VALUE", 2)
        params[key.strip()] = value
    return params


def _read_alert(file: Path) -> Alert:
    try:
        alerts = read_alerts(file)
    except (AlertFormatError, YamlError) as e:
        fail(f"{file}: {e}", 2)
    if len(alerts) != 1:
        fail(f"{file}: holds {len(alerts)} alerts; give a file with one", 2)
    return alerts[0]


def _fmt_seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def _step_line(step: StepRecord) -> str:
    return f"[{step.kind} {step.index + 1}] {step.name} @ {step.host}: {step.status.value}"


def print_record(record: RunRecord, with_output: bool = False) -> None:
    """The run, its verdict and a table of its steps."""
    rev = record.revision
    revision = (rev.commit[:12] + (" (dirty)" if rev.dirty else "")) if rev.commit else "not in git"
    click.echo(f"run {record.id}  {record.runbook}  {record.status.value}"
               + ("  [dry run]" if record.dry_run else ""))
    click.echo(f"  trigger:   {record.trigger.kind} by {record.trigger.actor}")
    click.echo(f"  revision:  {revision}")
    click.echo(f"  env/hosts: {record.environment or '-'} / {', '.join(record.hosts) or '-'}")
    click.echo(f"  verdict:   {record.verdict}: {record.reason}")
    click.echo(f"  duration:  {_fmt_seconds(record.duration)}")
    if record.steps:
        rows = [("STEP", "HOST", "STATUS", "CHANGED", "RC", "RETRIES", "DURATION")]
        rows += [(f"{s.kind} {s.index + 1}: {s.name}", s.host, s.status.value, "yes" if s.changed else "no",
                  "-" if s.rc is None else str(s.rc), str(s.retries), _fmt_seconds(s.duration))
                 for s in record.steps]
        print_table(rows, indent="  ")
    if with_output:
        for s in record.steps:
            click.echo(f"\n--- {_step_line(s)}")
            if s.message:
                click.echo(f"message: {s.message}")
            if s.stdout:
                click.echo(s.stdout)
            if s.stderr:
                click.echo(f"stderr:\n{s.stderr}")
        if record.timeline:
            click.echo("\ntimeline:")
            for entry in record.timeline:
                click.echo(f"  {entry.at.isoformat(timespec='seconds')}  {entry.event:18} {entry.detail}")


@main.command()
@click.argument("name")
@click.option("--param", "-p", "param_pairs", multiple=True, metavar="KEY=VALUE",
              help="A param value (repeatable); wins over the alert's.")
@click.option("--alert", "alert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take params and environment from this alert (JSON or YAML).")
@click.option("--env", "environment", help="The environment to act in (default: the alert's label).")
@click.option("--dry-run", is_flag=True, help="Ansible check mode with diff: change nothing.")
@click.option("--ask-approval", is_flag=True,
              help="Record the run awaiting approval by another person (four eyes) even where authority "
                   "would let it run; a worker executes it once approved.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@output_option
def run(name: str, param_pairs: tuple[str, ...], alert_file: Path | None, environment: str | None,
        dry_run: bool, ask_approval: bool, yes: bool, output: str) -> None:
    """Run a runbook by hand, within its authority, and record every step.

    Shows the plan (hosts, steps, verdict) and asks before running when on a terminal.
    Exit 0 when the run succeeded, 1 otherwise.

    \b
    Example:
      runbook run disk-full-cleanup --param host=web-1 --param log_dir=/var/log/app --env prod
      runbook run rotate-oversized-file --alert docs/examples/file-too-large.json --dry-run --yes
      runbook run disk-full-cleanup --param host=web-2 --env prod --ask-approval
    """
    catalog = open_catalog(settings().runbooks_dir)
    alert = _read_alert(alert_file) if alert_file else None
    actor = operator_name()
    request = Request(name, trigger=_trigger(actor, alert), params=_parse_params(param_pairs),
                      alert=alert, environment=environment, dry_run=dry_run, ask_approval=ask_approval)
    prepared = prepare(catalog, request)
    runbook = catalog.runbooks[name]
    text = output == "text"
    if text:
        verdict = prepared.decision
        click.echo(f"{runbook.name}: {runbook.title}" + ("  [dry run]" if dry_run else ""))
        click.echo(f"  hosts:   {', '.join(verdict.hosts) or '-'} ({verdict.environment or 'no env'})")
        steps = [*runbook.steps, *(() if dry_run else runbook.verify)]
        for i, step in enumerate(steps, 1):
            kind = "verify" if i > len(runbook.steps) else "step"
            click.echo(f"  {kind} {i}: {step.name}")
        click.echo(f"  verdict: {verdict.verdict.value}: {verdict.reason}")
    if prepared.plan is not None and not yes and sys.stdin.isatty():
        if not text:  # JSON goes to stdout: show what would run where the question is asked
            click.echo(f"{runbook.name} on {', '.join(prepared.decision.hosts)} "
                       f"({prepared.decision.environment})" + (" [dry run]" if dry_run else ""), err=True)
        click.confirm("Run it?", abort=True, err=True)
    def progress(step: StepRecord) -> None:
        if text:
            click.echo(f"  {_step_line(step)}", err=True)

    with open_store() as store:
        final = run_here(store, catalog, prepared, on_step=progress)
    if final.started_at is None:  # authority, or the history limits only now, did not let it run
        asked = ask_approval and final.status is RunStatus.AWAITING_APPROVAL
        if text:
            reason = f": {final.reason}" if final.status is not prepared.record.status else ""
            click.echo(f"run {final.id} recorded as {final.status.value}{reason}")
            if final.status is RunStatus.AWAITING_APPROVAL:
                click.echo(f"another person approves it (`runbook approve {final.id[:12]}`); then a "
                           "worker (runbook serve or runbook worker) executes it", err=True)
        else:
            emit_json(record_as_data(final))
        raise SystemExit(0 if asked else 1)
    if text:
        click.echo()
        print_record(final)
    else:
        emit_json(record_as_data(final))
    raise SystemExit(0 if final.status.value == "succeeded" else 1)


def _trigger(actor: str, alert: Alert | None) -> Trigger:
    if alert is None:
        return Trigger("manual", actor)
    return Trigger("manual", actor, {"labels": alert.labels, "annotations": alert.annotations,
                                     "fingerprint": alert.fingerprint})


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return durations.parse_since(text)
    except ValueError as e:
        fail(f"--since: {e}; give a duration like 1h or an RFC 3339 time", 2)


@main.group(invoke_without_command=True)
@click.option("--runbook", "runbook_name", help="Only runs of this runbook.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]),
              help="Only runs in this status.")
@click.option("--since", help="Only runs created since: a duration (1h, 2d) or an RFC 3339 time.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only the runs' ids, one a line (for scripts).")
@output_option
@click.pass_context
def runs(ctx: click.Context, runbook_name: str | None, status: str | None, since: str | None, limit: int,
         quiet: bool, output: str) -> None:
    """List recent runs, newest first; `runs show ID` shows one with its steps' output.

    \b
    Example:
      runbook runs --runbook disk-full-cleanup --since 1d
      runbook runs show 3f2a9c
      runbook runs show $(runbook runs -q --limit 1)     # the newest run
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_store() as store:
        records = store.list_runs(runbook=runbook_name, status=status, since=parse_since(since), limit=limit)
    if quiet:
        for r in records:
            click.echo(r.id)
        return
    if output == "json":
        emit_json([record_as_data(r) for r in records])
        return
    rows = [("ID", "RUNBOOK", "STATUS", "TRIGGER", "CREATED", "DURATION")]
    for r in records:
        created = r.created_at.isoformat(timespec="seconds") if r.created_at else "-"
        rows.append((r.id[:12], r.runbook, r.status.value + (" (dry)" if r.dry_run else ""),
                     f"{r.trigger.kind}:{r.trigger.actor}", created, _fmt_seconds(r.duration)))
    print_table(rows)


@runs.command("show")
@click.argument("run_id")
@click.option("--output-tails/--no-output", "with_output", default=True,
              help="Print each step's output tail (--no-output: the step table and timeline only).")
@click.option("--wait", is_flag=True,
              help="While the run is queued or running, wait for it to end; then exit 0 if it succeeded, "
                   "1 if not.")
@output_option
def runs_show(run_id: str, with_output: bool, wait: bool, output: str) -> None:
    """Show one run: verdict, every step with status and output tail, and the timeline.

    \b
    Example:
      runbook runs show 3f2a9c
      runbook runs show 3f2a9c --no-output
      runbook runs show $(runbook runs -q --limit 1) --wait     # the newest, once it has ended
    """
    with open_store() as store:
        record = store.get_run(run_id)
        while wait and record is not None and record.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            time.sleep(WAIT_POLL)
            record = store.get_run(record.id)
    if record is None:
        fail(f"no run {run_id!r}", 2)
    if output == "json":
        emit_json(record_as_data(record))
    else:
        print_record(record, with_output=with_output)
    if wait and record.status is not RunStatus.SUCCEEDED:
        raise SystemExit(1)


def operator_name() -> str:
    return os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()


def _act(action: Callable[[Store], RunRecord], output: str) -> None:
    with open_store() as store:
        record = action(store)
    if output == "json":
        emit_json(record_as_data(record))
    else:
        click.echo(f"run {record.id}: {record.status.value}" + (" (cancel requested)"
                                                                 if record.cancel_requested else ""))


@main.command()
@click.argument("run_id")
@click.option("--reason", default="", help="Why, for the record.")
@output_option
def approve(run_id: str, reason: str, output: str) -> None:
    """Approve a run awaiting approval (as $RUNBOOK_OPERATOR or your user; not the requester's own).

    
    Example:
      runbook approve 3f2a9c --reason "checked the disk, go"
    """
    catalog = open_catalog(settings().runbooks_dir)
    _act(lambda s: approvals.decide(s, catalog, run_id, operator_name(), approve=True, reason=reason), output)


@main.command()
@click.argument("run_id")
@click.option("--reason", default="", help="Why, for the record.")
@output_option
def reject(run_id: str, reason: str, output: str) -> None:
    """Reject a run awaiting approval.

    
    Example:
      runbook reject 3f2a9c --reason "not during the freeze"
    """
    catalog = open_catalog(settings().runbooks_dir)
    _act(lambda s: approvals.decide(s, catalog, run_id, operator_name(), approve=False, reason=reason),
         output)


@main.command()
@click.argument("run_id")
@output_option
def cancel(run_id: str, output: str) -> None:
    """Cancel a queued run, or ask the worker executing it to stop it.

    
    Example:
      runbook cancel 3f2a9c
    """
    _act(lambda store: approvals.cancel(store, run_id, operator_name()), output)


@main.group()
def db() -> None:
    """Manage the run store's schema.

    \b
    Example:
      runbook --db postgresql://runbook@db/runbook db upgrade
    """


@db.command()
def upgrade() -> None:
    """Apply the store's migrations up to the newest (safe to run more than once).

    \b
    Example:
      runbook db upgrade
    """
    with open_store() as store:
        store.upgrade()
    click.echo("database is up to date")


MIN_RETENTION = timedelta(days=1)  # `--older-than 1m` means a minute: refuse what is surely a slip


@db.command()
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Remove what finished longer ago than this (at least 1d), e.g. 90d.")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@output_option
def prune(older_than: str, dry_run: bool, output: str) -> None:
    """Delete finished runs, resolved incidents and their alerts older than --older-than.

    Queued, running and awaiting runs, and open or acknowledged incidents, are never removed.
    It deletes in small transactions: safe to run while receivers and workers are up.

    \b
    Example:
      runbook db prune --older-than 90d --dry-run
      runbook db prune --older-than 90d
    """
    try:
        age = durations.parse_duration(older_than)
    except ValueError as e:
        raise UsageError(f"--older-than: {e}") from None
    if age < MIN_RETENTION:
        raise UsageError(f"--older-than {older_than} is less than a day: give at least 1d")
    with open_store() as store:
        pruned = store.prune(age, dry_run=dry_run)
    if output == "json":
        emit_json({"dry_run": dry_run, "older_than": older_than, **asdict(pruned)})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {pruned.runs} run(s), {pruned.incidents} incident(s) with {pruned.messages} "
               f"message(s), {pruned.alerts} alert(s) older than {older_than}")
