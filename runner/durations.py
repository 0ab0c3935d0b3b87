"""Durations as runbooks write them (``30s``, ``10m``, ``1h``, ``1d``, ``1h30m``) and RFC 3339 times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

PATTERN = r"^([0-9]+[smhd])+$"
_PART = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX = timedelta(days=3650)  # ten years: longer is a typo, and overflows timedelta soon after


def parse_duration(text: str) -> timedelta:
    """Parse ``10m`` into a timedelta; ValueError names the expected form."""
    if not isinstance(text, str) or not re.fullmatch(PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 1h or 1d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    if seconds > MAX.total_seconds():
        raise ValueError(f"{text!r} is longer than the longest allowed duration, {MAX.days}d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way runbooks write it (largest units first)."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with its offset (``2026-03-03T10:00:00Z``); ValueError names the form."""
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise ValueError(f"{text!r} is not an RFC 3339 time like 2026-03-03T10:00:00Z")
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # well-formed but impossible, like month 13
        raise ValueError(f"{text!r} is not an RFC 3339 time like 2026-03-03T10:00:00Z") from None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of a listing window in UTC: a duration back from *now* (``1h``, ``2d``) or an RFC 3339
    time; ValueError says why not (a time outside the calendar once in UTC included)."""
    try:
        if re.fullmatch(PATTERN, text):
            return (now or datetime.now(UTC)) - parse_duration(text)
        return parse_time(text).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the calendar once converted to UTC") from None


def human(seconds: float) -> str:
    """A duration the way runbooks write it, as precise as its size needs (42s, 12m5s, 3h12m, 2d5h)."""
    whole = round(seconds)
    for above, unit in ((86400, 3600), (3600, 60)):
        if whole >= above:
            whole = round(whole / unit) * unit
            break
    return format_duration(timedelta(seconds=whole))
