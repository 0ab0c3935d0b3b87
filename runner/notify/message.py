"""What a notifier is given (Message), how it fails (DeliveryError, NotConfigured), and how it
reads its secrets from the environment."""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runner.catalog.models import Channel
from runner.errors import RunbookError

KINDS = ("escalation", "update", "acknowledge", "resolve")
SEVERITIES = ("critical", "high", "warning", "info")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Message:
    """One thing to tell a channel about an incident.

    *incident_id* threads everything about one incident: it is PagerDuty's dedup_key, and the
    reference in Slack, webhook and e-mail messages. *context* is JSON-ready (alert, incident,
    owner, runbook, revision, steps with name/host/status/output tail, reason, next steps).
    """

    kind: str  # escalation | update | acknowledge | resolve
    incident_id: str
    summary: str  # one line, <= 200 chars
    severity: str  # critical | high | warning | info
    source: str  # e.g. the host or alertname (PagerDuty payload.source)
    context: dict[str, Any]
    link: str | None = None  # URL of the incident, when RUNBOOK_EXTERNAL_URL is set
    level: int | None = None  # escalation level (1-based) when kind == "escalation"
    message_id: str | None = None  # the outbox row: the same on a resend, so a receiver can drop repeats

    def __post_init__(self) -> None:
        # A DeliveryError, not a ValueError: a message that cannot be built cannot be delivered
        # either, and the escalator records it as a dead letter instead of choking on it.
        if self.kind not in KINDS:
            raise DeliveryError(f"message kind {self.kind!r} is not one of {', '.join(KINDS)}",
                                retryable=False)
        if self.severity not in SEVERITIES:
            raise DeliveryError(f"message severity {self.severity!r} is not one of {', '.join(SEVERITIES)}",
                                retryable=False)
        if not self.incident_id:
            raise DeliveryError("message incident_id is empty", retryable=False)


class DeliveryError(RunbookError):
    """A message was not delivered; ``retryable`` says whether trying again later can help.

    ``reason`` names the channel and what went wrong, never a secret (URL, key, password).
    ``retry_after`` is the delay in seconds the receiver asked for (HTTP Retry-After), if any.
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """Delivers messages to one channel."""

    def send(self, message: Message) -> None:
        """Deliver *message*, or raise DeliveryError."""
        ...


class NotConfigured(DeliveryError):
    """The environment variables holding a channel's secrets are not set: it cannot send until they are.

    ``variables`` names each of them. Never retryable: the environment of a running process
    does not change.
    """

    def __init__(self, channel: Channel, variables: Sequence[str]) -> None:
        self.variables = tuple(variables)
        what = (f"environment variable {self.variables[0]} is" if len(self.variables) == 1
                else f"environment variables {', '.join(self.variables)} are")
        super().__init__(f"{channel.type} channel {channel.name}: {what} not set", retryable=False)


def secrets(channel: Channel, environ: Mapping[str, str], *settings: str) -> tuple[str, ...]:
    """The values of the environment variables that *channel*'s *settings* name, in order.

    DeliveryError when the channel has no such setting; NotConfigured naming every variable
    that is not set (all of them at once: the operator sets them in one go).
    """
    names = []
    for setting in settings:
        holder = channel.settings if setting in channel.settings else channel.settings.get("smtp", {})
        var = holder.get(setting)
        if not var:
            raise DeliveryError(f"{channel.type} channel {channel.name}: no {setting} configured",
                                retryable=False)
        names.append(str(var))
    missing = [var for var in names if not environ.get(var)]
    if missing:
        raise NotConfigured(channel, missing)
    return tuple(environ[var] for var in names)


def secret(channel: Channel, environ: Mapping[str, str], setting: str) -> str:
    """The value of the environment variable that *channel*'s *setting* names; see :func:`secrets`."""
    return secrets(channel, environ, setting)[0]
