"""runbook-runner's own alert format, for any tool that is neither Alertmanager nor Grafana.

``{"alerts": [alert, ...]}`` or one alert object, each alert shaped like Alertmanager's
(labels, annotations, status, startsAt, endsAt, fingerprint, generatorURL), every field
but ``labels`` optional; the shape is schemas/alert.schema.json. The schema is checked first
and its first failures become AlertFormatError messages with the field's path; the alerts
are then read with the same checks as every other source's. An alert without a fingerprint
gets a computed one (see fields), which is also its group key: a generic payload has no
groups of its own.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any, cast

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from runner.alerts import fields
from runner.alerts.batch import Batch
from runner.alerts.fields import MAX_ALERTS, MAX_DEPTH, Problems, child, shown
from runner.catalog.shape import load_schema

SOURCE = "generic"
MAX_SCHEMA_ERRORS = 100  # counted in a message; a payload wrong in more places is not read to its end
_FORMATS = FormatChecker([])
_JSON_TYPES = {"object": "an object", "array": "a list", "string": "a string", "null": "null",
               "number": "a number", "integer": "a whole number", "boolean": "a boolean"}


@_FORMATS.checks("date-time", raises=ValueError)
def _is_time(value: object) -> bool:
    if isinstance(value, str):
        fields.to_time(value)
    return True


@cache
def validator() -> Draft202012Validator:
    """The compiled validator of schemas/alert.schema.json (time formats checked)."""
    return Draft202012Validator(load_schema("alert"), format_checker=_FORMATS)


def parse(payload: object) -> Batch:
    """A generic alert payload as a Batch; AlertFormatError names what is wrong."""
    if not isinstance(payload, dict):
        raise fields.fail("", fields.must_be('an object: one alert, or {"alerts": [...]}', payload))
    if fields.depth_over(payload, MAX_DEPTH):  # jsonschema recurses, and quotes values in its messages
        raise fields.fail("", f"nests objects and lists more than {MAX_DEPTH} deep")
    items = payload.get("alerts", [payload])
    if isinstance(items, list) and len(items) > MAX_ALERTS:  # before the schema walks a million
        raise fields.fail("alerts", fields.too_many(len(items), "alerts", MAX_ALERTS) + " per request")
    problems = Problems()
    errors = validator().iter_errors(payload)
    for error in itertools.islice(errors, MAX_SCHEMA_ERRORS):
        problems.add(*_describe(error))
    problems.check(uncounted=next(errors, None) is not None)
    alerts = []
    for i, data in enumerate(items):
        path = child("alerts", i) if "alerts" in payload else ""
        alert = fields.read_alert(data, path, problems, source=SOURCE, group_key=None, strict=False)
        if alert is not None:
            alerts.append(alert)
    problems.check()
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return Batch(source=SOURCE, group_key=None, status=status, alerts=alerts, truncated=0,
                 receiver=None, external_url=None, raw=payload)


def _describe(error: ValidationError) -> tuple[str, str]:
    """A schema failure as (field path, message), in the words the other sources use."""
    path = ""
    for key in error.absolute_path:
        path = child(path, key)
    instance, expected = error.instance, cast(Any, error.validator_value)
    if "propertyNames" in error.absolute_schema_path:  # the instance is the offending name
        name = str(instance)
        if error.validator == "pattern":
            return child(path, name), fields.bad_label_name(name)
        return child(path, name), f"{shown(name)} is not a valid name"
    match error.validator:
        case "type":
            return path, fields.must_be(_wanted(error), instance)
        case "required":
            missing = next((k for k in expected if isinstance(instance, dict) and k not in instance), "")
            if missing == "labels":
                return child(path, missing), "is required: every alert needs labels"
            return child(path, missing), "is required"
        case "enum":
            return path, fields.bad_status(instance)
        case "format":
            return path, fields.bad_time(str(instance))
        case "minLength":
            return path, "must not be empty"
        case "maxLength":
            return path, fields.too_long(str(instance), int(expected))
        case "maxProperties" if isinstance(instance, dict):
            return path, fields.too_many(len(instance), "labels", int(expected))
        case "minItems":
            return path, "must hold at least one alert"
    return path, error.message[:200]


def _wanted(error: ValidationError) -> str:
    """What a type failure asked for, named as the other sources name it (null passes silently)."""
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    types = [schema["type"]] if isinstance(schema.get("type"), str) else list(schema.get("type", []))
    types = [t for t in types if t != "null"] or types
    values = schema.get("additionalProperties")
    if schema.get("format") == "date-time":
        return "an RFC 3339 time string"
    if types == ["object"] and isinstance(values, dict) and values.get("type") == "string":
        return "an object of strings"
    return " or ".join(_JSON_TYPES.get(t, t) for t in types)
