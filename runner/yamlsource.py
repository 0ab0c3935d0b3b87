"""A strict YAML reader that keeps line numbers.

PyYAML's loaders silently keep the last of two duplicate keys and expand
aliases without limit; both are errors here. Every mapping and sequence read
remembers the line of each of its children so later stages can say
``file:line: field.path: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import YamlError

try:  # the C parser is ~10x faster; fall back when libyaml is absent
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

# A billion-laughs document stays small on disk and explodes when aliases are
# expanded; no honest runbook file comes near this many values.
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_BYTES = 5 * 1024 * 1024

Path_ = tuple[str | int, ...]
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def format_path(path: Path_) -> str:
    """Render ``("steps", 0, "timeout")`` as ``steps[0].timeout``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass
class Document:
    """One YAML document with the source line of every value in it."""

    file: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int:
        """Line of the value at *path*, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


class _Builder:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.count = 0
        self.active: set[int] = set()
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if len(self.active) >= MAX_DEPTH:
            raise YamlError(self.file, node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlError(
                self.file,
                node.start_mark.line + 1,
                f"document expands to more than {MAX_NODES} values (alias bomb?)",
            )
        self.lines[path] = node.start_mark.line + 1
        if id(node) in self.active:
            raise YamlError(self.file, node.start_mark.line + 1, "recursive alias")
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise YamlError(self.file, node.start_mark.line + 1, f"unsupported YAML tag {node.tag}")
        if isinstance(node, yaml.MappingNode):
            self.active.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self.active.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.active.add(id(node))
            try:
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:str":  # most values: skip the constructor
            return node.value
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # keep dates as written: the schema speaks JSON
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            raise YamlError(self.file, node.start_mark.line + 1, str(e.problem)) from e
        except (ValueError, KeyError, TypeError) as e:  # e.g. '!!int many', '!!bool maybe'
            raise YamlError(self.file, node.start_mark.line + 1,
                            f"{node.value!r} is not a valid !!{node.tag.rsplit(':', 1)[-1]} value") from e
        if isinstance(value, bytes | set):
            raise YamlError(self.file, node.start_mark.line + 1, f"unsupported YAML tag {node.tag}")
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        try:
            self.constructor.flatten_mapping(node)  # resolve '<<' merge keys
        except yaml.constructor.ConstructorError as e:
            raise YamlError(self.file, node.start_mark.line + 1, str(e.problem)) from e
        out: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        merged = len(node.value) - own  # merged pairs come first; own keys may override them
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is None or isinstance(key, list | dict):
                raise YamlError(self.file, line, "mapping keys must be plain scalars")
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if index < merged:
                out[key] = self.build(value_node, (*path, key))
                continue
            if key in first_seen:
                raise YamlError(
                    self.file,
                    line,
                    f"duplicate key '{key}' (first defined on line {first_seen[key]})",
                )
            first_seen[key] = line
            out[key] = self.build(value_node, (*path, key))
            self.lines[(*path, key)] = line
        return out


def _too_deep(text: str) -> int | None:
    """The line of the first value nested deeper than MAX_DEPTH, read up to any other parse error.

    Counts as ``_Builder.build`` does: a value inside MAX_DEPTH open collections is too deep.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # libyaml would stop first
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                continue
            if isinstance(event, yaml.NodeEvent):
                if depth >= MAX_DEPTH:
                    return event.start_mark.line + 1 if event.start_mark else 1
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
    except (yaml.YAMLError, RecursionError):
        pass
    return None


def _parse_error(error: BaseException, text: str, file: Path) -> YamlError:
    """The parser's *error* as a YamlError with file, line and column."""
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        char = chr(error.character) if isinstance(error.character, int) else error.character
        return YamlError(file, line, f"YAML error at column {column}: unacceptable character "
                         f"{char!r}: {error.reason}")
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        column = mark.column + 1 if mark else 1
        problem = error.problem or error.context or "invalid YAML"
        return YamlError(file, line, f"YAML syntax error at column {column}: {problem}")
    return YamlError(file, 1, f"YAML error: {error}")


def parse(text: str, file: Path) -> Document:
    """Parse one YAML document; raise YamlError with file, line and column on any fault."""
    if len(text) > MAX_BYTES:
        raise YamlError(file, 1, f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, RecursionError) as e:
        # Our depth limit answers first, whatever limit and wording the parser has of its own
        # (libyaml 0.2.5 stops at 1,000 levels and calls it a syntax error; pure Python recurses).
        deep = _too_deep(text)
        if deep is not None:
            raise YamlError(file, deep, f"nested deeper than {MAX_DEPTH} levels") from e
        if isinstance(e, RecursionError):
            raise YamlError(file, 1, f"nested deeper than {MAX_DEPTH} levels") from e
        raise _parse_error(e, text, file) from e
    if not nodes:
        return Document(file, None, {(): 1})
    if len(nodes) > 1:
        starts = [ev.start_mark.line + 1 for ev in yaml.parse(text, Loader=_Loader)
                  if isinstance(ev, yaml.DocumentStartEvent) and ev.start_mark is not None]
        raise YamlError(file, starts[1], "expected one YAML document, found several ('---')")
    builder = _Builder(file)
    data = builder.build(nodes[0], ())
    return Document(file, data, builder.lines)


def read(file: Path) -> Document:
    """Read and parse *file*; unreadable files become YamlError too."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise YamlError(file, 1, f"cannot read file: {e}") from e
    return parse(text, file)
