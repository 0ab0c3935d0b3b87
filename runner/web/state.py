"""What every request handler reads: the app's configuration and its live parts (store, catalog,
metrics), and the table of HTTP codes for the error hierarchy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from runner.catalog.live import CatalogHolder
from runner.errors import (
    CatalogError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ParamError,
    RunbookError,
    StoreError,
    UsageError,
)
from runner.store import Store
from runner.web.auth import WebhookAuth
from runner.web.metrics import Metrics
from runner.web.tokens import Tokens

MAX_BODY = 5 * 1024 * 1024  # Alertmanager groups up to our 1,000-alert limit fit well below this
ERROR_CODES: dict[type[RunbookError], int] = {
    ParamError: 400, UsageError: 400, ForbiddenError: 403, NotFoundError: 404, ConflictError: 409,
    CatalogError: 503, StoreError: 503,
}


@dataclass(frozen=True)
class AppConfig:
    """What the app needs: where alerts are stored, who may post them and call the API, the catalog.

    Without *catalog*, the app loads *runbooks_dir* itself. Without *tokens*, the operator API
    answers 401 unless the webhook auth is the explicit insecure local mode.
    """

    store: Store
    auth: WebhookAuth
    runbooks_dir: Path = Path("runbooks")
    max_body: int = MAX_BODY
    catalog: CatalogHolder | None = None
    tokens: Tokens | None = None
    secret_key: str | None = None  # signs dashboard sessions; None: a key of this process only
    environ: Mapping[str, str] | None = None  # where channel secrets are read (/readyz); None: os.environ


@dataclass
class Runtime:
    """The app's live parts: the config, the active catalog and the metrics."""

    config: AppConfig
    holder: CatalogHolder
    metrics: Metrics
    on_queued: list[Callable[[], None]] = field(default_factory=list)  # e.g. wake this process's workers

    def queued(self) -> None:
        """Tell whoever listens that runs wait."""
        for listener in self.on_queued:
            listener()

    @property
    def store(self) -> Store:
        """The store."""
        return self.config.store

    @property
    def auth(self) -> WebhookAuth:
        """The intake's credentials."""
        return self.config.auth


def runtime() -> Runtime:
    """The running app's runtime."""
    state = current_app.extensions["runbook"]
    assert isinstance(state, Runtime)
    return state
