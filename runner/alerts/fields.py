"""What every source's alerts share: field paths, limits, label sets, RFC 3339 times, fingerprints.

Alert payloads are untrusted. Every reader here checks one field, records what is wrong
with it under the field's path (``alerts[2].labels.env: must be a string, not a number``)
and goes on, so one AlertFormatError names every problem (the first few of them).

Limits, per request: at most MAX_ALERTS alerts; per alert at most MAX_LABELS labels, each
value at most MAX_LABEL_VALUE characters; a fingerprint at most MAX_FINGERPRINT characters.
Label names follow Prometheus' classic rule ``[a-zA-Z_][a-zA-Z0-9_]*`` (the ``<labelname>``
placeholder of Alertmanager's configuration docs, prometheus/alertmanager docs/configuration.md).

Fingerprint (when the source gives none): the first 16 hex characters of the SHA-256 of the
labels sorted by name, each name and value UTF-8 encoded and followed by one 0xFF byte
(``name 0xFF value 0xFF name 0xFF value 0xFF ...``; 0xFF never occurs in UTF-8, so no two
label sets share an input). 16 hex characters is the length Alertmanager's own fingerprints
have.

Go's zero time, ``0001-01-01T00:00:00Z``, is what Alertmanager (and so Grafana) writes as
``endsAt`` while an alert fires: ``types.Alerts`` blanks an end not yet reached
(prometheus/alertmanager types/types.go). It becomes None. Every other time becomes an
aware datetime in UTC (Go writes nanoseconds; Python keeps microseconds).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.alerts.model import Alert
from runner.durations import parse_time
from runner.errors import AlertFormatError

MAX_ALERTS = 1000
MAX_LABELS = 100
MAX_LABEL_VALUE = 4096
MAX_FINGERPRINT = 128
MAX_DEPTH = 32  # nesting of objects and lists; real payloads need 4
MAX_SHOWN = 5  # problems spelled out in one AlertFormatError; the rest are counted
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
STATUSES = ("firing", "resolved")
GO_ZERO_TIME = datetime(1, 1, 1)  # compared with the wall time of a value whose offset is 0

_LABEL_NAME = re.compile(LABEL_NAME)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MISSING: Any = object()  # a field that is not there, as opposed to one that is null


class Problems:
    """Everything wrong with one payload, raised together as one AlertFormatError."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record *message* about the field at *path* ('' is the payload itself)."""
        self.items.append(f"{path or 'payload'}: {message}")

    def check(self, *, uncounted: bool = False) -> None:
        """Raise AlertFormatError naming the first problems, if any (*uncounted*: more were not read)."""
        if not self.items:
            return
        text = "; ".join(self.items[:MAX_SHOWN])
        if uncounted:
            text += " (and more)"
        elif len(self.items) > MAX_SHOWN:
            text += f" (and {len(self.items) - MAX_SHOWN} more)"
        raise AlertFormatError(text)


def fail(path: str, message: str) -> AlertFormatError:
    """One problem that makes reading further pointless (too many alerts, wrong version)."""
    problems = Problems()
    problems.add(path, message)
    return AlertFormatError(problems.items[0])


def child(path: str, key: str | int) -> str:
    """The path of *key* inside *path*: ``alerts[2]``, ``labels.env``, ``labels['a.b']``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{shown(key)}]"


def shown(value: object, limit: int = 60) -> str:
    """*value* as it may appear in a message: scalars quoted and cut short, containers named."""
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit else f"{text[:-1]}...{text[-1]}"
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}..."
    return kind(value)


def kind(value: object) -> str:
    """The JSON name of *value*'s type, with its article: 'a string', 'an object', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def must_be(expected: str, value: object) -> str:
    """The message for a value of the wrong type: 'must be a string, not a number'."""
    return f"must be {expected}, not {kind(value)}"


def bad_label_name(name: str) -> str:
    """The message for a label name Prometheus would refuse."""
    return f"{shown(name)} is not a valid label name (letters, digits and _, not starting with a digit)"


def too_long(value: str, limit: int) -> str:
    """The message for a string over its limit."""
    return f"is {len(value):,} characters long, more than the limit of {limit:,}"


def too_many(count: int, what: str, limit: int) -> str:
    """The message for a collection over its limit."""
    return f"holds {count:,} {what}, more than the limit of {limit:,}"


def bad_status(value: object) -> str:
    """The message for a status other than firing or resolved."""
    return f"must be firing or resolved, not {shown(value)}"


def bad_time(value: str) -> str:
    """The message for a string that is not an RFC 3339 time."""
    return f"{shown(value)} is not an RFC 3339 time like 2026-03-03T10:00:00Z"


def utf8(text: str) -> bool:
    """Whether *text* encodes as UTF-8 (JSON can smuggle in lone surrogates that do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_time(text: str) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime; Go's zero time is None. ValueError if not."""
    value = parse_time(text)
    if value.utcoffset() == timedelta(0) and value.replace(tzinfo=None) == GO_ZERO_TIME:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        raise ValueError(f"{text!r} is outside the range of dates") from None


def depth_over(value: object, limit: int) -> bool:
    """Whether *value* nests objects and lists more than *limit* deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in children)
    return False


def fingerprint(labels: dict[str, str]) -> str:
    """A stable 16-hex-character fingerprint of a label set; see the module docstring."""
    digest = hashlib.sha256()
    for name, value in sorted(labels.items()):
        digest.update(name.encode("utf-8") + b"\xff" + value.encode("utf-8") + b"\xff")
    return digest.hexdigest()[:16]


def string(
    obj: dict[Any, Any], key: str, path: str, problems: Problems, *, required: bool = False
) -> str | None:
    """A string field; absent (or null when optional) is None."""
    value = obj.get(key, MISSING)
    where = child(path, key)
    if value is MISSING or (value is None and not required):
        if required:
            problems.add(where, "is required")
        return None
    if not isinstance(value, str):
        problems.add(where, must_be("a string", value))
        return None
    if not utf8(value):
        problems.add(where, "is not valid UTF-8 text")
        return None
    return value


def str_map(value: object, path: str, problems: Problems) -> dict[str, str]:
    """An object of strings (annotations, commonLabels...); absent or null is empty."""
    if value is MISSING or value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(path, must_be("an object of strings", value))
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not utf8(key):
            problems.add(child(path, str(key)), f"{shown(key)} is not a valid name")
        elif not isinstance(item, str):
            problems.add(child(path, key), must_be("a string", item))
        elif not utf8(item):
            problems.add(child(path, key), "is not valid UTF-8 text")
        else:
            out[key] = item
    return out


def labels(value: object, path: str, problems: Problems) -> dict[str, str]:
    """An alert's labels: valid names, string values within limits.

    No label is required, alertname included: Alertmanager does not require it and does not
    retry a 4xx, so refusing such an alert would lose it. An alert without one (or with an empty
    one, which Prometheus reads as absent) matches no runbook and goes to the default owner.
    """
    if value is MISSING:
        problems.add(path, "is required: every alert needs labels")
        return {}
    if not isinstance(value, dict):
        problems.add(path, must_be("an object of strings", value))
        return {}
    if len(value) > MAX_LABELS:
        problems.add(path, too_many(len(value), "labels", MAX_LABELS))
        return {}
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):  # not match: $ allows a "\n"
            problems.add(child(path, name if isinstance(name, str) else str(name)), bad_label_name(str(name)))
        elif not isinstance(item, str):
            problems.add(child(path, name), must_be("a string", item))
        elif len(item) > MAX_LABEL_VALUE:
            problems.add(child(path, name), too_long(item, MAX_LABEL_VALUE))
        elif not utf8(item):
            problems.add(child(path, name), "is not valid UTF-8 text")
        else:
            out[name] = item
    return out


def status(value: object, path: str, problems: Problems, *, default: str | None = None) -> str:
    """firing or resolved; absent is *default*, or a problem when there is none."""
    if value is MISSING and default is not None:
        return default
    if value is MISSING:
        problems.add(path, "is required: firing or resolved")
    elif value not in STATUSES:
        problems.add(path, bad_status(value))
    else:
        return str(value)
    return default or "firing"


def timestamp(value: object, path: str, problems: Problems, *, required: bool = False) -> datetime | None:
    """An RFC 3339 time (see to_time); absent or null is None unless *required*."""
    if value is MISSING or value is None:
        if required:
            problems.add(path, "is required: an RFC 3339 time")
        return None
    if not isinstance(value, str):
        problems.add(path, must_be("an RFC 3339 time string", value))
        return None
    try:
        return to_time(value)
    except ValueError:
        problems.add(path, bad_time(value))
        return None


def count(value: object, path: str, problems: Problems) -> int:
    """A count that is not negative (truncatedAlerts); absent or null is 0."""
    if value is MISSING or value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.add(path, f"must be a whole number of 0 or more, not {shown(value)}")
        return 0
    return value


def alert_list(payload: dict[Any, Any], problems: Problems) -> list[Any]:
    """The ``alerts`` list: present, not empty, within MAX_ALERTS (beyond it, raises at once)."""
    value = payload.get("alerts", MISSING)
    if value is MISSING:
        problems.add("alerts", "is required: a list of alerts")
        return []
    if not isinstance(value, list):
        problems.add("alerts", must_be("a list", value))
        return []
    if len(value) > MAX_ALERTS:
        raise fail("alerts", too_many(len(value), "alerts", MAX_ALERTS) + " per request")
    if not value:
        problems.add("alerts", "must hold at least one alert")
    return value


def read_alert(
    data: object, path: str, problems: Problems, *, source: str, group_key: str | None, strict: bool
) -> Alert | None:
    """One alert object. Webhooks (*strict*) always send status and startsAt; generic alerts may not."""
    if not isinstance(data, dict):
        problems.add(path, must_be("an object", data))
        return None
    before = len(problems.items)
    lbls = labels(data.get("labels", MISSING), child(path, "labels"), problems)
    annotations = str_map(data.get("annotations", MISSING), child(path, "annotations"), problems)
    st = status(data.get("status", MISSING), child(path, "status"), problems,
                default=None if strict else "firing")
    starts_at = timestamp(data.get("startsAt", MISSING), child(path, "startsAt"), problems, required=strict)
    ends_at = timestamp(data.get("endsAt", MISSING), child(path, "endsAt"), problems)
    generator_url = string(data, "generatorURL", path, problems)
    given = string(data, "fingerprint", path, problems)
    if given is not None and len(given) > MAX_FINGERPRINT:
        problems.add(child(path, "fingerprint"), too_long(given, MAX_FINGERPRINT))
    if len(problems.items) > before:
        return None
    fp = given or fingerprint(lbls)
    return Alert(
        labels=lbls,
        annotations=annotations,
        status=st,
        fingerprint=fp,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url or None,
        source=source,
        group_key=group_key if group_key is not None else fp,
    )
