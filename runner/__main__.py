"""``python -m runner`` is the ``runbook`` command."""

from runner.cli import main

main()
