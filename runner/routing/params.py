"""Params: values taken from an alert or an operator, converted and checked.

Values that come from alerts are untrusted. They are only ever converted to
their declared type and checked against the runbook's rules here; the
executor hands them to Ansible as data that is never templated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from runner.alerts.model import Alert
from runner.catalog.models import Param, Runbook
from runner.errors import ParamError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
MAX_LENGTH = 1024
REDACTED = "***"


def redact_alert(runbook: Runbook, alert: Alert) -> tuple[dict[str, str], dict[str, str]]:
    """The alert's labels and annotations with the values that feed secret params replaced."""
    labels, annotations = dict(alert.labels), dict(alert.annotations)
    for param in runbook.params.values():
        if param.secret and param.source:
            kind, key = param.source.split(".", 1)
            target = labels if kind == "labels" else annotations
            if key in target:
                target[key] = REDACTED
    return labels, annotations


def redact(runbook: Runbook, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as shown and recorded: the values of secret ones replaced."""
    return {k: (REDACTED if k in runbook.params and runbook.params[k].secret else v)
            for k, v in params.items()}


def _text(value: Any) -> str:
    """How a value reads in an alert label: booleans as YAML and Prometheus write them."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def coerce(param: Param, raw: Any) -> Any:
    """Convert *raw* to the param's type and check every rule; ParamError names the rule.

    The message of a secret param never holds its value, however it was normalised.
    """
    return _coerce(param, raw, (lambda _: REDACTED) if param.secret else repr)


def _coerce(param: Param, raw: Any, shown: Callable[[Any], str]) -> Any:
    name = param.name
    if isinstance(raw, str) and len(raw) > MAX_LENGTH:
        raise ParamError(name, f"value is longer than {MAX_LENGTH} characters")
    value: Any
    if param.type == "string":
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise ParamError(name, f"expected a string, got {shown(raw)}")
        value = str(raw)
    elif param.type == "integer":
        if isinstance(raw, bool) or not (
            isinstance(raw, int) or (isinstance(raw, str) and re.fullmatch(r"[+-]?[0-9]+", raw))
        ):
            raise ParamError(name, f"expected an integer, got {shown(raw)}")
        value = int(raw)
    elif param.type == "number":
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        except (TypeError, ValueError):
            raise ParamError(name, f"expected a number, got {shown(raw)}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ParamError(name, f"expected a finite number, got {shown(raw)}")
    elif param.type == "boolean":
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            value = raw.lower() in _TRUE
        else:
            raise ParamError(name, f"expected true or false, got {shown(raw)}")
    else:  # enum
        text = str(raw).lower() if isinstance(raw, str) else _text(raw)
        matches = [v for v in param.values if v == raw or (_text(v) == text if isinstance(v, bool)
                                                           else str(v) == str(raw))]
        if not matches:
            allowed = ", ".join(_text(v) for v in param.values)
            raise ParamError(name, f"{shown(raw)} is not one of {allowed}")
        value = matches[0]
    if param.pattern_re is not None and not param.pattern_re.fullmatch(str(value)):
        raise ParamError(name, f"{shown(str(value))} does not match pattern {param.pattern}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    if param.minimum is not None and value < param.minimum:
        raise ParamError(name, f"{shown(value)} is below the minimum {param.minimum:g}")
    if param.maximum is not None and value > param.maximum:
        raise ParamError(name, f"{shown(value)} is above the maximum {param.maximum:g}")
    return value


def from_alert(param: Param, alert: Alert) -> str | None:
    """The raw value the alert gives for *param* (after extract), or None."""
    if param.source is None:
        return None
    kind, key = param.source.split(".", 1)
    raw = (alert.labels if kind == "labels" else alert.annotations).get(key)
    if raw is None or param.extract is None:
        return raw
    m = param.extract_re.fullmatch(raw) if param.extract_re else None
    if m is None or m.group(1) is None:
        shown = REDACTED if param.secret else repr(raw)
        raise ParamError(param.name, f"{param.source} {shown} does not match extract {param.extract}")
    return m.group(1)


def resolve_params(
    runbook: Runbook, alert: Alert | None = None, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every param's value: operator-given first, then the alert, then the default."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(runbook.params))
    if unknown:
        raise ParamError(unknown[0], f"runbook {runbook.name} has no such param")
    values: dict[str, Any] = {}
    for name, param in runbook.params.items():
        if name in given:
            raw = given[name]
        else:
            raw = from_alert(param, alert) if alert is not None else None
            if raw is None:
                raw = param.default
        if raw is None:
            if param.required:
                where = f" (no {param.source} in the alert)" if param.source else ""
                raise ParamError(name, f"a value is required{where} and there is no default")
            continue
        values[name] = coerce(param, raw)
    return values
