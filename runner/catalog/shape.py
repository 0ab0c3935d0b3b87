"""Stage one of validation: the shape of each file, checked against its JSON Schema."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from runner.catalog.problems import Problem, at
from runner.durations import PATTERN as DURATION_PATTERN
from runner.durations import parse_duration, parse_time
from runner.yamlsource import Document

KINDS = {"Runbook": "runbook", "Owners": "owners", "Policy": "policy"}
# Keywords whose failure is better explained by the schema's own errorMessage.
_EXPLAINED = {"pattern", "oneOf", "anyOf", "minProperties", "maxProperties", "not"}
FORMATS = FormatChecker(["email"])


@FORMATS.checks("runbook-duration", raises=ValueError)
def _is_duration(value: object) -> bool:
    if isinstance(value, str) and re.fullmatch(DURATION_PATTERN, value):  # the pattern reports the rest
        parse_duration(value)
    return True


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        parse_time(value)
    return True


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for a file kind: runbook, owners or policy."""
    text = resources.files("runner").joinpath("schemas", f"{kind}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace local ``#/$defs/x`` references by their target: resolving them dominates validation time."""
    if isinstance(node, list):
        return [_inline_refs(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$ref", "$defs")}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        out = {**target, **out}  # a sibling keyword (description) wins over the target's
    return out


@cache
def validator(kind: str) -> Draft202012Validator:
    """A compiled validator for a file kind (format checks on); our schemas have no recursive refs."""
    schema = load_schema(kind)
    return Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})), format_checker=FORMATS)


def _resolve(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the failure inside the value (when there is one) says more than the summary."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        inner = [e for e in error.context if e.relative_path]
        if inner:
            return _resolve(max(inner, key=lambda e: len(e.relative_path)))
    return error


def _message(error: ValidationError) -> str:
    if error.validator == "format" and error.cause is not None:
        return str(error.cause)
    if error.validator in _EXPLAINED and isinstance(error.schema, dict):
        custom = error.schema.get("errorMessage")
        if custom:
            quote = error.validator in ("pattern", "not")
            return f"{error.instance!r} {custom}" if quote else str(custom)
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        return _message(deepest)
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        known = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in known] if isinstance(error.instance, dict) else []
        hints = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return f"unknown field {', '.join(hints)}; allowed: {', '.join(known)}"
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        return f"missing required field '{missing.group(1)}'" if missing else error.message
    if error.validator == "const":
        return f"must be {error.validator_value!r}, not {error.instance!r}"
    return error.message


def check_shape(doc: Document, kind: str) -> list[Problem]:
    """Every schema violation in *doc*, one problem each, in file order."""
    problems = []
    for error in validator(kind).iter_errors(doc.data):
        error = _resolve(error)
        path = tuple(error.absolute_path)
        if "propertyNames" in error.absolute_schema_path:
            path = (*path, str(error.instance))  # the offending key itself
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = [k for k in error.instance if k not in known]
            if len(extra) == 1:
                path = (*path, extra[0])
        problems.append(at(doc, path, _message(error)))
    return sorted(problems, key=lambda p: p.line)
