"""The notifier of a channel of owners.yaml: which module sends for each channel type."""

from __future__ import annotations

from collections.abc import Mapping

from runner.catalog.models import Channel
from runner.notify.email import EmailNotifier
from runner.notify.message import DEFAULT_TIMEOUT, DeliveryError, Notifier
from runner.notify.pagerduty import PagerDutyNotifier
from runner.notify.slack import SlackNotifier
from runner.notify.webhook import WebhookNotifier


def notifier_for(
    channel: Channel, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> Notifier:
    """The notifier for *channel*, its secrets read from *environ* now.

    Raises NotConfigured naming the variables when secrets are not set, DeliveryError(retryable=False)
    when the channel's configuration is wrong.
    """
    if channel.type == "webhook":
        return WebhookNotifier(channel, environ, timeout=timeout)
    if channel.type == "slack":
        return SlackNotifier(channel, environ, timeout=timeout)
    if channel.type == "pagerduty":
        return PagerDutyNotifier(channel, environ, timeout=timeout)
    if channel.type == "email":
        return EmailNotifier(channel, environ, timeout=timeout)
    raise DeliveryError(f"channel {channel.name}: unknown channel type {channel.type!r}", retryable=False)
