"""``runbook config``: where this command finds the runbooks and keeps its data, and why."""

from __future__ import annotations

import os
from pathlib import Path

import click

from runner.cli.root import emit_json, main, output_option, print_table, settings
from runner.config import default_db_url, state_dir, store_url
from runner.store.engine import shown_url
from runner.web.tokens import tokens_file

KEYS = ("runbooks", "store", "state_dir", "tokens_file")


def _source(value: object, default: object, variable: str, from_env: object) -> str:
    """Which of default, environment variable and option gave *value*."""
    if value == default:
        return "default"
    return f"${variable}" if os.environ.get(variable) and value == from_env else "option"


@main.command("config")
@click.argument("key", required=False, type=click.Choice(KEYS))
@output_option
def config_cmd(key: str | None, output: str) -> None:
    """Show where the runbooks are read and where runs, incidents and tokens are kept, and which
    option, environment variable or default decided each. With KEY, print that value alone.

    \b
    Example:
      runbook config
      runbook --db /tmp/demo.db config store
      runbook config state_dir
    """
    cfg = settings()
    tokens = tokens_file()
    env_db = os.environ.get("RUNBOOK_DB_URL")
    values: dict[str, tuple[str, str]] = {
        "runbooks": (str(cfg.runbooks_dir), _source(cfg.runbooks_dir, Path("runbooks"),
                                                    "RUNBOOK_RUNBOOKS_DIR",
                                                    Path(os.environ.get("RUNBOOK_RUNBOOKS_DIR", "")))),
        "store": (shown_url(cfg.db_url), _source(cfg.db_url, default_db_url(), "RUNBOOK_DB_URL",
                                              store_url(env_db) if env_db else None)),
        "state_dir": (str(state_dir()), "$RUNBOOK_STATE_DIR" if os.environ.get("RUNBOOK_STATE_DIR")
                      else "$XDG_STATE_HOME" if os.environ.get("XDG_STATE_HOME") else "default"),
        "tokens_file": (str(tokens), "$RUNBOOK_TOKENS_FILE" if os.environ.get("RUNBOOK_TOKENS_FILE")
                        else "default" + ("" if tokens.is_file() else ", not created yet")),
    }
    if key is not None:
        if output == "json":
            emit_json(values[key][0])
        else:
            click.echo(values[key][0])
        return
    if output == "json":
        emit_json({name: {"value": value, "from": source} for name, (value, source) in values.items()})
        return
    print_table([("SETTING", "VALUE", "FROM"),
                 *((name, value, source) for name, (value, source) in values.items())])
