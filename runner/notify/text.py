"""Small text helpers every notifier shares: one-line summaries, truncation, redaction, context access."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

ELLIPSIS = "…"
# Step statuses that are not failures; anything else (failed, unreachable, timeout...) is.
OK_STATUSES = frozenset({"ok", "changed", "skipped", "success", "succeeded", "passed", "pending", "running"})


def one_line(text: str) -> str:
    """*text* with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def truncate(text: str, limit: int) -> str:
    """*text* cut to at most *limit* characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return (text[: limit - 1] + ELLIPSIS) if limit > 0 else ""


def tail(text: str, limit: int) -> str:
    """The last *limit* characters of *text*, starting with an ellipsis when cut (output tails)."""
    if len(text) <= limit:
        return text
    return (ELLIPSIS + text[len(text) - (limit - 1):]) if limit > 0 else ""


def redact(text: str, secrets: Iterable[str]) -> str:
    """*text* with every occurrence of each secret (of 4+ characters) replaced by ``***``."""
    for value in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def printable(raw: bytes, limit: int = 200) -> str:
    """A receiver's response body as one short line, for an error reason."""
    return truncate(one_line(raw.decode("utf-8", "replace")), limit)


def name_of(value: Any) -> str:
    """A short display name for a context value that may be a string or an object with a name."""
    if value is None or value == "":
        return ""
    if isinstance(value, dict):
        if value.get("team"):  # an owner: the team, and the person when there is one
            person = value.get("person") or value.get("member") or value.get("primary")
            return f"{value['team']} / {person}" if person else str(value["team"])
        for key in ("name", "title", "id"):
            if value.get(key):
                return str(value[key])
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def incident_status(context: dict[str, Any], kind: str) -> str:
    """The incident's status from the context, else what the message kind implies."""
    incident = context.get("incident")
    if isinstance(incident, dict) and incident.get("status"):
        return str(incident["status"])
    return {"escalation": "open", "acknowledge": "acknowledged", "resolve": "resolved"}.get(kind, "")


def failed_steps(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of the context whose status is not a success."""
    steps = context.get("steps")
    if not isinstance(steps, list):
        return []
    return [s for s in steps if isinstance(s, dict) and str(s.get("status", "")).lower() not in OK_STATUSES]


def next_steps(context: dict[str, Any]) -> list[str]:
    """The context's next steps as a list of lines (it may hold a string or a list)."""
    value = context.get("next_steps", context.get("next"))
    if not value:
        return []
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v, default=str) for v in value]
    return [str(value)]


def step_title(step: dict[str, Any]) -> str:
    """``name on host: status`` for a step of the context."""
    name = str(step.get("name") or "step")
    host = step.get("host")
    status = step.get("status") or "unknown"
    return f"{name} on {host}: {status}" if host else f"{name}: {status}"


def step_output(step: dict[str, Any]) -> str:
    """A step's output tail as text."""
    out = step.get("output", step.get("output_tail", ""))
    if out is None:
        return ""
    if isinstance(out, list):
        return "\n".join(str(line) for line in out)
    return str(out)
