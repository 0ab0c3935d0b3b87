"""Commands over the catalog: validate, test, route, list, show, codeowners."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from runner.alerts.files import read_alerts
from runner.catalog.codeowners import codeowners_lines, repo_root, splice
from runner.catalog.load import load_catalog
from runner.catalog.models import Catalog, Runbook
from runner.catalog.problems import Problem, display_path
from runner.cli.root import emit_json, fail, main, open_catalog, output_option, print_table, settings
from runner.durations import format_duration, parse_time
from runner.errors import AlertFormatError, YamlError
from runner.routing.cases import run_tests
from runner.routing.params import redact, redact_alert
from runner.routing.router import Route, Router

paths_argument = click.argument(
    "paths",
    nargs=-1,
    type=click.Path(exists=True, path_type=Path),
)


def _catalogs(paths: tuple[Path, ...]) -> list[Catalog]:
    from runner.catalog.load import find_root

    roots: dict[Path, None] = {}
    for path in paths or (settings().runbooks_dir,):
        roots[find_root(path)] = None
    return [load_catalog(root) for root in roots]


@main.command()
@paths_argument
@output_option
@click.option(
    "--check-codeowners",
    is_flag=True,
    help="Also fail when .github/CODEOWNERS is not what `runbook codeowners` prints.",
)
def validate(paths: tuple[Path, ...], output: str, check_codeowners: bool) -> None:
    """Check runbooks, owners and policy: shape (schema), then meaning.

    Every problem is reported, one line each: file:line: field.path: message.
    PATH is a catalog directory or files inside one (default: runbooks/).

    \b
    Example:
      runbook validate runbooks/
      runbook validate --output json runbooks/disk-full-cleanup.yaml
    """
    catalogs = _catalogs(paths)
    problems = [p for c in catalogs for p in c.problems]
    if check_codeowners:
        for cat in catalogs:
            problems.extend(_codeowners_problems(cat))
    if output == "json":
        emit_json(
            {
                "ok": not problems,
                "problems": [p.as_dict() for p in problems],
                "runbooks": sum(len(c.runbooks) for c in catalogs),
            }
        )
    else:
        for p in problems:
            click.echo(str(p))
        count = sum(len(c.runbooks) for c in catalogs)
        if problems:
            files = len({p.file for p in problems})
            click.echo(f"{len(problems)} problem(s) in {files} file(s)", err=True)
        else:
            click.echo(f"ok: {count} runbook(s) valid")
    if problems:
        raise SystemExit(1)


def _codeowners_problems(cat: Catalog) -> list[Problem]:
    repo = repo_root(cat.root)
    file = repo / ".github" / "CODEOWNERS"
    block = codeowners_lines(cat, repo)
    current = file.read_text(encoding="utf-8") if file.is_file() else ""
    if splice(current, block) != current:
        return [
            Problem(
                display_path(file),
                1,
                "",
                "CODEOWNERS is out of date with the runbooks' owners; run `runbook codeowners --write`",
            )
        ]
    return []


@main.command("test")
@paths_argument
@output_option
def test_cmd(paths: tuple[Path, ...], output: str) -> None:
    """Run every runbook's tests: route each sample alert and compare what must happen.

    \b
    Example:
      runbook test runbooks/
    """
    failed = 0
    report = []
    for cat in _catalogs(paths):
        if cat.problems:
            for p in cat.problems:
                click.echo(str(p), err=True)
            fail(f"{len(cat.problems)} validation problem(s); tests not run")
        results = run_tests(cat)
        failed += sum(not r.passed for r in results)
        report.extend(results)
    if output == "json":
        emit_json(
            [
                {"runbook": r.runbook, "case": r.case.name, "passed": r.passed, "failures": r.failures}
                for r in report
            ]
        )
    else:
        current = None
        for r in report:
            if r.runbook != current:
                current = r.runbook
                click.echo(f"{r.runbook}:")
            click.echo(f"  {'PASS' if r.passed else 'FAIL'}  {r.case.name}")
            for f in r.failures:
                click.echo(f"        {f}")
        verdict = "SUCCESS" if not failed else "FAILED"
        click.echo(f"{len(report) - failed} passed, {failed} failed")
        click.echo(f"Unit testing: {verdict}", err=True)
    if failed:
        raise SystemExit(1)


def _shown_labels(r: Route) -> dict[str, str]:
    """The alert's labels, with those feeding secret params of the matched runbook redacted."""
    return redact_alert(r.match.runbook, r.alert)[0] if r.match else r.alert.labels


def _route_dict(r: Route) -> dict[str, object]:
    d = r.decision
    return {
        "alert": {"labels": _shown_labels(r), "status": r.alert.status},
        "runbook": r.runbook.name if r.runbook else None,
        "owner": r.owner,
        "selector": str(r.match.selector) if r.match else None,
        "ambiguous": list(r.ambiguous),
        "params": redact(r.runbook, r.params) if r.runbook else {},
        "hosts": list(d.hosts) if d else [],
        "verdict": d.verdict.value if d else None,
        "reason": d.reason if d else None,
    }


@main.command()
@click.option(
    "--alert",
    "alert_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An Alertmanager webhook payload or one alert (JSON or YAML).",
)
@click.option("--at", "at_time", help="Route as if at this RFC 3339 time (for approval hours).")
@output_option
def route(alert_file: Path, at_time: str | None, output: str) -> None:
    """Show which runbook each alert maps to, why, its params and the authority verdict.

    \b
    Example:
      runbook route --alert docs/examples/alertmanager-webhook.json
      runbook route --alert alert.yaml --at 2026-03-03T03:00:00Z --output json
    """
    try:
        alerts = read_alerts(alert_file)
    except (AlertFormatError, YamlError) as e:
        fail(f"{alert_file}: {e}", 2)
    now = datetime.now(UTC)
    if at_time:
        try:
            now = parse_time(at_time)
        except ValueError as e:
            fail(f"--at: {e}", 2)
    router = Router(open_catalog(settings().runbooks_dir))
    routes = [router.route(a, now) for a in alerts]
    if output == "json":
        emit_json([_route_dict(r) for r in routes])
        return
    for i, r in enumerate(routes, 1):
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(_shown_labels(r).items()))
        click.echo(f"alert {i} ({r.alert.status}): {{{labels}}}")
        if r.match is None:
            why = " (the alert has no alertname: no runbook selects it)" if not r.alert.alertname else ""
            click.echo(f"  no runbook: owner {r.owner}{why}")
            continue
        click.echo(f"  runbook:  {r.match.runbook.name} (owner {r.owner})")
        click.echo(f"  because:  {r.match.selector}")
        if r.ambiguous:
            click.echo(f"  warning:  ambiguous between {', '.join(r.ambiguous)}")
        params = " ".join(f"{k}={v!r}" for k, v in redact(r.match.runbook, r.params).items())
        click.echo(f"  params:   {params or '(none)'}")
        if r.decision:
            if r.decision.hosts:
                click.echo(f"  hosts:    {', '.join(r.decision.hosts)}")
            click.echo(f"  verdict:  {r.decision.verdict.value}: {r.decision.reason}")


def _authority_summary(rb: Runbook) -> str:
    a = rb.authority
    parts = [",".join(a.environments), f"hosts<={a.max_hosts}"]
    if a.max_runs:
        parts.append(f"{a.max_runs.count}/{format_duration(a.max_runs.per)}")
    if a.approval.value != "none":
        parts.append(f"approval={a.approval.value}")
    parts.append(f"timeout={format_duration(a.timeout)}")
    return " ".join(parts)


@main.command("list")
@output_option
def list_cmd(output: str) -> None:
    """List the runbooks: name, owner, severity, alertnames, authority.

    \b
    Example:
      runbook list
      runbook --runbooks ../other-team/runbooks list --output json
    """
    cat = open_catalog(settings().runbooks_dir)
    rows = [
        (
            rb.name,
            rb.owner,
            rb.severity.value,
            ",".join(sorted({s.alertname for s in rb.selectors})),
            _authority_summary(rb),
        )
        for rb in sorted(cat.runbooks.values(), key=lambda r: r.name)
    ]
    if output == "json":
        keys = ("name", "owner", "severity", "alertnames", "authority")
        emit_json([dict(zip(keys, row, strict=True)) for row in rows])
        return
    print_table([("NAME", "OWNER", "SEVERITY", "ALERTNAMES", "AUTHORITY"), *rows])


@main.command()
@click.argument("name")
def show(name: str) -> None:
    """Show one runbook: owner, triggers, params, authority and steps.

    \b
    Example:
      runbook show disk-full-cleanup
    """
    cat = open_catalog(settings().runbooks_dir)
    rb = cat.runbooks.get(name)
    if rb is None:
        fail(f"no runbook named {name!r} (have: {', '.join(sorted(cat.runbooks))})", 2)
    team = cat.owners.teams[rb.owner] if cat.owners else None
    click.echo(f"{rb.name}: {rb.title}")
    click.echo(f"  file:       {display_path(rb.file)}")
    click.echo(f"  owner:      {rb.owner}" + (f" (primary {team.primary})" if team else ""))
    click.echo(f"  severity:   {rb.severity.value}")
    if rb.description:
        click.echo(f"  about:      {rb.description.strip()}")
    for sel in rb.selectors:
        click.echo(f"  trigger:    {sel}")
    for p in rb.params.values():
        src = p.source or "operator"
        extra = f" default={p.default!r}" if p.default is not None else ""
        click.echo(f"  param:      {p.name} ({p.type}, from {src}){extra}")
    t = rb.targets
    click.echo(
        f"  targets:    {'hosts from param ' + t.hosts_from if t.hosts_from else 'group ' + str(t.group)}"
    )
    click.echo(f"  authority:  {_authority_summary(rb)}")
    for label, steps in (("step", rb.steps), ("verify", rb.verify)):
        for s in steps:
            what = s.module or f"playbook {s.playbook}"
            click.echo(f"  {label + ':':11} {s.name} [{what}]")
    click.echo(f"  tests:      {len(rb.tests)}")


@main.command()
@click.option("--write", is_flag=True, help="Update .github/CODEOWNERS in place.")
def codeowners(write: bool) -> None:
    """Print CODEOWNERS lines giving each runbook file to its owner team.

    \b
    Example:
      runbook codeowners > /tmp/lines && runbook codeowners --write
    """
    cat = open_catalog(settings().runbooks_dir)  # a runbook that fails to load would lose its line
    repo = repo_root(cat.root)
    block = codeowners_lines(cat, repo)
    if not write:
        click.echo("\n".join(block))
        return
    file = repo / ".github" / "CODEOWNERS"
    current = file.read_text(encoding="utf-8") if file.is_file() else ""
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(splice(current, block), encoding="utf-8")
    click.echo(f"wrote {display_path(file)}")
