"""The dashboard: server-rendered pages for incidents, runs, runbooks, approvals and the report.

A thin adapter like the API: each page reads the store and the active catalog, each form
calls the same core function the API calls (``runner.runs.approvals``, the store's acknowledge and
resolve) after the same team check (``runner.web.rights``). A session comes from logging in
with an operator token (``runner.web.session``); every POST carries the session's CSRF token.
Buttons appear only for those who may act, and the server refuses the others all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.wrappers import Response

from runner.durations import parse_since
from runner.errors import AuthError, NotFoundError, RunbookError, StoreError
from runner.records import Incident, IncidentStatus, RunStatus
from runner.report import build_report
from runner.runs.approvals import get_run
from runner.web import acts
from runner.web import session as sessions
from runner.web.charts import step_bars
from runner.web.rights import acts_on_run, may_act_for
from runner.web.state import ERROR_CODES, runtime
from runner.web.tokens import Identity
from runner.web.views import (
    incident_rows,
    reasons_text,
    report_charts,
    run_rows,
    runbook_rows,
    spread_text,
    trigger_text,
)

blueprint = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/assets")  # the app itself answers /static
REFRESH = 10  # seconds between redraws of a list page (app.config["DASHBOARD_REFRESH"] overrides)
LISTED = 200  # rows a list page shows at most
_PUBLIC = {"dashboard.login", "dashboard.static"}
_SECURITY_HEADERS = {
    # No inline script or style anywhere: the one script and the stylesheet are files of the package.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show alert data and outputs: keep them out of shared caches
}
_REPORT_SINCE = ("7d", "30d", "90d")


def who() -> Identity:
    """The logged-in identity (the guard below lets no one else past)."""
    identity = g.who
    assert isinstance(identity, Identity)
    return identity


@blueprint.before_request
def _guard() -> ResponseReturnValue | None:
    g.who = sessions.identity()
    if request.method == "POST":
        sessions.check_csrf()  # before anything else, the login form included
    if g.who is None and request.endpoint not in _PUBLIC:
        query = request.query_string.decode()
        return redirect(url_for("dashboard.login", next=request.path + (f"?{query}" if query else "")))
    return None


@blueprint.after_request
def _headers(response: Response) -> Response:
    if request.endpoint != "dashboard.static":
        response.headers.update(_SECURITY_HEADERS)
    return response


@blueprint.context_processor
def _context() -> dict[str, Any]:
    return {"who": g.get("who"), "csrf_token": sessions.csrf_token, "csrf_field": sessions.CSRF_FIELD,
            "can_log_in": sessions.can_log_in(), "trigger_text": trigger_text, "refresh": 0}


@blueprint.errorhandler(RunbookError)
def _runbook_error(error: RunbookError) -> ResponseReturnValue:
    code = ERROR_CODES.get(type(error), 500)
    text = str(error) if code != 500 and not isinstance(error, StoreError) else "the run store is unavailable"
    return render_template("error.html", code=code, message=text), code


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    return render_template("error.html", code=code, message=error.description), code


def _local(target: str | None, default: str) -> str:
    """*target* when it is a path on this site (never another host: no open redirect), else *default*."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def _refresh() -> int:
    from flask import current_app

    return int(current_app.config.get("DASHBOARD_REFRESH", REFRESH))


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form: an operator token in, a session cookie out."""
    target = _local(request.values.get("next"), url_for("dashboard.incidents"))
    if g.who is not None and request.method == "GET":
        return redirect(target)
    error, code = None, 200
    if request.method == "POST" and sessions.can_log_in():
        try:
            identity = sessions.log_in(request.form.get("token", ""))
        except AuthError:
            error, code = "That token is not valid.", 401
        else:
            flash(f"Logged in as {identity.name} ({identity.role.value}).")
            return redirect(target)
    return render_template("login.html", next=target, error=error, enabled=sessions.can_log_in()), code


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    sessions.log_out()
    return redirect(url_for("dashboard.login"))


@blueprint.get("/incidents")
@blueprint.get("/")  # registered first: the address links use
def incidents() -> ResponseReturnValue:
    """Incidents, the ones burning first; what waits for the viewer's approval above them."""
    state = runtime()
    team = request.args.get("team") or None
    now = datetime.now(UTC)
    burning = state.store.list_incidents(status=["open", "acknowledged"], team=team, limit=LISTED)
    resolved = state.store.list_incidents(status="resolved", team=team, limit=20)
    last = state.store.last_events([i.id for i in burning + resolved])
    catalog = state.holder.active.catalog
    pending = state.store.list_runs(status=RunStatus.AWAITING_APPROVAL, limit=LISTED)
    # Only what this person may decide: their team's runs, not the ones they asked for (four eyes).
    rows = run_rows(pending, catalog, who(), now)
    waiting = [r for r in rows if r.can_act and r.run.requester != who().name]
    teams = sorted(catalog.owners.teams) if catalog.owners else []
    return render_template("incidents.html", burning=incident_rows(burning, last, who(), now),
                           resolved=incident_rows(resolved, last, who(), now), waiting=waiting, teams=teams,
                           team=team, refresh=_refresh())


def _incident(incident_id: str) -> Incident:
    found = runtime().store.get_incident(incident_id)
    if found is None:
        raise NotFoundError(f"no incident {incident_id}")
    return found


@blueprint.get("/incidents/<incident_id>")
def incident(incident_id: str) -> ResponseReturnValue:
    """One incident: its timeline, alerts, runs and the context an escalation carries."""
    found = _incident(incident_id)
    bundle = runtime().store.incident_context(found.id)
    refresh = 0 if found.status is IncidentStatus.RESOLVED else _refresh()
    return render_template("incident.html", incident=found, escalation=bundle["escalation"],
                           context=bundle["context"], can_act=who().acts_for(found.owner_team),
                           refresh=refresh)


def _incident_action(incident_id: str, verb: str, done: str, act: Callable[[Incident], object]) -> Response:
    found = _incident(incident_id)
    may_act_for(who(), found.owner_team, f"{verb} incident {found.id}")
    act(found)
    flash(f"Incident {found.id[:12]} {done} by {who().name}.")
    return redirect(_local(request.form.get("next"), url_for("dashboard.incident", incident_id=found.id)))


@blueprint.post("/incidents/<incident_id>/ack")
def acknowledge(incident_id: str) -> ResponseReturnValue:
    """Acknowledge an open incident (owner team or admin): someone is on it, the escalation stops."""
    return _incident_action(incident_id, "acknowledge", "acknowledged",
                            lambda found: runtime().store.acknowledge(found.id, who().name))


@blueprint.post("/incidents/<incident_id>/resolve")
def resolve(incident_id: str) -> ResponseReturnValue:
    """Resolve an incident by hand, with an optional reason."""
    reason = request.form.get("reason", "").strip()
    return _incident_action(incident_id, "resolve", "resolved",
                            lambda found: runtime().store.resolve_incident(found.id, who().name, reason))


@blueprint.get("/runs")
def runs() -> ResponseReturnValue:
    """Runs newest first, by runbook and status."""
    state = runtime()
    runbook = request.args.get("runbook") or None
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in RunStatus}:
        raise BadRequest(f"unknown run status {status!r}")
    records = state.store.list_runs(runbook=runbook, status=status, limit=LISTED)
    catalog = state.holder.active.catalog
    return render_template("runs.html", rows=run_rows(records, catalog, who(), datetime.now(UTC)),
                           runbooks=sorted(catalog.runbooks), statuses=[s.value for s in RunStatus],
                           runbook=runbook, status=status, refresh=_refresh())


@blueprint.get("/runs/<run_id>")
def run(run_id: str) -> ResponseReturnValue:
    """One run: its steps drawn to scale, each step's output tail, its timeline."""
    state = runtime()
    record = get_run(state.store, run_id)
    can_act = acts_on_run(who(), state.holder.active.catalog, record)
    refresh = 0 if record.status.final else _refresh()
    return render_template("run.html", run=record, bars=step_bars(record), can_act=can_act, refresh=refresh)


def _decide(run_id: str, approve: bool) -> Response:
    verb, state = "approve" if approve else "reject", runtime()
    record = acts.run_to_act_on(state, who(), run_id, acts.decide_action(approve))
    reason = request.form.get("reason", "").strip()
    after = acts.decide(state, who(), record, approve=approve, reason=reason)
    flash(f"Run {after.id[:12]} of {after.runbook} {verb}d by {who().name}: now {after.status}.")
    return redirect(_local(request.form.get("next"), url_for("dashboard.run", run_id=after.id)))


@blueprint.post("/runs/<run_id>/approve")
def approve(run_id: str) -> ResponseReturnValue:
    """Approve a run awaiting approval (owner team or admin; not the one who asked for it)."""
    return _decide(run_id, True)


@blueprint.post("/runs/<run_id>/reject")
def reject(run_id: str) -> ResponseReturnValue:
    """Reject a run awaiting approval, with an optional reason."""
    return _decide(run_id, False)


@blueprint.post("/runs/<run_id>/cancel")
def cancel(run_id: str) -> ResponseReturnValue:
    """Cancel a run not started, or ask its worker to stop it."""
    after = acts.cancel(runtime(), who(), run_id)
    flash(f"Run {after.id[:12]}: cancel requested, now {after.status}.")
    return redirect(url_for("dashboard.run", run_id=after.id))


@blueprint.get("/approvals")
def approvals() -> ResponseReturnValue:
    """Runs awaiting approval, oldest first: the longest wait is the most urgent."""
    state = runtime()
    records = state.store.list_runs(status=RunStatus.AWAITING_APPROVAL, limit=LISTED)[::-1]
    rows = run_rows(records, state.holder.active.catalog, who(), datetime.now(UTC))
    return render_template("approvals.html", rows=rows, refresh=_refresh())


@blueprint.get("/runbooks")
def runbooks() -> ResponseReturnValue:
    """The active catalog: owners, triggers, authority, revision, recent runs and success rates."""
    state = runtime()
    active = state.holder.active
    rows = runbook_rows(active.catalog, state.store.status_counts(), state.store.list_runs(limit=LISTED))
    return render_template("runbooks.html", rows=rows, active=active)


@blueprint.get("/report")
def report() -> ResponseReturnValue:
    """What ``runbook report`` says, with small charts."""
    since = request.args.get("since", "30d")
    if since not in _REPORT_SINCE:
        raise BadRequest(f"since: one of {', '.join(_REPORT_SINCE)}")
    found = build_report(runtime().store, parse_since(since))
    return render_template("report.html", report=found, since=since, choices=_REPORT_SINCE,
                           charts=report_charts(found), spread=spread_text, reasons=reasons_text,
                           statuses=IncidentStatus)
