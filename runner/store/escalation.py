"""Escalations and the outbox in SQL: timers and messages that survive restarts and fire once.

An incident carries its owner team's escalation policy as it was when the incident opened
(``incidents.policy``): levels (``after`` seconds from the start, ``notify`` targets, an
optional ``handoff`` team with its first targets), ``repeat`` and the ``updates`` channel.
An escalation starts when automation cannot fix the incident (a run failed, timed out, was
interrupted or rejected; a run awaits approval; no runbook matches a severe alert; the alert
still fires after a fix succeeded: the fix did not hold); each due level is claimed by
compare-and-set, so with several workers it fires once; acknowledging or resolving the incident
stops it. Every message goes through the outbox: ``pending`` until it is ``sent``, ``dead``
(undeliverable, with the reason) or ``skipped`` (its channel is not configured in the sending
process, with the variables to set).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from runner.catalog.models import ESCALATION_TRIGGERS
from runner.store.tables import alerts, escalations, incidents, outbox, run_steps, runs
from runner.store.timeline import note, still_firing

VERIFY_WINDOW = timedelta(minutes=10)  # a fix holds when the alert resolves within this of its run
MAX_ATTEMPTS = 8  # a message that fails this often is a dead letter, with the last reason
BACKOFF_MAX = timedelta(minutes=5)
IN_FLIGHT = timedelta(seconds=60)  # a claimed message not marked by then is tried again
CLAIM_BATCH = 5  # messages claimed at once, sent one after another: at a 10 s timeout each, well in IN_FLIGHT
ESCALATING_RUN_STATUSES = ("failed", "timed_out", "interrupted", "rejected", "awaiting_approval")


def _policy(connection: sa.Connection, incident_id: str) -> dict[str, Any] | None:
    row = connection.execute(sa.select(incidents.c.policy, incidents.c.status)
                             .where(incidents.c.id == incident_id)).first()
    if row is None or row.status == "resolved" or not row.policy:
        return None
    policy: dict[str, Any] = row.policy
    return policy


def queue_message(connection: sa.Connection, incident_id: str, channel: str, kind: str,
                  message: dict[str, Any], at: datetime) -> None:
    """Put a message in the outbox, to be delivered (and retried) by the deliverer."""
    connection.execute(sa.insert(outbox).values(
        incident_id=incident_id, channel=channel, kind=kind, message=message, status="pending", attempts=0,
        next_attempt_at=at, created_at=at))


def update(connection: sa.Connection, incident_id: str, text: str, at: datetime) -> None:
    """One short status message to the owner team's updates channel, if it has one."""
    row = connection.execute(sa.select(incidents.c.policy).where(incidents.c.id == incident_id)).first()
    updates = ((row.policy if row is not None else None) or {}).get("updates")
    if updates:
        queue_message(connection, incident_id, updates, "update", {"text": text}, at)


def enabled(policy: dict[str, Any] | None, trigger: str) -> bool:
    """Whether the team's policy escalates on *trigger* (all triggers when it does not say)."""
    return policy is not None and trigger in policy.get("triggers", ESCALATION_TRIGGERS)


def start(connection: sa.Connection, incident_id: str, reason: str, context: dict[str, Any],
          at: datetime, trigger: str, kind: str | None = None) -> bool:
    """Start escalating *incident_id* on *trigger* (unless the team's policy leaves that out, the
    incident already escalates, or is resolved); True when started. *kind* (default: the trigger)
    is what the timeline keeps for the report, e.g. ``rejected:max_runs``."""
    policy = _policy(connection, incident_id)
    if policy is None or not policy.get("levels") or not enabled(policy, trigger):
        return False
    if connection.execute(sa.select(escalations.c.state).where(
            escalations.c.incident_id == incident_id)).first() is not None:
        if connection.execute(sa.update(escalations).where(
                escalations.c.incident_id == incident_id, escalations.c.state != "active").values(
                state="active", reason=reason, level=0, round=0, started_at=at, context=context,
                next_at=at + timedelta(seconds=policy["levels"][0]["after"]))).rowcount != 1:
            return False  # already escalating: the first reason stands, the timeline has the rest
    else:
        connection.execute(sa.insert(escalations).values(
            incident_id=incident_id, state="active", reason=reason, level=0, round=0, started_at=at,
            context=context, next_at=at + timedelta(seconds=policy["levels"][0]["after"])))
    note(connection, incident_id, at, "escalation_started", reason, kind=kind or trigger)
    return True


def watch(connection: sa.Connection, incident_id: str, run_id: str, at: datetime) -> None:
    """A run succeeded: if the alert still fires the verify window later, the fix did not hold."""
    policy = _policy(connection, incident_id)
    if not enabled(policy, "fix_did_not_hold"):
        return
    assert policy is not None
    window = timedelta(seconds=int(policy.get("verify_window", VERIFY_WINDOW.total_seconds())))
    reason = (f"the fix did not hold: the alert still fires {int(window.total_seconds() // 60)} min after "
              f"run {run_id[:12]} succeeded")
    context = message_for(connection, incident_id, reason, run_id)
    values = {"state": "watching", "reason": reason, "level": 0, "round": 0, "started_at": at,
              "next_at": at + window, "context": context}
    state = connection.execute(sa.select(escalations.c.state).where(
        escalations.c.incident_id == incident_id)).scalar()
    if state == "active":
        return  # already escalating: a person is being told
    if state is None:
        connection.execute(sa.insert(escalations).values(incident_id=incident_id, **values))
    else:
        connection.execute(sa.update(escalations).where(escalations.c.incident_id == incident_id)
                           .values(values))


def stop(connection: sa.Connection, incident_id: str, why: str, at: datetime) -> list[str]:
    """Stop an active escalation (or a watch); the channels it notified (they hear of the ack or resolve)."""
    connection.execute(sa.update(escalations).where(  # the fix held, or a person took over
        escalations.c.incident_id == incident_id, escalations.c.state == "watching",
    ).values(state="done", next_at=None))
    done = connection.execute(sa.update(escalations).where(
        escalations.c.incident_id == incident_id, escalations.c.state == "active",
    ).values(state="stopped", next_at=None)).rowcount
    if done:
        note(connection, incident_id, at, "escalation_stopped", why)
    rows = connection.execute(sa.select(outbox.c.channel).where(
        outbox.c.incident_id == incident_id, outbox.c.kind == "escalation").distinct())
    return sorted(row.channel for row in rows)


def due(connection: sa.Connection, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """Active escalations whose next level is due (rows are claimed by :func:`fire`)."""
    rows = connection.execute(sa.select(escalations).where(
        escalations.c.state.in_(["active", "watching"]), escalations.c.next_at <= now,
    ).order_by(escalations.c.next_at).limit(limit)).mappings().all()
    return [dict(row) for row in rows]


def fire(connection: sa.Connection, row: dict[str, Any], now: datetime,
         message: dict[str, Any]) -> list[str] | None:
    """Fire the due level of *row* once: queue its messages, move to the next level. Its targets.

    None when another worker fired it first (compare-and-set on level and round).
    """
    if row["state"] == "watching":
        return _verify(connection, row, now)
    policy = _policy(connection, row["incident_id"])
    levels: list[dict[str, Any]] = (policy or {}).get("levels", [])
    level, rnd = int(row["level"]), int(row["round"])
    if not levels or level >= len(levels):
        return None
    current = levels[level]
    if level + 1 < len(levels):
        after = timedelta(seconds=levels[level + 1]["after"])
        values: dict[str, Any] = {"level": level + 1, "next_at": row["started_at"] + after}
    elif rnd < int((policy or {}).get("repeat", 0)):
        values = {"level": 0, "round": rnd + 1, "started_at": now,
                  "next_at": now + timedelta(seconds=max(levels[0]["after"], 60))}
    else:
        values = {"state": "done", "next_at": None, "level": level + 1}
    claimed = connection.execute(sa.update(escalations).where(
        escalations.c.incident_id == row["incident_id"], escalations.c.state == "active",
        escalations.c.level == level, escalations.c.round == rnd).values(values)).rowcount
    if claimed != 1:
        return None
    targets = list(current.get("notify", []))
    handoff = current.get("handoff")
    if handoff:
        targets += [t for t in current.get("handoff_notify", []) if t not in targets]
    full = {**message, "level": level + 1}
    for target in targets:
        queue_message(connection, row["incident_id"], target, "escalation", full, now)
    detail = f"level {level + 1}" + (f" (round {rnd + 1})" if rnd else "") + f": {', '.join(targets)}"
    note(connection, row["incident_id"], now, "escalated", detail)
    if handoff:
        note(connection, row["incident_id"], now, "handoff", f"handed over to team {handoff}")
    update(connection, row["incident_id"], f"escalated, level {level + 1}: {row['reason']}"
           + (f"; handed over to team {handoff}" if handoff else ""), now)
    return targets


def _verify(connection: sa.Connection, row: dict[str, Any], now: datetime) -> list[str] | None:
    """The verify window ended: escalate if the incident's alert still fires, else stop watching."""
    incident_id = row["incident_id"]
    firing = _policy(connection, incident_id) is not None and still_firing(connection, incident_id)
    values: dict[str, Any] = {"state": "active", "next_at": now, "started_at": now} if firing else {
        "state": "done", "next_at": None}
    claimed = connection.execute(sa.update(escalations).where(
        escalations.c.incident_id == incident_id, escalations.c.state == "watching",
        escalations.c.next_at == row["next_at"]).values(values)).rowcount
    if claimed == 1 and firing:
        note(connection, incident_id, now, "fix_did_not_hold", str(row["reason"]))
        note(connection, incident_id, now, "escalation_started", str(row["reason"]),
                        kind="fix_did_not_hold")
    return None


def claim_messages(connection: sa.Connection, now: datetime,
                   limit: int = CLAIM_BATCH) -> list[dict[str, Any]]:
    """The oldest due message of each channel (one channel's messages go out in order), claimed."""
    heads = (sa.select(sa.func.min(outbox.c.id)).where(outbox.c.status == "pending")
             .group_by(outbox.c.channel))
    rows = connection.execute(sa.select(outbox).where(
        outbox.c.id.in_(heads), outbox.c.next_attempt_at <= now).order_by(outbox.c.id).limit(limit)
    ).mappings().all()
    claimed = []
    for row in rows:
        taken = connection.execute(sa.update(outbox).where(
            outbox.c.id == row["id"], outbox.c.status == "pending", outbox.c.attempts == row["attempts"],
        ).values(attempts=row["attempts"] + 1, next_attempt_at=now + IN_FLIGHT)).rowcount
        if taken == 1:
            claimed.append({**dict(row), "attempts": row["attempts"] + 1})
    return claimed


def delivered(connection: sa.Connection, message_id: int, now: datetime) -> None:
    """Mark a message sent, and say so on the incident's timeline (updates excepted: they are chatter).

    Whoever sent it says so, even after its claim ran out: it was sent. Said twice, noted once.
    """
    row = connection.execute(sa.update(outbox).where(outbox.c.id == message_id, outbox.c.status != "sent")
                             .values(status="sent", sent_at=now, last_error=None)
                             .returning(outbox.c.incident_id, outbox.c.channel, outbox.c.kind)).first()
    if row is not None and row.kind != "update":
        note(connection, row.incident_id, now, "message_sent", f"{row.kind} to {row.channel}")


def failed(connection: sa.Connection, message_id: int, attempts: int, reason: str, retryable: bool,
           now: datetime) -> str:
    """Schedule a retry with exponential backoff, or make it a dead letter. The new status.

    Only the latest claim decides (*attempts* is the claim's): a send that failed after its claim
    ran out must not make a dead letter of a message another escalator has since sent. Then
    nothing changes and the answer is "superseded".
    """
    claim = (outbox.c.id == message_id, outbox.c.status == "pending", outbox.c.attempts == attempts)
    if retryable and attempts < MAX_ATTEMPTS:
        wait = min(timedelta(seconds=2 ** attempts), BACKOFF_MAX)
        retried = connection.execute(sa.update(outbox).where(*claim).values(
            last_error=reason, next_attempt_at=now + wait)).rowcount
        return "pending" if retried else "superseded"
    row = connection.execute(sa.update(outbox).where(*claim).values(status="dead", last_error=reason)
                             .returning(outbox.c.incident_id, outbox.c.channel, outbox.c.kind)).first()
    if row is None:
        return "superseded"
    note(connection, row.incident_id, now, "message_failed",
                    f"{row.kind} to {row.channel} not delivered: {reason}")
    return "dead"


def skipped(connection: sa.Connection, message_id: int, attempts: int, reason: str, now: datetime) -> str:
    """The message's channel is not configured here: record it skipped with *reason*, never sent. The
    new status ("skipped", or "superseded" when the claim ran out, as for :func:`failed`).

    Not a failure: nothing was tried (attempts back to 0) and nothing will be. An escalation, an
    acknowledge or a resolve skipped is on the incident's timeline as a neutral event, so whoever
    reads it knows that channel was not told; updates are chatter, as when sent.
    """
    row = connection.execute(sa.update(outbox).where(
        outbox.c.id == message_id, outbox.c.status == "pending", outbox.c.attempts == attempts,
    ).values(status="skipped", attempts=0, last_error=reason)
        .returning(outbox.c.incident_id, outbox.c.channel, outbox.c.kind)).first()
    if row is None:
        return "superseded"
    if row.kind != "update":
        note(connection, row.incident_id, now, "message_skipped",
                        f"{row.kind} to {row.channel} not sent: {reason}")
    return "skipped"


def outbox_counts(connection: sa.Connection) -> list[tuple[str, str, int]]:
    """(channel, status, number of messages) for every pair in the outbox."""
    rows = connection.execute(sa.select(outbox.c.channel, outbox.c.status, sa.func.count())
                              .group_by(outbox.c.channel, outbox.c.status))
    return [(str(channel), str(status), int(n)) for channel, status, n in rows]


def messages(connection: sa.Connection, incident_id: str | None = None) -> list[dict[str, Any]]:
    """The outbox (of one incident), oldest first."""
    query = sa.select(outbox).order_by(outbox.c.id)
    if incident_id is not None:
        query = query.where(outbox.c.incident_id == incident_id)
    return [dict(row) for row in connection.execute(query).mappings()]


def message_for(connection: sa.Connection, incident_id: str, reason: str,
                run_id: str | None = None) -> dict[str, Any]:
    """What an escalation says: the incident, its owner, the alert, the run and its steps, what next."""
    incident = connection.execute(sa.select(incidents).where(incidents.c.id == incident_id)).mappings().one()
    alert = connection.execute(sa.select(
        alerts.c.alertname, alerts.c.fingerprint, alerts.c.status, alerts.c.labels, alerts.c.annotations,
        alerts.c.generator_url, alerts.c.received_at).where(alerts.c.incident_id == incident_id)
        .order_by(alerts.c.id.desc()).limit(1)).mappings().first()
    context: dict[str, Any] = {
        "incident": {"id": incident_id, "title": incident["title"], "status": incident["status"],
                     "opened_at": incident["opened_at"].isoformat()},
        "owner": {"team": incident["owner_team"], "primary": incident["owner"]},
        "reason": reason,
        "alert": None if alert is None else {
            "alertname": alert["alertname"], "fingerprint": alert["fingerprint"], "status": alert["status"],
            "labels": alert["labels"], "annotations": alert["annotations"],
            "generator_url": alert["generator_url"]},
        "runbook": incident["runbook"],
    }
    if run_id is not None:
        run = connection.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if run is not None:
            steps = connection.execute(sa.select(run_steps).where(run_steps.c.run_id == run_id)
                                       .order_by(run_steps.c.idx, run_steps.c.host)).mappings().all()
            context["run"] = {
                "id": run_id, "runbook": run["runbook"], "status": run["status"], "reason": run["reason"],
                "hosts": run["hosts"], "params": run["params"],  # secret params are already ***
                "revision": {"commit": run["git_commit"], "dirty": run["git_dirty"]},
                "steps": [{"name": s["name"], "host": s["host"], "status": s["status"], "rc": s["rc"],
                           "message": s["message"], "stdout": s["stdout"][-1000:],
                           "stderr": s["stderr"][-1000:]} for s in steps],
            }
    context["next"] = (f"Acknowledge (runbook ack {incident_id[:12]}, or POST "
                       f"/api/v1/incidents/{incident_id}/ack) to stop the escalation; look at the run "
                       "and its steps above; the runbook's description says what to check before "
                       "acting by hand.")
    labels = alert["labels"] if alert is not None else {}
    return {"kind": "escalation", "incident_id": incident_id,
            "summary": f"{incident['title']}: {reason}"[:200], "severity": incident["severity"],
            "source": str(labels.get("instance") or labels.get("alertname") or incident["source"]),
            "context": context}


def context_of(connection: sa.Connection, incident_id: str) -> dict[str, Any]:
    """The incident's escalation (state, reason, next level; None if it never escalated) and the
    context an escalation message would carry now: alert, owner, runbook, last run and its steps."""
    row = connection.execute(sa.select(escalations).where(
        escalations.c.incident_id == incident_id)).mappings().first()
    last_run = connection.execute(sa.select(runs.c.id).where(runs.c.incident_id == incident_id)
                                  .order_by(runs.c.created_at.desc()).limit(1)).scalar()
    state = None if row is None else {"state": row["state"], "reason": row["reason"], "level": row["level"],
                                      "round": row["round"], "next_at": row["next_at"]}
    reason = row["reason"] if row is not None else ""
    return {"escalation": state, "context": message_for(connection, incident_id, reason, last_run)["context"]}
