"""The one error hierarchy of runbook-runner.

Library code raises these; only the CLI turns them into exit codes and only
the web layer turns them into HTTP responses.
"""

from __future__ import annotations

from pathlib import Path


class RunbookError(Exception):
    """Base of every error runbook-runner raises on purpose."""


class YamlError(RunbookError):
    """A file could not be read as strict YAML."""

    def __init__(self, file: Path, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


class CatalogError(RunbookError):
    """A catalog could not be loaded (no policy, no owners, bad layout)."""


class ParamError(RunbookError):
    """An alert or operator gave a value a runbook param does not accept."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"param {param}: {message}")
        self.param = param
        self.message = message


class AlertFormatError(RunbookError):
    """An alert payload does not have the shape of any supported format."""


class StoreError(RunbookError):
    """The run store could not read or write (database unreachable, schema outdated, bad id...)."""


class UsageError(RunbookError):
    """The request itself is wrong (unknown runbook, missing option): the CLI exits 2."""


class ConflictError(RunbookError):
    """The run is not in a state that allows the action (approving a finished run): HTTP 409."""


class ForbiddenError(RunbookError):
    """The actor may not do this (not in the owning team, approving their own request): HTTP 403."""


class NotFoundError(RunbookError):
    """No such run or runbook: HTTP 404, exit 2."""


class AuthError(RunbookError):
    """The request is not authenticated; the message says why (never echoing a secret): HTTP 401."""
