"""The ``runbook`` command: a thin adapter from the shell to the core.

Exit codes: 0 ok, 1 the check or run failed, 2 bad usage (see runner.cli.root).
"""

from runner.cli import (  # noqa: F401  (each module registers its commands on main)
    catalog_cmds,
    config_cmds,
    incident_cmds,
    report_cmds,
    run_cmds,
    serve_cmds,
)
from runner.cli.root import main

__all__ = ["main"]
