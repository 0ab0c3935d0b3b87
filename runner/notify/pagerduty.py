"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident.

Format (PagerDuty developer docs, "Send an Alert Event"): POST JSON to
``https://events.pagerduty.com/v2/enqueue``; ``routing_key`` and ``event_action`` are required,
``dedup_key`` (at most 255 characters) correlates a trigger with its acknowledge and resolve. A
trigger carries ``payload.summary`` (at most 1024 characters), ``payload.source``,
``payload.severity`` (critical, error, warning or info) and optional ``custom_details`` and
``links``; acknowledge and resolve carry only the three keys. PagerDuty answers 202; it asks for
retries on 429, 5xx and network errors and not on 400. An event is at most 512 KB.

Our incident id is the dedup_key, so a repeated trigger (the next escalation level) adds to the
open alert instead of opening another. ``update`` messages are not PagerDuty's business: send()
returns without a request. ``RUNBOOK_PAGERDUTY_EVENTS_URL`` overrides the endpoint (tests, proxies).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from runner.catalog.models import Channel
from runner.notify.http import USER_AGENT, check_url, log, post_json
from runner.notify.message import DEFAULT_TIMEOUT, Message, secret
from runner.notify.text import one_line, truncate

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
EVENTS_URL_ENV = "RUNBOOK_PAGERDUTY_EVENTS_URL"
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
EVENT_LIMIT = 512 * 1024
SEVERITY = {"critical": "critical", "high": "error", "warning": "warning", "info": "info"}
ACTION = {"escalation": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}


def dedup_key(incident_id: str) -> str:
    """The dedup_key of an incident: its id, or a digest of an id too long for PagerDuty."""
    if len(incident_id) <= DEDUP_KEY_LIMIT:
        return incident_id
    return "sha256:" + hashlib.sha256(incident_id.encode()).hexdigest()


def event(message: Message, routing_key: str) -> dict[str, Any] | None:
    """The Events API v2 event for *message*, or None when the kind is not sent (update)."""
    action = ACTION.get(message.kind)
    if action is None:
        return None
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": dedup_key(message.incident_id)}
    if action != "trigger":
        return body
    body["payload"] = {
        "summary": truncate(one_line(message.summary), SUMMARY_LIMIT) or message.incident_id,
        "source": truncate(one_line(message.source), SUMMARY_LIMIT) or "runbook-runner",
        "severity": SEVERITY[message.severity],
        "custom_details": message.context,
    }
    body["client"] = USER_AGENT
    if message.link:
        body["client_url"] = message.link
        body["links"] = [{"href": message.link, "text": "Incident in runbook-runner"}]
    return body


def encode(body: dict[str, Any]) -> bytes:
    """*body* as JSON; a context too large for an event is cut down to a truncated JSON string."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    if len(data) <= EVENT_LIMIT or "payload" not in body:
        return data
    details = json.dumps(body["payload"]["custom_details"], ensure_ascii=False, default=str)
    room = EVENT_LIMIT - (len(data) - len(details.encode())) - 1024  # the rest, plus headroom for escaping
    short = details.encode()[: max(room // 2, 0)].decode("utf-8", "ignore")
    body = {**body, "payload": {**body["payload"], "custom_details": {
        "truncated": f"context cut to fit PagerDuty's {EVENT_LIMIT // 1024} KB event limit",
        "context": short,
    }}}
    return json.dumps(body, ensure_ascii=False, default=str).encode()


class PagerDutyNotifier:
    """Sends Events API v2 events with the routing key in the channel's ``routing_key_env``."""

    def __init__(
        self, channel: Channel, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self._routing_key = secret(channel, environ, "routing_key_env")
        override = environ.get(EVENTS_URL_ENV)
        self._url = check_url(channel, override, EVENTS_URL_ENV) if override else EVENTS_URL

    def __repr__(self) -> str:
        return f"PagerDutyNotifier({self.channel.name!r})"

    def send(self, message: Message) -> None:
        """Send the event for *message* (none for an update); DeliveryError unless PagerDuty accepts it."""
        body = event(message, self._routing_key)
        if body is None:
            log.debug("pagerduty channel %s: %s messages are not sent to PagerDuty",
                      self.channel.name, message.kind)
            return
        status = post_json(self.channel, self._url, encode(body), timeout=self.timeout,
                           secrets=[self._routing_key])
        log.info("pagerduty channel %s: %s of incident %s accepted (HTTP %d)",
                 self.channel.name, body["event_action"], message.incident_id, status)
