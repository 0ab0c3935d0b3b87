"""Which channels of owners.yaml can send from this process: configured, not configured, invalid.

A channel is *not configured* when an environment variable that holds one of its secrets is
not set: a catalog names Slack, PagerDuty, e-mail and webhook channels for every deployment,
and a laptop, a staging copy or a demo sets none of them. Such a channel is reported once, at
start and in ``/readyz``, and its messages are skipped (not failed, not retried) until the
variables are set and the process restarts. A channel whose variables are set but wrong (a
URL that is not one, credentials without TLS) is *invalid*: its messages fail as dead letters.

The answer comes from building each channel's notifier (``notifier_for``), which reads its
secrets exactly as sending does: there is no second list of secret settings to drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runner.catalog.models import Channel, Owners
from runner.notify.channels import notifier_for
from runner.notify.message import DeliveryError, NotConfigured

CONFIGURED = "configured"
NOT_CONFIGURED = "not_configured"
INVALID = "invalid"


@dataclass(frozen=True)
class ChannelState:
    """Whether one channel can send; what to set (``missing``) or what is wrong (``reason``)."""

    name: str
    type: str
    state: str  # configured | not_configured | invalid
    missing: tuple[str, ...] = ()  # environment variables to set, when not_configured
    reason: str | None = None  # when invalid: the notifier's reason (never a secret)

    @property
    def configured(self) -> bool:
        """Whether the channel can send."""
        return self.state == CONFIGURED

    def __str__(self) -> str:
        if self.state == NOT_CONFIGURED:
            return f"not configured: set {', '.join(self.missing)}"
        if self.state == INVALID:
            return f"invalid: {self.reason}"
        return CONFIGURED


def channel_state(channel: Channel, environ: Mapping[str, str]) -> ChannelState:
    """The state of *channel* with the secrets in *environ* (nothing is sent)."""
    try:
        notifier_for(channel, environ)
    except NotConfigured as e:
        return ChannelState(channel.name, channel.type, NOT_CONFIGURED, missing=e.variables)
    except DeliveryError as e:
        return ChannelState(channel.name, channel.type, INVALID, reason=e.reason)
    return ChannelState(channel.name, channel.type, CONFIGURED)


def channel_states(owners: Owners | None, environ: Mapping[str, str]) -> dict[str, ChannelState]:
    """The state of every channel of *owners*, by name, in name order.

    ``person:NAME`` targets are not listed: they send through the first e-mail channel, whose
    state is theirs.
    """
    channels = owners.channels if owners is not None else {}
    return {name: channel_state(channels[name], environ) for name in sorted(channels)}


def unusable_text(states: Iterable[ChannelState]) -> str | None:
    """One line naming the channels that cannot send and what to do about each; None if all can."""
    states = list(states)
    missing = [f"{s.name} (set {', '.join(s.missing)})" for s in states if s.state == NOT_CONFIGURED]
    invalid = [str(s.reason) for s in states if s.state == INVALID]  # reasons name their channel
    parts = []
    if missing:
        parts.append("notification channels not configured, their messages are skipped: "
                     + ", ".join(missing))
    if invalid:
        parts.append("notification channels misconfigured, their messages fail: " + "; ".join(invalid))
    return "; ".join(parts) or None
