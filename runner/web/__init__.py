"""The HTTP surface: ``create_app(config)`` with blueprints for intake, API, health, metrics, dashboard.

A thin adapter, as the CLI is: it parses requests, calls one core function and renders the
result. Every error leaves as JSON ``{"error": ..., "status": ...}`` through one handler, except
on the dashboard's pages, which answer in HTML (see runner.web.dashboard).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

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
from runner.records import json_default

if TYPE_CHECKING:  # the module imports this one: only for the annotation
    from runner.web.metrics import Metrics
from runner.store import Store
from runner.web.auth import WebhookAuth
from runner.web.tokens import Tokens

MAX_BODY = 5 * 1024 * 1024  # Alertmanager groups up to our 1,000-alert limit fit well below this
log = logging.getLogger("runner.web")
_ERROR_CODES: dict[type[RunbookError], int] = {
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


class _JSON(DefaultJSONProvider):
    """RFC 3339 times in every answer (Flask's default is the HTTP date format)."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return json_default(o)
        return DefaultJSONProvider.default(o)


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


def create_app(config: AppConfig) -> Flask:
    """The Flask app for *config* (one store per app)."""
    from runner.web import api, dashboard, health, metrics, receiver, session

    app = Flask("runner")
    app.json = _JSON(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    holder = config.catalog
    if holder is None:
        holder = CatalogHolder(config.runbooks_dir)
        holder.reload()
    app.extensions["runbook"] = Runtime(config, holder, metrics.Metrics(config.store, holder))
    app.register_blueprint(receiver.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(dashboard.blueprint)
    session.init_app(app, config.secret_key)

    @app.errorhandler(RunbookError)
    def runbook_error(error: RunbookError) -> ResponseReturnValue:
        code = _ERROR_CODES.get(type(error), 500)
        if isinstance(error, StoreError):
            log.error("store unavailable: %s", error)
            return jsonify(error="the run store is unavailable; retry later", status=503), 503
        if code == 500:
            log.error("unexpected %s: %s", type(error).__name__, error)
            return jsonify(error="internal error", status=500), 500
        return jsonify(error=str(error), status=code), code

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        response = jsonify(error=error.description, status=error.code)
        return response, error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")  # the details stay in our log, never in the answer
        return jsonify(error="internal error", status=500), 500

    return app


def runtime() -> Runtime:
    """The running app's runtime."""
    from flask import current_app

    state = current_app.extensions["runbook"]
    assert isinstance(state, Runtime)
    return state

