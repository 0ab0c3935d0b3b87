from __future__ import annotations

import pytest

from runner.catalog.matchers import MatcherSyntaxError, parse_matcher


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('env="prod"', {"env": "prod"}, True),
        ('env="prod"', {"env": "production"}, False),
        ('env!="prod"', {"env": "dev"}, True),
        ('env!="prod"', {}, True),  # absent label is the empty string
        ('env=""', {}, True),
        ('env=~"prod|staging"', {"env": "staging"}, True),
        ('env=~"prod"', {"env": "production"}, False),  # fully anchored
        ('env=~"prod"', {"env": "preprod"}, False),
        ('env=~"prod.*"', {"env": "production"}, True),
        ('env!~"test.*"', {"env": "testing"}, False),
        ('env!~"test.*"', {"env": "prod"}, True),
        ('env=~".*"', {}, True),
        ('env=~".+"', {}, False),
        ("env=prod", {"env": "prod"}, True),  # unquoted values, as Alertmanager accepts
        ('path="C:\\\\x"', {"path": "C:\\x"}, True),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
        (' env = "prod" ', {"env": "prod"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_rendering_round_trips() -> None:
    m = parse_matcher('msg=~"a\\"b|c"')
    assert str(m) == 'msg=~"a\\"b|c"'
    assert parse_matcher(str(m)) == m


@pytest.mark.parametrize(
    "text", ["env", 'env=="prod"', '="prod"', '1env="x"', 'env~"x"', 'env="unterminated']
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(MatcherSyntaxError, match="is not a label matcher"):
        parse_matcher(text)


def test_invalid_regex() -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
        parse_matcher('env=~"(prod"')
