"""The ``runbook`` command: a thin adapter from the shell to the core.

Exit codes: 0 ok, 1 the check or run failed, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from runner.catalog import Catalog, load_catalog
from runner.config import Settings
from runner.errors import RunbookError, UsageError


class Group(click.Group):
    """Turns library errors into one clean line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as e:
            fail(str(e), 2)
        except RunbookError as e:
            fail(str(e))
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as e:  # a bug of ours: say so plainly
            if os.environ.get("RUNBOOK_DEBUG"):
                raise
            fail(f"internal error: {type(e).__name__}: {e} (set RUNBOOK_DEBUG=1 for details)")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print *message* to stderr and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def emit_json(data: object) -> None:
    """Print *data* as indented JSON."""
    click.echo(json.dumps(data, indent=2, default=str))


def open_catalog(path: Path, strict: bool = True) -> Catalog:
    """Load the catalog at *path*; with *strict*, refuse to go on when it has problems."""
    catalog = load_catalog(path)
    if strict and catalog.problems:
        for p in catalog.problems:
            click.echo(str(p), err=True)
        fail(
            f"the catalog at {path} has {len(catalog.problems)} problem(s); "
            "run `runbook validate` and fix them first"
        )
    return catalog


def print_table(rows: Sequence[Sequence[str]], indent: str = "") -> None:
    """Rows (the first one the header) in columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def settings() -> Settings:
    """The settings the top-level options and the environment gave."""
    obj = click.get_current_context().find_root().obj
    return obj if isinstance(obj, Settings) else Settings.load()


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human text or JSON.",
)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runbook-runner")
@click.option("--runbooks", "runbooks_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="RUNBOOK_RUNBOOKS_DIR", help="The runbooks catalog (default ./runbooks).")
@click.option("--db", "db_url", envvar="RUNBOOK_DB_URL",
              help="Run store: sqlite:///FILE or postgresql://... (default: SQLite in the state dir).")
@click.pass_context
def main(ctx: click.Context, runbooks_dir: Path | None, db_url: str | None) -> None:
    """runbook-runner: runbooks as code, driven by alerts, within their authority.

    \b
    Example:
      runbook validate runbooks/
      runbook test runbooks/
      runbook route --alert alert.json
      runbook run disk-full-cleanup --param host=web-1 --env prod
    """
    ctx.obj = Settings.load(runbooks_dir, db_url)


from runner.cli import catalog_cmds, incident_cmds, report_cmds, run_cmds, serve_cmds  # noqa: E402,F401  (registers the commands)
