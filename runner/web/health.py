"""``/healthz`` (the process answers), ``/readyz`` (it can do its job: store and runbooks) and
``/metrics`` (Prometheus text format; what is counted is in runner.web.metrics).

``/readyz`` also says which notification channels can send from this process; one that is not
configured does not make the process unready (its messages are skipped, see
runner.notify.configuration).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from runner.errors import RunbookError
from runner.notify.configuration import channel_states
from runner.web.state import runtime

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Alive: answers without touching anything else."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready: the store answers at the current schema and a valid catalog revision is active.

    A refused reload does not make the process unready (the last good revision still serves);
    it shows under ``catalog.last_reload_error`` until a reload succeeds. ``channels`` gives each
    notification channel's state: "configured", "not configured: set VAR", "invalid: why".
    """
    state = runtime()
    checks: dict[str, str] = {}
    try:
        problem = state.store.schema_problem()  # a newer schema that still serves us is fine
        checks["store"] = "ok" if problem is None else problem
    except RunbookError as e:
        checks["store"] = str(e)
    holder = state.holder
    catalog: dict[str, Any] = {"source": str(holder.source), "last_reload_error": holder.error,
                               "reload_failures": holder.failures}
    if holder.loaded:
        active = holder.active
        checks["runbooks"] = "ok"
        catalog.update(revision=active.revision.commit, dirty=active.revision.dirty,
                       runbooks=len(active.catalog.runbooks), loaded_at=active.loaded_at)
    else:
        checks["runbooks"] = f"no valid catalog loaded: {holder.error}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks, "catalog": catalog}
    if holder.loaded:
        environ = state.config.environ if state.config.environ is not None else os.environ
        states = channel_states(holder.active.catalog.owners, environ)
        body["channels"] = {name: str(channel) for name, channel in states.items()}
    return jsonify(body), 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition."""
    return Response(generate_latest(runtime().metrics.registry), mimetype=CONTENT_TYPE_LATEST)
