"""The Alert: what every source's alerts are read into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

NO_ALERTNAME = "(no alertname)"  # how an alert without one reads; no runbook selects it


@dataclass(frozen=True)
class Alert:
    """One alert as every source is turned into: labels, annotations, status.

    Times are aware datetimes in UTC; ``ends_at`` is None while the alert fires. ``group_key``
    is the sender's key for the group the alert came in (the source parsers of runner.alerts set it).
    """

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    status: str = "firing"
    fingerprint: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str | None = None
    source: str = "generic"
    group_key: str | None = None

    @property
    def alertname(self) -> str:
        """The alertname label ('' when absent)."""
        return self.labels.get("alertname", "")

    @property
    def name(self) -> str:
        """The alertname for people: ``(no alertname)`` when the alert has none."""
        return self.alertname or NO_ALERTNAME

    @property
    def title(self) -> str:
        """One line about the alert: its summary annotation, else its alertname, else its labels."""
        summary = self.annotations.get("summary") or self.alertname
        return summary or f"{NO_ALERTNAME} {label_set(self.labels)}"


def label_set(labels: dict[str, str]) -> str:
    """*labels* as Prometheus writes a label set: ``{env="prod", instance="web-1"}``, sorted."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
