"""Outbox claims across escalators: a late outcome never overrides a newer claim; resends carry one id."""

from __future__ import annotations

from datetime import timedelta

from runner.catalog.live import Loaded
from runner.notify.escalator import Escalator
from runner.store import Store
from runner.store.escalation import IN_FLIGHT
from tests.integration.notify.test_escalation import (  # noqa: F401 (the fixtures)
    Sink,
    active,
    environ,
    post,
    repeat,
    sink,
    soon,
)


def test_a_send_that_fails_after_its_claim_ran_out_does_not_undo_a_later_delivery(
    store_url: str, active: Loaded,  # noqa: F811
) -> None:
    with Store(store_url) as store:
        stored = post(store, active, "ProdOnly")
        t0 = soon()
        store.fire_due_escalations(t0)
        slow = [m for m in store.claim_messages(t0) if m["kind"] == "escalation"]  # escalator A: stuck
        [mine] = slow
        after = t0 + IN_FLIGHT + timedelta(seconds=1)
        later = [m for m in store.claim_messages(after) if m["id"] == mine["id"]]
        assert [m["attempts"] for m in later] == [2]  # escalator B took it over, and sends it
        store.message_delivered(mine["id"])
        # A's send finally times out: it must not make a dead letter of what B delivered.
        for retryable in (False, True):
            outcome = store.message_failed(mine["id"], mine["attempts"], "timed out", retryable=retryable)
            assert outcome == "superseded"
        store.message_delivered(mine["id"])  # told twice: noted once
        [row] = [m for m in store.outbox(stored.incident_id) if m["id"] == mine["id"]]
        assert (row["status"], row["last_error"]) == ("sent", None)
        incident = store.get_incident(stored.incident_id)
    assert incident is not None
    sent = [e for e in incident.timeline if e.event == "message_sent"]
    assert len(sent) == 1 and not any(e.event == "message_failed" for e in incident.timeline)


def test_a_resent_message_carries_the_same_id_so_a_receiver_can_drop_it(
    store_url: str, active: Loaded, sink: Sink,  # noqa: F811
) -> None:
    with Store(store_url) as store:
        post(store, active, "ProdOnly")
        t0 = soon()
        store.fire_due_escalations(t0)
        [claimed] = [m for m in store.claim_messages(t0) if m["channel"] == "ops-hook"]  # a sender that dies
        escalator = Escalator(store, lambda: active, environ=environ(sink))
        escalator.tick(t0 + IN_FLIGHT + timedelta(seconds=1))  # its claim ran out: sent by another
    [message] = sink.delivered("/ops")
    [request] = [r for r in sink.requests if r["path"] == "/ops"]
    assert message["message_id"] == str(claimed["id"]) == request["headers"]["X-Runbook-Message-Id"]
