"""Generic webhook: the message as JSON, signed with HMAC-SHA256 like the intake expects its alerts.

Body: ``{"message_id", "kind", "incident_id", "summary", "severity", "source", "level", "link",
"context"}``. Headers: ``X-Runbook-Timestamp`` and ``X-Runbook-Signature: sha256=<hex
HMAC-SHA256(secret, "<timestamp>." + body)>`` (the receiver verifies as
``runner.alerts.signing.verify_signature`` does, replay window included); a channel without
``secret_env`` sends unsigned. ``X-Runbook-Message-Id`` (also ``message_id``) is the same on a
resend: delivery is at least once (a sender that dies after sending and before recording it
sends again), so a receiver that must not act twice drops an id it has seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.alerts.signing import sign
from runner.catalog.models import Channel
from runner.notify.http import check_url, log, post_json
from runner.notify.message import DEFAULT_TIMEOUT, Message, secrets


def payload(message: Message) -> dict[str, Any]:
    """The JSON document a webhook receives for *message*."""
    return {
        "message_id": message.message_id,
        "kind": message.kind,
        "incident_id": message.incident_id,
        "summary": message.summary,
        "severity": message.severity,
        "source": message.source,
        "level": message.level,
        "link": message.link,
        "context": message.context,
    }


class WebhookNotifier:
    """POSTs signed JSON to the URL in the channel's ``url_env``."""

    def __init__(
        self, channel: Channel, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        signed = ("secret_env",) if channel.settings.get("secret_env") else ()
        url, *key = secrets(channel, environ, "url_env", *signed)  # every unset variable named at once
        self._url = check_url(channel, url, channel.settings["url_env"])
        self._key = key[0] if key else None

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.channel.name!r})"

    def send(self, message: Message) -> None:
        """POST *message*; DeliveryError unless the receiver answers 2xx."""
        body = json.dumps(payload(message), separators=(",", ":"), ensure_ascii=False, default=str).encode()
        headers = sign(self._key, body) if self._key else {}
        if message.message_id is not None:
            headers["X-Runbook-Message-Id"] = message.message_id
        secrets = [self._key] if self._key else []
        status = post_json(self.channel, self._url, body, timeout=self.timeout, secrets=secrets,
                           headers=headers)
        log.info("webhook channel %s: %s of incident %s delivered (HTTP %d)",
                 self.channel.name, message.kind, message.incident_id, status)
