"""Alertmanager-style label matchers: ``name="v"``, ``!=``, ``=~``, ``!~``.

Regexes are fully anchored as Alertmanager anchors them, and a label that is
absent matches as the empty string (so ``env!="prod"`` matches an alert with
no ``env`` label), again as Alertmanager does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_MATCHER = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s][^"]*?))\s*$""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class MatcherSyntaxError(ValueError):
    """A matcher string does not follow ``name op "value"``."""


@dataclass(frozen=True)
class Matcher:
    """One label matcher."""

    name: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether *labels* satisfy this matcher (absent label = empty string)."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        hit = self.regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def parse_matcher(text: str) -> Matcher:
    """Parse ``env=~"prod|staging"``; raise MatcherSyntaxError with the reason."""
    m = _MATCHER.match(text)
    if not m:
        raise MatcherSyntaxError(
            f'{text!r} is not a label matcher like env="prod", env!="dev", '
            'env=~"prod|staging" or env!~"test.*"'
        )
    name, op = m.group("name"), m.group("op")
    value = _unescape(m.group("quoted")) if m.group("quoted") is not None else m.group("bare")
    regex = None
    if op in ("=~", "!~"):
        try:
            re.compile(value)  # the bare value first, so error positions refer to what was written
            regex = re.compile(f"(?:{value})")
        except re.error as e:
            raise MatcherSyntaxError(f"{text!r}: invalid regular expression: {e}") from e
    return Matcher(name, op, value, regex)
