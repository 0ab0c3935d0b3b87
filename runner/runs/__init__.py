"""Runs: their life cycle, execution through ansible-runner, workers, approvals."""
