"""The Alert model and the alert shapes the CLI reads (Alertmanager webhook, one alert)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.errors import AlertFormatError

NO_ALERTNAME = "(no alertname)"  # how an alert without one reads; no runbook selects it


@dataclass(frozen=True)
class Alert:
    """One alert as every source is turned into: labels, annotations, status.

    Times are aware datetimes in UTC; ``ends_at`` is None while the alert fires. ``group_key``
    is the sender's key for the group the alert came in (runner.intake sets it).
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


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertFormatError(f"{what} must be an object of strings, got {type(value).__name__}")
    bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise AlertFormatError(f"{what}.{bad[0]} must be a string")
    return dict(value)


def _time(value: Any, what: str) -> datetime | None:
    # Imported here: runner.intake imports this module for Alert.
    from runner.alerts.fields import bad_time, to_time

    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AlertFormatError(f"{what} must be an RFC 3339 time string")
    try:
        return to_time(value)
    except ValueError:
        raise AlertFormatError(f"{what}: {bad_time(value)}") from None


def alert_from_dict(data: Any, source: str = "generic", status: str | None = None) -> Alert:
    """One alert from ``{labels, annotations, status, ...}`` (Alertmanager's alert shape)."""
    if not isinstance(data, dict):
        raise AlertFormatError("an alert must be an object with labels")
    if "labels" not in data:
        raise AlertFormatError("an alert needs labels")
    st = data.get("status", status or "firing")
    if st not in ("firing", "resolved"):
        raise AlertFormatError(f"status must be firing or resolved, not {st!r}")
    return Alert(
        labels=_str_map(data["labels"], "labels"),
        annotations=_str_map(data.get("annotations"), "annotations"),
        status=st,
        fingerprint=data.get("fingerprint"),
        starts_at=_time(data.get("startsAt"), "startsAt"),
        ends_at=_time(data.get("endsAt"), "endsAt"),
        generator_url=data.get("generatorURL"),
        source=source,
    )


def alerts_from_document(data: Any) -> list[Alert]:
    """Alerts from an Alertmanager webhook payload (``alerts`` list) or one alert."""
    if isinstance(data, dict) and "alerts" in data:
        if not isinstance(data["alerts"], list):
            raise AlertFormatError("alerts must be a list")
        group_status = data.get("status")
        return [
            alert_from_dict(
                a, "alertmanager", group_status if group_status in ("firing", "resolved") else None
            )
            for a in data["alerts"]
        ]
    if isinstance(data, list):
        return [alert_from_dict(a) for a in data]
    return [alert_from_dict(data)]


def read_alerts(file: Path) -> list[Alert]:
    """The alerts of a JSON or YAML file (JSON is YAML); AlertFormatError or YamlError if unreadable."""
    from runner.catalog.source import read  # yamlsource raises YamlError for unreadable files too

    return alerts_from_document(read(file).data)
