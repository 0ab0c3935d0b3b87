"""The ``runbook`` group: its options, its error handling, and what every command shares.

Exit codes, for every command (``EXIT_CODES``): 0 ok; 1 the check or run failed, or the thing
is in a state that does not allow it (a run already finished); 2 bad usage: a wrong option or
value, a name that is not there, an action the actor may not take.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click

from runner.catalog.load import load_catalog
from runner.catalog.models import Catalog
from runner.config import Settings, default_db_url, state_dir, store_url
from runner.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ParamError,
    RunbookError,
    StoreError,
    UsageError,
)
from runner.records import json_default
from runner.store import Store

RUNBOOKS_HELP = ("The runbooks catalog, a directory (usually a git checkout). Default ./runbooks; "
                 "env RUNBOOK_RUNBOOKS_DIR.")
DB_HELP = ("The store: a SQLite file (FILE or sqlite:///FILE) or postgresql://USER@HOST/DB. Default: "
           "runbook.db in the state dir ($RUNBOOK_STATE_DIR, else ~/.local/state/runbook-runner); "
           "env RUNBOOK_DB_URL.")


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A command's own --runbooks/--db wins over the one given before the command, and the env."""
    if value is not None and param.name:
        root = ctx.find_root()
        base = root.obj if isinstance(root.obj, Settings) else Settings.load()
        if param.name == "db_url":
            root.obj = replace(base, db_url=store_url(value))
        else:
            root.obj = replace(base, runbooks_dir=value)
    return value


def _where_options() -> list[click.Option]:
    """--runbooks and --db, for every command: `runbook runs --db X` as well as `runbook --db X runs`."""
    return [
        click.Option(["--runbooks", "runbooks_dir"], type=click.Path(file_okay=False, path_type=Path),
                     metavar="DIR", expose_value=False, callback=_override, help=RUNBOOKS_HELP),
        click.Option(["--db", "db_url"], metavar="URL", expose_value=False, callback=_override,
                     help=DB_HELP),
    ]


EXIT_CODES: dict[type[RunbookError], int] = {  # the first class an error is an instance of decides
    UsageError: 2, ParamError: 2, NotFoundError: 2, ForbiddenError: 2, ConflictError: 1, RunbookError: 1,
}


def exit_code(error: RunbookError) -> int:
    """The exit code for *error*, from EXIT_CODES."""
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


class Group(click.Group):
    """Turns library errors into one clean line and an exit code, never a traceback.

    Every command added to it (and to its subgroups, of the same class) takes --runbooks and --db.
    """

    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register *cmd*, giving it the --runbooks and --db options."""
        if not any(p.name in ("runbooks_dir", "db_url") for p in cmd.params):
            cmd.params.extend(_where_options())
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunbookError as e:
            fail(str(e), exit_code(e))
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
    click.echo(json.dumps(data, indent=2, default=json_default))


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
    """The settings the options and the environment gave."""
    obj = click.get_current_context().find_root().obj
    return obj if isinstance(obj, Settings) else Settings.load()


def open_store() -> Store:
    """The store the settings name. The default's state directory is made on first use; a
    directory named in --db or RUNBOOK_DB_URL must exist (a typo must not start an empty store)."""
    url = settings().db_url
    if url == default_db_url():
        try:
            state_dir().mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the state directory {state_dir()}: {e.strerror} "
                             "(set RUNBOOK_STATE_DIR to a writable directory)") from e
    try:
        return Store(url)
    except StoreError as e:  # the URL itself is wrong (nothing is connected yet): bad usage
        raise UsageError(f"{e} (the store named by --db or RUNBOOK_DB_URL; without either, the "
                         "default is in the state directory)") from e


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
@click.option("--runbooks", "runbooks_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              envvar="RUNBOOK_RUNBOOKS_DIR", help=RUNBOOKS_HELP)
@click.option("--db", "db_url", envvar="RUNBOOK_DB_URL", metavar="URL", help=DB_HELP)
@click.pass_context
def main(ctx: click.Context, runbooks_dir: Path | None, db_url: str | None) -> None:
    """runbook-runner: runbooks as code, driven by alerts, within their authority.

    \b
    Example:
      runbook validate runbooks/
      runbook test runbooks/
      runbook route --alert docs/examples/alertmanager-webhook.json
      runbook run disk-full-cleanup --param host=web-1 --env prod
    """
    ctx.obj = Settings.load(runbooks_dir, db_url)
