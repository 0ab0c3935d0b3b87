"""The escalator: fires due escalation levels and delivers the outbox, in a thread of its own.

Timers and messages live in the store (``runner.store.escalation``): this loop only acts on
what is due, so a restart loses nothing and several processes fire each level once. A
message that fails is retried with exponential backoff (5xx, 429, timeouts), or becomes a
dead letter with its reason (other 4xx, a wrong setting, too many attempts); one channel's
messages go out in order. A message to a channel that is not configured in this process (the
environment variables holding its secrets are not set) is skipped: not tried, not an error,
recorded with the variables to set; :func:`report_channels` says so once per start instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from runner.catalog.live import CatalogHolder, Loaded, ReloadResult
from runner.catalog.models import Channel, Owners
from runner.errors import RunbookError
from runner.notify.channels import notifier_for
from runner.notify.configuration import channel_states, unusable_text
from runner.notify.message import DeliveryError, Message, NotConfigured
from runner.store import Store

log = logging.getLogger("runner.escalation")
INTERVAL = 0.5  # seconds between looks at due levels and messages


def channel_for(owners: Owners, target: str) -> Channel:
    """The channel of *target*: a channel of owners.yaml, or ``person:NAME`` (mail to that member)."""
    if not target.startswith("person:"):
        channel = owners.channels.get(target)
        if channel is None:
            raise DeliveryError(f"unknown channel {target!r} (not in owners.yaml)", retryable=False)
        return channel
    name = target.partition(":")[2]
    member = next((m for t in owners.teams.values() for m in t.members if m.name == name), None)
    if member is None or not member.email:
        raise DeliveryError(f"{target}: no member with an email address by that name", retryable=False)
    mail = next((c for c in owners.channels.values() if c.type == "email"), None)
    if mail is None:
        raise DeliveryError(f"{target}: owners.yaml has no email channel to send through", retryable=False)
    return Channel(target, "email", {**mail.settings, "to": [member.email]})


def message_of(row: Mapping[str, Any], external_url: str | None) -> Message:
    """The notifier's message for an outbox row."""
    data = row["message"]
    incident_id = str(row["incident_id"])
    link = f"{external_url.rstrip('/')}/api/v1/incidents/{incident_id}" if external_url else None
    if row["kind"] == "update":
        return Message(kind="update", incident_id=incident_id, summary=str(data["text"])[:200],
                       severity="info", source="runbook-runner", context={}, link=link,
                       message_id=str(row["id"]))
    return Message(kind=str(data.get("kind", row["kind"])), incident_id=incident_id,
                   summary=str(data["summary"])[:200], severity=str(data["severity"]),
                   source=str(data["source"]), context=dict(data.get("context") or {}), link=link,
                   level=data.get("level"), message_id=str(row["id"]))


class Escalator:
    """Fires due escalation levels and delivers outbox messages until stopped."""

    def __init__(self, store: Store, active: Callable[[], Loaded], *,
                 environ: Mapping[str, str] | None = None, interval: float = INTERVAL,
                 external_url: str | None = None) -> None:
        self.store = store
        self.active = active
        self.environ = environ if environ is not None else os.environ
        self.interval = interval
        self.external_url = external_url or self.environ.get("RUNBOOK_EXTERNAL_URL")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="escalator", daemon=True)

    def start(self) -> Escalator:
        """Start the loop."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (a delivery in progress finishes)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the loop must survive anything one pass meets
                log.exception("escalator error")

    def tick(self, now: datetime | None = None) -> int:
        """Fire what is due, deliver what is due (at *now*, for tests); how many messages were handled."""
        try:
            for incident_id, targets in self.store.fire_due_escalations(now):
                log.warning("incident %s escalated to %s", incident_id, ", ".join(targets))
            rows = self.store.claim_messages(now)
        except RunbookError as e:
            log.warning("escalator: %s", e)
            return 0
        for row in rows:
            self.deliver(row, now)
        return len(rows)

    def deliver(self, row: Mapping[str, Any], now: datetime | None = None) -> None:
        """Send one claimed message; record the outcome."""
        try:
            channel = channel_for(self.active().catalog.owners or Owners({}, {}), str(row["channel"]))
            notifier_for(channel, self.environ).send(message_of(row, self.external_url))
        except NotConfigured as e:  # said once at start (report_channels): no line per message
            status = self.store.message_skipped(int(row["id"]), int(row["attempts"]), e.reason, now=now)
            log.debug("message %s to %s %s: %s", row["id"], row["channel"], status, e.reason)
            return
        except DeliveryError as e:
            status = self.store.message_failed(int(row["id"]), int(row["attempts"]), e.reason,
                                               retryable=e.retryable, now=now)
            outcome = {"dead": "is a dead letter", "pending": "will be retried",
                       "superseded": "failed after its claim ran out (another escalator has it)"}[status]
            log.log(logging.ERROR if status == "dead" else logging.WARNING, "message %s to %s %s: %s",
                    row["id"], row["channel"], outcome, e.reason)
            return
        self.store.message_delivered(int(row["id"]))


def report_channels(holder: CatalogHolder, environ: Mapping[str, str] | None = None) -> None:
    """Log one warning naming the channels that cannot send and what to set, at once and again
    after a reload that changes the answer (silent while every channel is configured)."""
    env = environ if environ is not None else os.environ
    last: list[str | None] = []  # what was said, once something was checked

    def check(loaded: Loaded) -> None:
        text = unusable_text(channel_states(loaded.catalog.owners, env).values())
        if last and last[0] == text:
            return
        if text is not None:
            log.warning("%s", text)
        elif last:
            log.info("every notification channel is configured now")
        last[:] = [text]

    def reloaded(result: ReloadResult) -> None:
        if result.ok and result.active is not None:
            check(result.active)

    if holder.loaded:
        check(holder.active)
    holder.on_reload(reloaded)
