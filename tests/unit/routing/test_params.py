from __future__ import annotations

from typing import Any

import pytest

from runner.alerts.model import Alert
from runner.catalog.models import Param
from runner.errors import ParamError
from runner.routing.params import coerce, from_alert


@pytest.mark.parametrize(
    ("param", "raw", "value"),
    [
        (Param("n", "integer"), "42", 42),
        (Param("n", "integer"), 7, 7),
        (Param("n", "integer", minimum=1, maximum=9), "9", 9),
        (Param("x", "number"), "2.5", 2.5),
        (Param("b", "boolean"), "yes", True),
        (Param("b", "boolean"), "FALSE", False),
        (Param("b", "boolean"), True, True),
        (Param("s", "string", pattern="[a-z]+"), "abc", "abc"),
        (Param("e", "enum", values=("restart", "reload")), "reload", "reload"),
        (Param("e", "enum", values=(1, 2)), "2", 2),
    ],
)
def test_coerce_accepts(param: Param, raw: Any, value: Any) -> None:
    assert coerce(param, raw) == value


@pytest.mark.parametrize(
    ("param", "raw", "message"),
    [
        (Param("n", "integer"), "4.5", "param n: expected an integer, got '4.5'"),
        (Param("n", "integer"), True, "param n: expected an integer, got True"),
        (Param("n", "integer", minimum=1), "0", "param n: 0 is below the minimum 1"),
        (Param("n", "integer", maximum=9), "10", "param n: 10 is above the maximum 9"),
        (Param("x", "number"), "nan", "param x: expected a finite number, got 'nan'"),
        (Param("x", "number"), "abc", "param x: expected a number, got 'abc'"),
        (Param("b", "boolean"), "maybe", "param b: expected true or false, got 'maybe'"),
        (Param("s", "string", pattern="[a-z]+"), "abc; rm -rf /", "does not match pattern [a-z]+"),
        (Param("s", "string"), ["list"], "param s: expected a string, got ['list']"),
        (Param("s", "string"), "x" * 2000, "longer than 1024 characters"),
        (Param("e", "enum", values=("a", "b")), "c", "param e: 'c' is not one of a, b"),
    ],
)
def test_coerce_refuses_with_the_rule(param: Param, raw: Any, message: str) -> None:
    with pytest.raises(ParamError) as e:
        coerce(param, raw)
    assert message in str(e.value)


def test_pattern_is_fully_anchored() -> None:
    with pytest.raises(ParamError):
        coerce(Param("s", "string", pattern="[a-z]+"), "abc\n")
    with pytest.raises(ParamError):
        coerce(Param("s", "string", pattern="web-[0-9]"), "web-1.evil")


def test_from_alert_reads_labels_and_annotations_and_extracts() -> None:
    alert = Alert({"alertname": "A", "instance": "web-1:9100"}, {"path": "/tmp/x"})
    host = Param("host", "string", source="labels.instance", extract="([a-z0-9-]+)(:[0-9]+)?")
    assert from_alert(host, alert) == "web-1"
    assert from_alert(Param("p", "string", source="annotations.path"), alert) == "/tmp/x"
    assert from_alert(Param("p", "string", source="labels.missing"), alert) is None
    assert from_alert(Param("p", "string"), alert) is None
    with pytest.raises(ParamError, match="does not match extract"):
        from_alert(host, Alert({"instance": "web_1:x"}))


def test_enum_booleans_match_alert_text_case_insensitively() -> None:
    flag = Param("f", "enum", values=(True, False))
    assert coerce(flag, "true") is True and coerce(flag, "False") is False
    with pytest.raises(ParamError, match="'yes' is not one of true, false"):
        coerce(flag, "yes")


def test_limits_apply_to_numbers_only() -> None:
    # a misplaced minimum on a string is a validation problem, never a crash here
    assert coerce(Param("s", "string", minimum=1), "abc") == "abc"


def test_secret_values_never_appear_in_messages() -> None:
    token = Param("token", "string", pattern="[a-f0-9]{8}", secret=True)
    with pytest.raises(ParamError) as e:
        coerce(token, "hunter2-hunter2")
    assert str(e.value) == "param token: *** does not match pattern [a-f0-9]{8}"
    sized = Param("pin", "integer", maximum=9999, secret=True)
    for raw in ("123456", "0123456"):  # normalised or not, the value never shows
        with pytest.raises(ParamError) as e:
            coerce(sized, raw)
        assert "123456" not in str(e.value) and str(e.value) == "param pin: *** is above the maximum 9999"
    extracted = Param("key", "string", source="labels.key", extract="k-([0-9]+)", secret=True)
    with pytest.raises(ParamError) as e:
        from_alert(extracted, Alert({"key": "leaked-value"}))
    assert "leaked-value" not in str(e.value)
