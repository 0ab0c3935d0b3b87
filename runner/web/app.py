"""``create_app(config)``: the Flask app, its blueprints (alert receiver, API, health and
metrics, dashboard) and the one handler that turns every error into JSON."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from runner.catalog.live import CatalogHolder
from runner.errors import RunbookError, StoreError
from runner.records import json_default
from runner.web import api, dashboard, health, receiver, session
from runner.web.metrics import Metrics
from runner.web.state import ERROR_CODES, AppConfig, Runtime

log = logging.getLogger("runner.web")


class _JSON(DefaultJSONProvider):
    """RFC 3339 times in every answer (Flask's default is the HTTP date format)."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return json_default(o)
        return DefaultJSONProvider.default(o)


def create_app(config: AppConfig) -> Flask:
    """The Flask app for *config* (one store per app)."""
    app = Flask("runner")
    app.json = _JSON(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    holder = config.catalog
    if holder is None:
        holder = CatalogHolder(config.runbooks_dir)
        holder.reload()
    app.extensions["runbook"] = Runtime(config, holder, Metrics(config.store, holder))
    app.register_blueprint(receiver.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(dashboard.blueprint)
    session.init_app(app, config.secret_key)

    @app.errorhandler(RunbookError)
    def runbook_error(error: RunbookError) -> ResponseReturnValue:
        code = ERROR_CODES.get(type(error), 500)
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
