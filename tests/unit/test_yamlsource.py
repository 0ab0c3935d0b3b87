from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner import yamlsource
from runner.errors import YamlError
from runner.yamlsource import format_path, parse, read

F = Path("x.yaml")


def test_lines_are_kept_for_nested_values() -> None:
    doc = parse("a: 1\nsteps:\n  - name: one\n    timeout: 10m\n  - name: two\n", F)
    assert doc.data == {"a": 1, "steps": [{"name": "one", "timeout": "10m"}, {"name": "two"}]}
    assert doc.line(("steps", 0, "timeout")) == 4
    assert doc.line(("steps", 1, "name")) == 5
    # a path below a known value falls back to its nearest ancestor
    assert doc.line(("steps", 1, "name", "deeper")) == 5


def test_duplicate_keys_are_an_error_naming_both_lines() -> None:
    with pytest.raises(YamlError) as e:
        parse("name: a\ntitle: t\nname: b\n", F)
    assert e.value.line == 3
    assert "duplicate key 'name' (first defined on line 1)" in e.value.message


def test_nested_duplicate_keys_are_an_error() -> None:
    with pytest.raises(YamlError) as e:
        parse("authority:\n  max_hosts: 1\n  max_hosts: 5\n", F)
    assert e.value.line == 3


def test_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(YamlError) as e:
        parse("a: 1\nb: [1, 2\nc: 3\n", F)
    assert e.value.line == 3
    assert "YAML syntax error at column" in e.value.message
    assert str(e.value).startswith("x.yaml:3: ")


def test_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    with pytest.raises(YamlError) as e:
        parse("\n".join(lines) + "\n", F)
    assert "alias bomb" in e.value.message


def test_small_aliases_and_merge_keys_work() -> None:
    doc = parse("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n", F)
    assert doc.data["use"] == {"x": 1, "y": 3}


def test_timestamps_stay_strings_and_keys_are_strings() -> None:
    doc = parse("at: 2026-03-03T10:00:00Z\n1: one\ntrue: yes\n", F)
    assert doc.data == {"at": "2026-03-03T10:00:00Z", "1": "one", "true": True}


def test_several_documents_are_refused() -> None:
    with pytest.raises(YamlError) as e:
        parse("a: 1\n---\nb: 2\n", F)
    assert e.value.line == 2  # the '---' that starts the second document


def test_binary_and_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(YamlError, match="cannot read file"):
        read(bad)
    with pytest.raises(YamlError, match="cannot read file"):
        read(tmp_path / "missing.yaml")


def test_format_path() -> None:
    assert format_path(("steps", 0, "timeout")) == "steps[0].timeout"
    assert format_path(("a", "b")) == "a.b"
    assert format_path(()) == "(document)"


@pytest.mark.parametrize("levels", [65, 1_500, 5_000])
@pytest.mark.parametrize("loader", ["C", "Python"])
def test_our_depth_limit_answers_first_whatever_the_parser(
    levels: int, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libyaml refuses 1,000 levels itself, as a 'syntax error'; pure Python recurses: we say which."""
    if loader == "Python":
        monkeypatch.setattr(yamlsource, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML was built without libyaml")
    text = "name: deep\ntitle: t\ndescription: " + "[" * levels + "]" * levels + "\n"
    with pytest.raises(YamlError) as e:
        parse(text, F)
    assert (e.value.line, e.value.message) == (3, "nested deeper than 64 levels")


def test_the_depth_limit_names_the_line_of_the_first_value_too_deep() -> None:
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(70)) + f"{'  ' * 70}leaf\n"
    with pytest.raises(YamlError) as e:
        parse(block, F)
    assert (e.value.line, e.value.message) == (65, "nested deeper than 64 levels")
    # 63 levels inside the document's mapping is within the limit
    ok = "".join(f"{'  ' * i}k{i}:\n" for i in range(63)) + f"{'  ' * 63}leaf\n"
    value = parse(ok, F).data
    for i in range(63):
        value = value[f"k{i}"]
    assert value == "leaf"


def test_a_syntax_error_in_shallow_text_is_still_a_syntax_error() -> None:
    with pytest.raises(YamlError) as e:
        parse("a: [[[1]]\nb: 2\n", F)
    assert "YAML syntax error" in e.value.message and "nested" not in e.value.message
