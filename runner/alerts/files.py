"""Alerts from a file, as `runbook run --alert` and `runbook route --alert` read them (JSON or
YAML), with the parsers the server uses: an Alertmanager or Grafana webhook payload (told apart
by its ``version``), else our generic format (one alert, or ``{"alerts": [...]}``); a YAML list
of alerts reads as the generic batch of them. So a file reads here exactly as the same body
posted to the server would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.alerts import alertmanager, generic, grafana
from runner.alerts.model import Alert
from runner.alerts.sources import parse
from runner.yamlsource import read

_BY_VERSION = {alertmanager.VERSION: alertmanager.SOURCE, grafana.VERSION: grafana.SOURCE}


def source_of(data: Any) -> str:
    """Which source's format *data* is in: a webhook payload says so by its ``version``."""
    if isinstance(data, dict) and "version" in data and isinstance(data.get("alerts"), list):
        return _BY_VERSION.get(str(data["version"]), alertmanager.SOURCE)  # a wrong version: say so there
    return generic.SOURCE


def alerts_from_document(data: Any) -> list[Alert]:
    """The alerts of a decoded payload; AlertFormatError naming the field and the fault if any."""
    if isinstance(data, list):
        data = {"alerts": data}
    return parse(source_of(data), data).alerts


def read_alerts(file: Path) -> list[Alert]:
    """The alerts of a JSON or YAML file (JSON is YAML); AlertFormatError or YamlError if unreadable."""
    return alerts_from_document(read(file).data)
