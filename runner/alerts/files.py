"""Alerts from a file, as `runbook run --alert` and `runbook route --alert` read them: an
Alertmanager webhook payload (its ``alerts``), a list of alerts, or one alert, in JSON or YAML."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from runner.alerts.fields import bad_time, to_time
from runner.alerts.model import Alert
from runner.errors import AlertFormatError
from runner.yamlsource import read


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
    return alerts_from_document(read(file).data)
