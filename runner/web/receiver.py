"""Alert intake: ``POST /api/v1/alerts/alertmanager``, ``/grafana`` and ``/api/v1/alerts``.

Order matters: content type, size (Flask's MAX_CONTENT_LENGTH), authentication, JSON, the
source's format, then the alerts are committed to the store, and only then the 2xx. A store
that cannot commit answers 503, which Alertmanager retries (Grafana sends the group again at
its next group_interval); a malformed payload answers 400, which neither retries (retrying
would not make it valid).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, HTTPException, Unauthorized, UnsupportedMediaType

from runner.alerts.sources import parse
from runner.errors import AlertFormatError, AuthError, StoreError
from runner.records import RunStatus
from runner.runs.candidates import route
from runner.store.alerts import StoredAlert
from runner.web.state import runtime

blueprint = Blueprint("intake", __name__)
log = logging.getLogger("runner.web.intake")
ROUTES = {"alertmanager": "/api/v1/alerts/alertmanager", "grafana": "/api/v1/alerts/grafana",
          "generic": "/api/v1/alerts"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e400) is refused, not made infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def check_text(text: str, where: str) -> None:
    """BadRequest for text no database can store: NUL, or a lone surrogate (JSON's \\ud800)."""
    if "\x00" in text:
        raise BadRequest(f"{where}: NUL characters are not accepted")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{where}: a lone surrogate (\\ud800-\\udfff) is not text") from None


def _check_strings(value: object) -> None:
    """check_text on every key and string in a decoded JSON document."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item, "body")
        elif isinstance(item, dict):
            for key, inner in item.items():
                check_text(key, "body")
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def decode(body: bytes) -> object:
    """The JSON document of *body*, or BadRequest saying why not (the API shares this)."""
    try:
        data = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = str(e) if isinstance(e, ValueError) else "nested too deeply"
        raise BadRequest(f"body is not valid JSON: {reason}") from None
    _check_strings(data)
    return data


def receive(source: str) -> ResponseReturnValue:
    """Authenticate, parse and durably store one webhook request from *source*."""
    state = runtime()
    counted = state.metrics.requests
    try:
        response = _receive(source)
    except HTTPException as e:
        counted.labels(source, str(e.code)).inc()
        raise
    counted.labels(source, str(response[1])).inc()
    return response


def _receive(source: str) -> tuple[Response, int]:
    state = runtime()
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"send Content-Type: application/json, not {request.mimetype or 'none'}")
    body = request.get_data(cache=False)
    try:
        state.auth.check(request.headers, body)
    except AuthError as e:
        error = Unauthorized(str(e), www_authenticate=None)
        raise error from None
    try:
        batch = parse(source, decode(body))
    except AlertFormatError as e:
        raise BadRequest(str(e)) from None
    active = state.holder.active if state.holder.loaded else None
    try:
        runs, owners = route(active, batch)
    except Exception:  # routing must never cost an alert: store it, without a run, and say so in the log
        log.exception("routing failed; storing the alerts without runs")
        runs, owners = [], []
    try:
        stored = state.store.record_alerts(batch, candidates=runs, owners=owners)
    except StoreError as e:
        log.error("alerts not stored, answering 503: %.300s", e)  # the start: the driver's reason
        response = jsonify(error="the alert store is unavailable; retry later", status=503)
        response.headers["Retry-After"] = "5"
        return response, 503
    for s in stored:
        outcome = "repeat" if s.repeat_of is not None else "resolved" if s.status == "resolved" else "new"
        state.metrics.alerts.labels(source, outcome).inc()
        if s.run is not None:
            state.metrics.run_created(s.run)
            log.info("alert %s -> run %s of %s: %s", s.id, s.run.id, s.run.runbook, s.run.status.value)
    if any(s.run is not None and s.run.status is RunStatus.QUEUED for s in stored):
        state.queued()
    repeats = sum(1 for s in stored if s.repeat_of is not None)
    return jsonify(
        accepted=len(stored),
        repeats=repeats,
        truncated=batch.truncated,
        alerts=[_stored_as_data(s) for s in stored],
    ), 202


def _stored_as_data(stored: StoredAlert) -> dict[str, Any]:
    run = stored.run
    return {
        "id": stored.id, "fingerprint": stored.fingerprint, "status": stored.status,
        "repeat_of": stored.repeat_of,
        "run": None if run is None else {"id": run.id, "runbook": run.runbook, "status": run.status.value,
                                         "reason": run.reason},
        "canceled_runs": list(stored.canceled),
        "incident": stored.incident_id,
    }


def _endpoint(source: str) -> Any:
    def view() -> ResponseReturnValue:
        return receive(source)

    view.__name__ = f"receive_{source}"
    return view


for _source, _path in ROUTES.items():
    # Grafana's contact point can be set to PUT; Alertmanager always POSTs.
    blueprint.add_url_rule(_path, view_func=_endpoint(_source), methods=["POST", "PUT"])
