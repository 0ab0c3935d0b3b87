"""The dashboard in a real headless Chromium, against a real server on loopback with a real worker.

An alert posted to the server appears on the open incidents page by itself; its run executes
(real Ansible on localhost) and its step's output reads back on the run page; a run waiting
for approval is approved by clicking; an incident is acknowledged from the keyboard; a viewer
gets no buttons, and forged POSTs (no CSRF token, a wrong one, a viewer's valid one, a
cross-site form) are refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.integration.web.test_service import Service, token_of

RUN_TIMEOUT = 90_000  # ms: a real Ansible run on a loaded machine


def log_in(page: Page, service: Service, who: str) -> None:
    """Log in through the form, as a person does."""
    page.goto(service.server.url + "/")  # not logged in: sent to the login form
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Operator token").fill(token_of(who))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Logged in as {who}")


def incident_of(service: Service, incident_id: str) -> Any:
    status, incident = service.call("GET", f"/api/v1/incidents/{incident_id}", "vic")
    assert status == 200, incident
    return incident


def test_an_alert_appears_by_itself_and_its_run_reads_back(
    page: Page, service: Service, tmp_path: Path
) -> None:
    service.server.app.config["DASHBOARD_REFRESH"] = 1
    service.pool.start()
    log_in(page, service, "alice")
    expect(page.get_by_role("heading", name="Burning: 0 open or acknowledged")).to_be_visible()
    expect(page.get_by_text("Nothing is burning.")).to_be_visible()

    stored = service.alert("TouchMe", "web-1:9100", tmp_path)
    # No reload: the list redraws itself and the incident appears, owned from the first second.
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="TouchMe"))
    expect(row).to_contain_text("platform-ops / alice", timeout=10_000)
    expect(row).to_contain_text("open")

    row.get_by_role("link", name="TouchMe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("TouchMe")
    run_id = stored["run"]["id"]
    page.get_by_role("link", name=run_id[:12]).first.click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    # The run page follows the run until it ends.
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=RUN_TIMEOUT)
    step = page.locator("li.step").filter(has_text="leave a mark")
    expect(step.locator(".step-head .badge")).to_have_text("changed")
    expect(step.locator(".dur")).to_have_text(re.compile(r"^[0-9.]+s$"))
    expect(step.locator("svg.bar rect.fill")).to_have_count(1)
    step.get_by_text("Output of leave a mark").click()
    output = step.locator("pre.stdout")
    expect(output).to_be_visible()
    expect(output).to_contain_text(f'"dest": "{tmp_path}/touched"')
    expect(page.get_by_role("list").filter(has_text="running").last).to_contain_text("succeeded")

    # Back on the runs list, the run is there with its status in words.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    run_row = page.get_by_role("row").filter(has=page.get_by_role("link", name=run_id[:12]))
    expect(run_row).to_contain_text("succeeded")
    expect(run_row).to_contain_text("alert TouchMe (alertmanager)")


def test_approve_a_waiting_run_by_clicking(page: Page, service: Service, tmp_path: Path) -> None:
    service.pool.start()
    body = {"params": {"host": "web-1", "dir": str(tmp_path)}, "environment": "staging"}
    status, run = service.call("POST", "/api/v1/runbooks/approve-me/runs", "carol", body)
    assert status == 201 and run["status"] == "awaiting_approval"

    log_in(page, service, "dave")
    expect(page.get_by_role("heading", name="Waiting for you")).to_be_visible()
    page.get_by_role("link", name="Approvals").first.click()
    page.get_by_label("Reason").fill("checked the disk")
    page.get_by_role("button", name=f"Approve run {run['id'][:12]} of approve-me").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Run {run['id'][:12]} of approve-me approved by dave")
    expect(page.get_by_text("No run awaits approval.")).to_be_visible()

    final = service.finished(run["id"])
    assert final["status"] == "succeeded" and final["decided_by"] == "dave"
    assert (tmp_path / "touched").exists()  # approved, then Ansible really ran
    page.goto(service.server.url + f"/runs/{run['id']}")
    expect(page.locator(".facts")).to_contain_text("Decided by")
    expect(page.locator(".timeline")).to_contain_text("approved by dave: checked the disk")


def test_acknowledge_an_incident_from_the_keyboard(page: Page, service: Service, tmp_path: Path) -> None:
    incident_id = service.alert("TouchMe", "web-1:9100", tmp_path)["incident"]
    log_in(page, service, "alice")
    button = page.get_by_role("button", name="Acknowledge TouchMe")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Incident {incident_id[:12]} acknowledged by alice")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="TouchMe"))
    expect(row).to_contain_text("acknowledged by alice")
    expect(page.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    incident = incident_of(service, incident_id)
    assert (incident["status"], incident["acknowledged_by"]) == ("acknowledged", "alice")


def test_a_viewer_gets_no_buttons_and_forged_posts_are_refused(
    page: Page, service: Service, tmp_path: Path
) -> None:
    incident_id = service.alert("TouchMe", "web-1:9100", tmp_path)["incident"]
    body = {"params": {"host": "web-1", "dir": str(tmp_path)}, "environment": "staging"}
    run = service.call("POST", "/api/v1/runbooks/approve-me/runs", "carol", body)[1]
    url = service.server.url

    log_in(page, service, "vic")
    expect(page.get_by_role("link", name="TouchMe")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Acknowledge"))).to_have_count(0)
    page.get_by_role("link", name="TouchMe").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.get_by_role("button")).to_have_text(["Log out"])  # the only button a viewer has
    page.goto(url + "/approvals")
    expect(page.get_by_role("link", name=run["id"][:12])).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^(Approve|Reject)"))).to_have_count(0)
    expect(page.get_by_text("Only its owner team (or an admin) decides.")).to_be_visible()

    # POSTs with the viewer's session cookie: without a CSRF token, with a wrong one, with the real one.
    ack = f"{url}/incidents/{incident_id}/ack"
    assert page.request.post(ack, form={}).status == 403
    assert page.request.post(ack, form={"csrf_token": "forged"}).status == 403
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert csrf
    refused = page.request.post(ack, form={"csrf_token": csrf})
    assert refused.status == 403 and "vic (viewer; no team) may not acknowledge" in refused.text()
    approve = page.request.post(f"{url}/runs/{run['id']}/approve", form={"csrf_token": csrf})
    assert approve.status == 403

    # An operator who may act, lured to another site whose form posts to the dashboard: refused too.
    page.request.post(url + "/logout", form={"csrf_token": csrf})
    log_in(page, service, "alice")
    page.goto("about:blank")
    page.set_content(f'<form method="post" action="{ack}"><input name="csrf_token" value="guess"></form>')
    with page.expect_response(ack) as response:
        page.evaluate("document.forms[0].submit()")
    assert response.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("CSRF token is missing or wrong")

    assert incident_of(service, incident_id)["status"] == "open"
    assert service.call("GET", f"/api/v1/runs/{run['id']}", "vic")[1]["status"] == "awaiting_approval"
