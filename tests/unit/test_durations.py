"""The start of a listing window (``--since``, ``?since=``): a duration back, or a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runner.durations import parse_since

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_duration_counts_back_from_now_and_a_time_is_taken_in_utc() -> None:
    assert parse_since("1h30m", NOW) == NOW - timedelta(hours=1, minutes=30)
    since = parse_since("2026-11-23T14:00:00+02:00", NOW)
    assert since == NOW and since.tzinfo is UTC
    assert parse_since("2026-11-23T12:00:00Z", NOW) == NOW


@pytest.mark.parametrize(("text", "reason"), [
    ("yesterday", "is not an RFC 3339 time"),
    ("1y", "is not an RFC 3339 time"),
    ("99999999d", "longer than the longest allowed duration"),
    ("0001-01-01T00:00:00+01:00", "outside the calendar"),
    ("9999-12-31T23:59:59-01:00", "outside the calendar"),
])
def test_what_is_neither_is_a_value_error_that_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_since(text, NOW)
