"""The operator API: runbooks, runs, manual runs, approvals, cancels and reload.

Every endpoint needs a bearer token of the tokens file (``runbook token new``; see runner.web.tokens).
Viewers read; operators act on the runbooks of their teams; admins act on all and reload.
A forbidden manual run is recorded as a rejected run, so the attempt is on the record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, Forbidden, Unauthorized, UnsupportedMediaType

from runner.catalog.models import Runbook
from runner.durations import parse_since
from runner.errors import AuthError, ForbiddenError, NotFoundError
from runner.records import Incident, ReasonKind, RunStatus, Trigger, incident_as_data, record_as_data
from runner.runs import approvals
from runner.runs.candidates import rejected
from runner.runs.lifecycle import Request, runbook_named, submit
from runner.store.queue import Candidate
from runner.web import acts
from runner.web.receiver import check_text, decode
from runner.web.rights import may_act_for as _may_act_for
from runner.web.state import runtime
from runner.web.tokens import LOCAL_ADMIN, Identity, Role

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 500


def identity() -> Identity:
    """Who is calling, from the bearer token; 401 without a valid one."""
    state = runtime()
    tokens = state.config.tokens
    if tokens is None:
        if state.auth.insecure and not state.auth.configured:
            return LOCAL_ADMIN
        raise Unauthorized("the operator API is off: the server has no tokens file "
                           "(`runbook token new` makes one; restart the server)", www_authenticate=None)
    try:
        return tokens.identify(request.headers)
    except AuthError as e:
        raise Unauthorized(str(e), www_authenticate=None) from None


def _may_act(who: Identity, runbook: Runbook, action: str) -> None:
    _may_act_for(who, runbook.owner, f"{action} runbook {runbook.name}")


def _body() -> dict[str, Any]:
    """The JSON object in the request body ({} when there is none)."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"send Content-Type: application/json, not {request.mimetype or 'none'}")
    data = decode(raw)
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if (value is not None and not isinstance(value, kind)) or (kind is not bool and isinstance(value, bool)):
        raise BadRequest(f"{name}: expected {kind.__name__}")
    return value


def _runbook_data(runbook: Runbook, full: bool = False) -> dict[str, Any]:
    a = runbook.authority
    data: dict[str, Any] = {
        "name": runbook.name, "title": runbook.title, "owner": runbook.owner,
        "severity": runbook.severity.value, "environments": list(a.environments),
        "approval": a.approval.value, "idempotent": runbook.idempotent,
        "alertnames": sorted({s.alertname for s in runbook.selectors}),
    }
    if full:
        data["params"] = [{"name": p.name, "type": p.type, "required": p.required, "secret": p.secret,
                           "default": None if p.secret else p.default, "description": p.description}
                          for p in runbook.params.values()]
        rate = a.max_runs
        data["authority"] = {
            "max_hosts": a.max_hosts, "concurrency": a.concurrency, "timeout": a.timeout.total_seconds(),
            "cooldown": a.cooldown.total_seconds() if a.cooldown else None,
            "max_runs": {"count": rate.count, "per": rate.per.total_seconds()} if rate else None,
        }
        data["steps"] = [step.name for step in runbook.steps]
        data["verify"] = [step.name for step in runbook.verify]
    return data


@blueprint.get("/runbooks")
def list_runbooks() -> ResponseReturnValue:
    """Every runbook of the active catalog."""
    identity()
    active = runtime().holder.active
    runbooks = [_runbook_data(rb) for _, rb in sorted(active.catalog.runbooks.items())]
    return jsonify(revision=active.revision.commit, runbooks=runbooks)


@blueprint.get("/runbooks/<name>")
def show_runbook(name: str) -> ResponseReturnValue:
    """One runbook: params, authority, steps."""
    identity()
    return jsonify(_runbook_data(runbook_named(runtime().holder.active.catalog, name), full=True))


@blueprint.post("/runbooks/<name>/runs")
def start_run(name: str) -> ResponseReturnValue:
    """A manual run: ``{"params": {...}, "environment": "prod", "dry_run": false, "ask_approval": false}``."""
    who = identity()
    state = runtime()
    active = state.holder.active
    runbook = runbook_named(active.catalog, name)
    body = _body()
    fields = ("params", "environment", "dry_run", "ask_approval")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} ({', '.join(fields)})")
    params = _field(body, "params", dict, {})
    environment = _field(body, "environment", str, None)
    dry_run = _field(body, "dry_run", bool, False)
    ask_approval = _field(body, "ask_approval", bool, False)
    trigger = Trigger("manual", who.name)
    try:
        _may_act(who, runbook, "run")
    except ForbiddenError as e:  # on the record: who tried what
        attempt = rejected(runbook, trigger, f"forbidden: {e}", ReasonKind.FORBIDDEN, active.revision,
                           datetime.now(UTC))
        record = state.store.enqueue(Candidate(attempt))
        state.metrics.run_created(record)
        raise
    request_ = Request(name, trigger, params=params, environment=environment, dry_run=dry_run,
                       ask_approval=ask_approval)
    record = submit(state.store, active.catalog, request_, revision=active.revision).record
    state.metrics.run_created(record)
    if record.status is RunStatus.QUEUED:
        state.queued()
    return jsonify(record_as_data(record)), 201, {"Location": f"/api/v1/runs/{record.id}"}


def _listing_query(
    extra: str,
) -> tuple[dict[str, str], list[str] | None, datetime | None, int]:
    """A listing's query: *extra*, ``status`` (comma-separated), ``since`` and ``limit``, checked."""
    args = request.args.to_dict()
    allowed = (extra, "status", "since", "limit")
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r} ({', '.join(allowed)})")
    for name, value in args.items():
        check_text(value, f"query parameter {name}")
    status = [s for s in args.get("status", "").split(",") if s] or None
    return args, status, _since(args.get("since")), _limit(args.get("limit", "50"))


@blueprint.get("/runs")
def list_runs() -> ResponseReturnValue:
    """Runs newest first: ``?runbook=&status=a,b&since=1h|RFC3339&limit=50``."""
    identity()
    args, status, since, limit = _listing_query("runbook")
    records = runtime().store.list_runs(runbook=args.get("runbook") or None, status=status, since=since,
                                        limit=limit)
    return jsonify(runs=[record_as_data(r) for r in records])


@blueprint.get("/runs/<run_id>")
def show_run(run_id: str) -> ResponseReturnValue:
    """One run with its steps and timeline."""
    identity()
    return jsonify(record_as_data(approvals.get_run(runtime().store, run_id)))


def _decide(run_id: str, approve: bool) -> ResponseReturnValue:
    who, state = identity(), runtime()
    record = acts.run_to_act_on(state, who, run_id, acts.decide_action(approve))
    reason = _field(_body(), "reason", str, "") or ""
    return jsonify(record_as_data(acts.decide(state, who, record, approve=approve, reason=reason)))


@blueprint.post("/runs/<run_id>/approve")
def approve(run_id: str) -> ResponseReturnValue:
    """Approve a run awaiting approval (owner team or admin; not the person who asked for it)."""
    return _decide(run_id, True)


@blueprint.post("/runs/<run_id>/reject")
def reject(run_id: str) -> ResponseReturnValue:
    """Reject a run awaiting approval, with an optional ``{"reason": ...}``."""
    return _decide(run_id, False)


@blueprint.post("/runs/<run_id>/cancel")
def cancel(run_id: str) -> ResponseReturnValue:
    """Cancel a run not started yet, or ask the worker of a running one to stop it."""
    return jsonify(record_as_data(acts.cancel(runtime(), identity(), run_id))), 202


@blueprint.post("/reload")
def reload() -> ResponseReturnValue:
    """Reload the catalog from its checkout (admin); a revision that fails validation is refused."""
    who = identity()
    if who.role is not Role.ADMIN:
        raise Forbidden(f"{who.name} is not an admin: only admins reload the catalog")
    result = runtime().holder.reload()
    active = result.active
    body = {"ok": result.ok, "error": result.error, "changed": result.changed,
            "revision": active.revision.commit if active else None,
            "runbooks": len(active.catalog.runbooks) if active else 0}
    return jsonify(body), 200 if result.ok else 422


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_since(text)
    except ValueError as e:
        raise BadRequest(f"since: {e}") from None


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit: an integer from 1 to {MAX_LIMIT}")
    return int(text)


@blueprint.get("/incidents")
def list_incidents() -> ResponseReturnValue:
    """Incidents newest first: ``?status=open,acknowledged&team=&since=1d&limit=50``."""
    identity()
    args, status, since, limit = _listing_query("team")
    found = runtime().store.list_incidents(status=status, team=args.get("team") or None, since=since,
                                           limit=limit)
    return jsonify(incidents=[incident_as_data(i) for i in found])


def _incident(incident_id: str) -> Incident:
    found = runtime().store.get_incident(incident_id)
    if found is None:
        raise NotFoundError(f"no incident {incident_id}")
    return found


@blueprint.get("/incidents/<incident_id>")
def show_incident(incident_id: str) -> ResponseReturnValue:
    """One incident with its owner, alerts, runs and timeline."""
    identity()
    return jsonify(incident_as_data(_incident(incident_id)))


@blueprint.post("/incidents/<incident_id>/ack")
def acknowledge(incident_id: str) -> ResponseReturnValue:
    """Acknowledge an open incident (owner team or admin): someone is on it."""
    who = identity()
    incident = _incident(incident_id)
    _may_act_for(who, incident.owner_team, f"acknowledge incident {incident.id}")
    return jsonify(incident_as_data(runtime().store.acknowledge(incident.id, who.name)))


@blueprint.post("/incidents/<incident_id>/resolve")
def resolve(incident_id: str) -> ResponseReturnValue:
    """Resolve an incident by hand (owner team or admin), with an optional ``{"reason": ...}``."""
    who = identity()
    incident = _incident(incident_id)
    _may_act_for(who, incident.owner_team, f"resolve incident {incident.id}")
    reason = _field(_body(), "reason", str, "") or ""
    return jsonify(incident_as_data(runtime().store.resolve_incident(incident.id, who.name, reason)))
