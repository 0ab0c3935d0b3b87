"""The Batch: what one webhook request from any source becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.alerts.model import Alert


@dataclass(frozen=True)
class Batch:
    """One request's alerts with the envelope they came in.

    ``group_key`` is the sender's own key for the group (Alertmanager's and Grafana's
    ``groupKey``; None for the generic format, whose alerts each carry their fingerprint as
    their group key). ``truncated`` counts the alerts the sender left out (``max_alerts``).
    """

    source: str
    group_key: str | None
    status: str
    alerts: list[Alert]
    truncated: int
    receiver: str | None
    external_url: str | None
    raw: dict[str, Any]
