"""Stage one of validation: the shape of each file, checked against its JSON Schema."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.problems import Problem, at
from runner.yamlsource import Document

KINDS = {"Runbook": "runbook", "Owners": "owners", "Policy": "policy"}
# Keywords whose failure is better explained by the schema's own errorMessage.
_EXPLAINED = {"pattern", "oneOf", "anyOf", "minProperties", "maxProperties", "format"}


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for a file kind: runbook, owners or policy."""
    text = resources.files("runner").joinpath("schemas", f"{kind}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(kind: str) -> Draft202012Validator:
    """A compiled validator for a file kind (format checks on)."""
    return Draft202012Validator(load_schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _message(error: ValidationError) -> str:
    if error.validator in _EXPLAINED and isinstance(error.schema, dict):
        custom = error.schema.get("errorMessage")
        if custom:
            return f"{error.instance!r} {custom}" if error.validator == "pattern" else str(custom)
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
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = [k for k in error.instance if k not in known]
            if len(extra) == 1:
                path = (*path, extra[0])
        problems.append(at(doc, path, _message(error)))
    return sorted(problems, key=lambda p: p.line)
