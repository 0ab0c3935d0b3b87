"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job: store and runbooks)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from runner.errors import RunbookError
from runner.store.migrate import head
from runner.web import app_config

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Alive: answers without touching anything else."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready: the store is reachable at the current schema and the runbooks load without problems."""
    config = app_config()
    checks: dict[str, str] = {}
    try:
        revision = config.store.revision()
        checks["store"] = "ok" if revision == head() else f"schema at {revision}, expected {head()}"
    except RunbookError as e:
        checks["store"] = str(e)
    catalog = current_app.extensions["runbook.catalog"]
    problems = len(catalog.problems)
    checks["runbooks"] = "ok" if not problems else f"{problems} validation problem(s) in {catalog.root}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
