"""The dashboard through Flask's test client, on a real store and a git catalog: login and the
session cookie, CSRF, who sees which buttons and who is refused, and what each page says.

The same pages in a real browser against a real server: tests/browser/.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from runner.catalog.live import CatalogHolder
from runner.records import IncidentStatus, RunStatus
from runner.store import Store
from runner.web import AppConfig, create_app
from runner.web.auth import WebhookAuth
from runner.web.tokens import Tokens
from tests.integration.web.test_service import (
    WEBHOOK,
    alertmanager_group,
    catalog_repo,  # noqa: F401  (a fixture)
    token_of,
    tokens_file,
)

SECRET_KEY = "dashboard-test-key-0123456789abcdef"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Dash:
    """An app on a real store and catalog, and what the tests need to drive it."""

    app: Flask
    store: Store
    tokens: Path

    def client(self, who: str | None = None) -> FlaskClient:
        """A browser-like client (its own cookie jar), logged in as *who* when given."""
        client = self.app.test_client()
        if who is not None:
            answer = login(client, token_of(who))
            assert answer.status_code == 302, answer.text
        return client

    def alert(self, alertname: str, instance: str, directory: Path, **extra: Any) -> dict[str, Any]:
        """Post an Alertmanager webhook; the stored alert."""
        body = alertmanager_group(alertname, instance, directory, **extra)
        answer = self.app.test_client().post("/api/v1/alerts/alertmanager", json=body,
                                             headers={"Authorization": f"Bearer {WEBHOOK}"})
        assert answer.status_code == 202, answer.text
        stored: dict[str, Any] = answer.json["alerts"][0]  # type: ignore[index]
        return stored

    def manual_run(self, who: str, runbook: str, directory: Path) -> dict[str, Any]:
        """Ask for a run through the API, as *who*."""
        body = {"params": {"host": "web-1", "dir": str(directory)}, "environment": "staging"}
        answer = self.app.test_client().post(f"/api/v1/runbooks/{runbook}/runs", json=body,
                                             headers={"Authorization": f"Bearer {token_of(who)}"})
        assert answer.status_code == 201, answer.text
        run: dict[str, Any] = answer.json  # type: ignore[assignment]
        return run


def csrf_of(page: TestResponse) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def login(client: FlaskClient, token: str) -> TestResponse:
    """Log in through the form, as a person does: read the form, post it with its CSRF token."""
    form = client.get("/login")
    return client.post("/login", data={"token": token, "csrf_token": csrf_of(form), "next": "/"})


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None,
         csrf: str | None = "page") -> TestResponse:
    """POST a dashboard form; *csrf* "page" takes the token from the dashboard's front page."""
    fields = dict(data or {})
    if csrf == "page":
        fields["csrf_token"] = csrf_of(client.get("/"))
    elif csrf is not None:
        fields["csrf_token"] = csrf
    return client.post(path, data=fields)


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("runbook_session")
    assert cookie is not None
    return cookie.value


def decoded(cookie: str) -> str:
    """What a Flask session cookie carries (signed, not encrypted: anyone holding it can read it)."""
    payload = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode()


@pytest.fixture
def dash(catalog_repo: Path, sqlite_store_url: str, tmp_path: Path) -> Iterator[Dash]:  # noqa: F811
    store = Store(sqlite_store_url)
    store.upgrade()
    holder = CatalogHolder(catalog_repo)
    assert holder.reload().ok
    file = tokens_file(tmp_path)
    config = AppConfig(store=store, auth=WebhookAuth(token=WEBHOOK), catalog=holder,
                       tokens=Tokens.load(file), secret_key=SECRET_KEY)
    try:
        yield Dash(create_app(config), store, file)
    finally:
        holder.close()
        store.close()


def test_login_gives_a_session_cookie_with_its_flags_and_never_the_token(dash: Dash) -> None:
    client = dash.client()
    answer = client.get("/runs?status=failed")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=/runs?status%3Dfailed"
    form = client.get("/login")
    assert 'type="password"' in form.text and '<label for="token">Operator token</label>' in form.text

    assert client.post("/login", data={"token": token_of("alice")}).status_code == 403  # no CSRF token
    wrong = client.post("/login", data={"token": "nope", "csrf_token": csrf_of(form)})
    assert wrong.status_code == 401 and "That token is not valid." in wrong.text

    answer = client.post("/login", data={"token": token_of("alice"), "csrf_token": csrf_of(form),
                                         "next": "/runs?status=failed"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/runs?status=failed"
    set_cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    carried = decoded(session_cookie(client))
    assert '"who":"alice"' in carried and token_of("alice") not in carried
    page = client.get("/")
    assert page.status_code == 200 and "alice <span class=\"muted\">(operator: platform-ops)" in page.text
    assert csrf_of(page) != csrf_of(form)  # a login starts a new session, with a new CSRF token

    # Another host as "next" is not followed: no open redirect through the login form.
    other = dash.client()
    answer = other.post("/login", data={"token": token_of("bob"), "csrf_token": csrf_of(other.get("/login")),
                                        "next": "//evil.example/x"})
    assert answer.headers["Location"] == "/"

    assert post(client, "/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_the_cookie_is_secure_over_tls(dash: Dash) -> None:
    client = dash.client()
    tls = "https://localhost"
    form = client.get("/login", base_url=tls)
    fields = {"token": token_of("alice"), "csrf_token": csrf_of(form)}
    answer = client.post("/login", data=fields, base_url=tls)
    assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]


def test_a_session_ends_when_its_token_is_removed_or_replaced(dash: Dash, tmp_path: Path) -> None:
    client = dash.client("alice")
    assert client.get("/").status_code == 200
    cookie = session_cookie(client)

    # The same key, a tokens file where alice has another token: her old session is worth nothing.
    text = dash.tokens.read_text()
    rotated = tmp_path / "rotated.yaml"
    from runner.web.tokens import hash_token

    rotated.write_text(text.replace(hash_token(token_of("alice")), hash_token("a-new-token-for-alice")))
    config = AppConfig(store=dash.store, auth=WebhookAuth(token=WEBHOOK), catalog=dash.app.extensions[
        "runbook"].holder, tokens=Tokens.load(rotated), secret_key=SECRET_KEY)
    other = create_app(config).test_client()
    other.set_cookie("runbook_session", cookie)
    assert other.get("/").status_code == 302
    # ...while in the process that still has the old file, it goes on.
    assert client.get("/").status_code == 200


def test_the_pages_show_incidents_runs_and_runbooks_with_alert_data_escaped(
    dash: Dash, tmp_path: Path
) -> None:
    stored = dash.alert("TouchMe", "web-1:9100", tmp_path,
                        annotations={"summary": "<script>alert('x')</script> disk full"})
    unmatched = dash.alert("NothingMatches", "db-1:9100", tmp_path)
    client = dash.client("alice")

    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert "Burning: 2 open or acknowledged" in page.text
    assert page.text.count("platform-ops / alice") == 2
    assert "<strong>run queued</strong>" in page.text  # the last event of the matched incident
    assert page.text.count(">Acknowledge<span class=\"vh\">") == 2
    assert 'data-refresh="10"' in page.text

    incident = client.get(f"/incidents/{stored['incident']}")
    assert incident.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; disk full" in incident.text
    assert "<script>alert" not in incident.text
    for event in ("opened", "owner assigned", "run queued"):
        assert f'<strong class="event">{event}</strong>' in incident.text
    assert f"/runs/{stored['run']['id']}" in incident.text
    assert "team platform-ops, primary alice (runbook touch)" in incident.text
    assert "<dt>instance</dt><dd>web-1:9100</dd>" in incident.text  # the context: the alert's labels

    page = client.get(f"/incidents/{unmatched['incident']}")
    assert "none matches" in page.text and "No run: automation did nothing" in page.text

    runs = client.get("/runs")
    assert "alert TouchMe (alertmanager)" in runs.text and "badge-queued" in runs.text
    assert client.get("/runs?status=failed").text.count("<tr>") == 0
    assert client.get("/runs?status=bogus").status_code == 400

    run = client.get(f"/runs/{stored['run']['id'][:8]}")  # a prefix, as in the CLI
    assert run.status_code == 200 and "No step has started." in run.text
    assert "Cancel run" in run.text  # alice acts for platform-ops, which owns touch

    catalog = client.get("/runbooks")
    head = dash.app.extensions["runbook"].holder.active.commit
    assert f"<code>{head}</code>" in catalog.text
    assert "<code>{alertname=&#34;ApproveMe&#34;}</code>" in catalog.text
    assert "approval required" in catalog.text and "no run executed yet" in catalog.text

    missing = client.get("/runs/zzzzzzzz")
    assert missing.status_code == 404 and "no run zzzzzzzz" in missing.text and "<h1>404" in missing.text


def test_an_alert_without_alertname_reads_as_such_on_its_incident(dash: Dash) -> None:
    nameless = {"labels": {"instance": "db-1", "env": "prod"}}
    answer = dash.app.test_client().post("/api/v1/alerts", json=nameless,
                                         headers={"Authorization": f"Bearer {WEBHOOK}"})
    assert answer.status_code == 202, answer.text
    incident_id = answer.json["alerts"][0]["incident"]  # type: ignore[index]
    page = dash.client("alice").get(f"/incidents/{incident_id}")
    assert page.status_code == 200
    assert "(no alertname) {env=&#34;prod&#34;, instance=&#34;db-1&#34;}" in page.text  # the title
    assert "<tr><td>(no alertname)</td>" in page.text  # the alerts table
    assert "<h3>Alert (no alertname) (firing)</h3>" in page.text  # the context


def test_a_viewer_and_another_team_see_no_buttons_and_are_refused(dash: Dash, tmp_path: Path) -> None:
    incident_id = dash.alert("TouchMe", "web-1:9100", tmp_path)["incident"]
    waiting = dash.manual_run("carol", "approve-me", tmp_path)
    vic = dash.client("vic")
    page = vic.get(f"/incidents/{incident_id}")
    assert page.status_code == 200
    assert "Acknowledge</button>" not in page.text and "Resolve by hand" not in page.text
    queue = vic.get("/approvals")
    assert waiting["id"][:12] in queue.text and "Approve<span" not in queue.text
    assert "Only its owner team (or an admin) decides." in queue.text

    # The viewer's own valid CSRF token does not make the POST allowed.
    refused = post(vic, f"/incidents/{incident_id}/ack")
    assert refused.status_code == 403 and "vic (viewer; no team) may not acknowledge" in refused.text
    assert post(vic, f"/runs/{waiting['id']}/approve").status_code == 403
    # Another team's operator: no buttons, and refused too.
    carol = dash.client("carol")
    assert "Acknowledge</button>" not in carol.get(f"/incidents/{incident_id}").text
    assert post(carol, f"/incidents/{incident_id}/ack").status_code == 403
    # An operator of the right team has the buttons, but a forged form (no or a wrong CSRF token) fails.
    alice = dash.client("alice")
    page = alice.get(f"/incidents/{incident_id}")
    assert "Acknowledge</button>" in page.text and "Resolve by hand" in page.text
    assert post(alice, f"/incidents/{incident_id}/ack", csrf=None).status_code == 403
    assert post(alice, f"/incidents/{incident_id}/ack", csrf=csrf_of(vic.get("/"))).status_code == 403
    assert "CSRF token is missing or wrong" in post(alice, f"/incidents/{incident_id}/ack", csrf="x").text

    found = dash.store.get_incident(incident_id)
    assert found is not None and found.status is IncidentStatus.OPEN
    run = dash.store.get_run(waiting["id"])
    assert run is not None and run.status is RunStatus.AWAITING_APPROVAL


def test_approve_and_reject_from_the_queue_with_four_eyes(dash: Dash, tmp_path: Path) -> None:
    first = dash.manual_run("carol", "approve-me", tmp_path)
    second = dash.manual_run("carol", "approve-me", tmp_path)
    carol = dash.client("carol")
    assert "Waiting for you" not in carol.get("/").text  # her own runs wait for someone else
    queue = carol.get("/approvals")
    assert queue.text.count("You asked for this run: someone else approves it (four eyes).") == 2
    refused = post(carol, f"/runs/{first['id']}/approve")
    assert refused.status_code == 403 and "four eyes: carol requested run" in refused.text

    dave = dash.client("dave")
    front = dave.get("/")
    assert "Waiting for you" in front.text and "2 run(s) await your approval" in front.text
    answer = post(dave, f"/runs/{first['id']}/approve", {"reason": "looks right", "next": "/approvals"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/approvals"
    flashed = dave.get("/approvals")
    assert f"Run {first['id'][:12]} of approve-me approved by dave: now queued." in flashed.text
    answer = post(dave, f"/runs/{second['id']}/reject", {"reason": "not during the freeze"})
    assert answer.headers["Location"] == f"/runs/{second['id']}"

    approved, rejected = dash.store.get_run(first["id"]), dash.store.get_run(second["id"])
    assert approved is not None and (approved.status, approved.decided_by) == (RunStatus.QUEUED, "dave")
    assert rejected is not None and rejected.reason == "rejected by dave: not during the freeze"
    assert post(dave, f"/runs/{first['id']}/approve").status_code == 409  # decided already
    assert "No run awaits approval." in dave.get("/approvals").text


def test_acknowledge_then_resolve_an_incident(dash: Dash, tmp_path: Path) -> None:
    incident_id = dash.alert("TouchMe", "web-1:9100", tmp_path)["incident"]
    bob = dash.client("bob")
    answer = post(bob, f"/incidents/{incident_id}/ack", {"next": "/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    front = bob.get("/")
    assert f"Incident {incident_id[:12]} acknowledged by bob." in front.text
    assert "badge-acknowledged" in front.text and "by bob" in front.text
    assert ">Acknowledge<span" not in front.text  # acknowledged: nothing more to acknowledge
    answer = post(bob, f"/incidents/{incident_id}/resolve", {"reason": "disk replaced"})
    assert answer.headers["Location"] == f"/incidents/{incident_id}"
    page = bob.get(answer.headers["Location"])
    assert "by hand, by bob: disk replaced" in page.text and 'data-refresh="0"' in page.text
    assert "Nothing is burning." in bob.get("/").text
    found = dash.store.get_incident(incident_id)
    assert found is not None and found.status is IncidentStatus.RESOLVED and found.acknowledged_by == "bob"


def test_the_report_draws_its_figures_as_inline_svg(dash: Dash, tmp_path: Path) -> None:
    dash.manual_run("carol", "approve-me", tmp_path)  # a manual run: no incident, nothing to report
    dash.alert("ApproveMe", "web-1:9100", tmp_path)  # awaits approval: its incident escalates
    dash.alert("TouchMe", "web-1:9100", tmp_path)
    page = dash.client("vic").get("/report?since=7d")
    assert page.status_code == 200
    assert "<strong>2</strong> incident(s)" in page.text and "<strong>1</strong> escalation(s)" in page.text
    assert "Top escalating runbook: <strong>approve-me</strong>" in page.text
    svg = page.text[page.text.index('<figcaption id="chart-1">'):page.text.index('<figcaption id="chart-2">')]
    assert "Escalations by runbook" in svg and '<svg viewBox="0 0 600' in svg
    assert "<title>approve-me: 1</title>" in svg and "<title>touch: 0</title>" in svg
    assert "<title>awaiting approval: 1</title>" in page.text  # why it escalated
    assert dash.client("vic").get("/report?since=1y").status_code == 400


def test_insecure_local_mode_needs_no_login_but_forms_still_need_the_csrf_token(
    catalog_repo: Path, sqlite_store_url: str, tmp_path: Path  # noqa: F811
) -> None:
    store = Store(sqlite_store_url)
    store.upgrade()
    holder = CatalogHolder(catalog_repo)
    holder.reload()
    app = create_app(AppConfig(store=store, auth=WebhookAuth(insecure=True), catalog=holder))
    try:
        client = app.test_client()
        page = client.get("/")
        assert page.status_code == 200 and "local <span class=\"muted\">(admin)" in page.text
        assert "Log out" not in page.text
        body = alertmanager_group("TouchMe", "web-1:9100", tmp_path)
        incident_id = client.post("/api/v1/alerts/alertmanager", json=body).json["alerts"][0]["incident"]  # type: ignore[index]
        assert post(client, f"/incidents/{incident_id}/ack", csrf=None).status_code == 403
        assert post(client, f"/incidents/{incident_id}/ack").status_code == 302
        assert client.get("/login").status_code == 302  # everyone is the local admin: nothing to log in to
    finally:
        holder.close()
        store.close()
