"""The HTTP surface: ``create_app(config)`` with blueprints for alert intake and health.

A thin adapter, as the CLI is: it parses requests, calls one core function and renders the
result. Every error leaves as JSON ``{"error": ..., "status": ...}`` through one handler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from runner.catalog import load_catalog
from runner.store import Store
from runner.web.auth import WebhookAuth

MAX_BODY = 5 * 1024 * 1024  # Alertmanager groups up to our 1,000-alert limit fit well below this
log = logging.getLogger("runner.web")


@dataclass(frozen=True)
class AppConfig:
    """What the app needs: where alerts are stored, who may post them, the catalog it serves."""

    store: Store
    auth: WebhookAuth
    runbooks_dir: Path = Path("runbooks")
    max_body: int = MAX_BODY


def create_app(config: AppConfig) -> Flask:
    """The Flask app for *config* (one store per app)."""
    from runner.web import health, intake

    app = Flask("runner")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.extensions["runbook"] = config
    app.extensions["runbook.catalog"] = load_catalog(config.runbooks_dir)  # reload comes later
    app.register_blueprint(intake.blueprint)
    app.register_blueprint(health.blueprint)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        response = jsonify(error=error.description, status=error.code)
        return response, error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")  # the details stay in our log, never in the answer
        return jsonify(error="internal error", status=500), 500

    return app


def app_config() -> AppConfig:
    """The running app's config."""
    from flask import current_app

    config = current_app.extensions["runbook"]
    assert isinstance(config, AppConfig)
    return config
