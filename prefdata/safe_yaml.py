"""The one loader for every YAML file a user gives: specs, `align train CONFIG.yaml`, `align eval --judges`.

A YAML file is hostile input (DESIGN.md, rule 9). PyYAML's safe loader builds no objects, but it still
recurses once per nesting level (3,000 nested `[` gave a RecursionError), shares aliased nodes that
Pydantic then copies out ("billion laughs": nine anchors of nine aliases are 10^9 values), and lets the
last of two equal keys win silently. Here, before anything is built, one pass over PyYAML's event stream
(no recursion) bounds the size, the nesting depth and the number of values the aliases expand to; then
duplicate keys are an error, and `${NAME}` is interpolated into the parsed strings, never into the YAML
text: a comment is not interpolated and an environment value cannot add keys. Every error names file:line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import events

from prefdata.errors import PrefdataError

MAX_BYTES = 1 << 20  # 1 MiB: a spec with long judge templates is a few KB
MAX_DEPTH = 64  # nesting levels, aliases expanded
MAX_VALUES = 100_000  # scalars and collections, aliases expanded
ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MERGE = "tag:yaml.org,2002:merge"


@dataclass
class Loaded:
    data: Any
    node: yaml.Node | None  # for the line of a later (Pydantic) error
    env: dict[str, str] = field(default_factory=dict)  # interpolated ${NAME} values, to redact from outputs


def _fail(where: str, mark: Any, message: str) -> PrefdataError:
    line = f":{mark.line + 1}" if mark is not None else ""
    return PrefdataError(f"{where}{line}: {message}")


def check_shape(text: str, where: str) -> None:
    """Bound nesting depth and alias expansion in one pass over the events, before anything is composed."""
    expanded: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) of what it names
    stack: list[list] = []  # open collections: [values, height, anchor]
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (events.MappingStartEvent, events.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise _fail(where, event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
            stack.append([1, 1, event.anchor])
            total += 1
            continue
        if isinstance(event, (events.MappingEndEvent, events.SequenceEndEvent)):
            values, height, anchor = stack.pop()
        elif isinstance(event, events.ScalarEvent):
            values, height, anchor = 1, 0, event.anchor
            total += 1
        elif isinstance(event, events.AliasEvent):
            if any(frame[2] == event.anchor for frame in stack):  # *a inside &a: a cycle, endless once walked
                raise _fail(where, event.start_mark, f"alias *{event.anchor} is inside the value it names (a cycle)")
            values, height = expanded.get(event.anchor, (1, 0))  # an unknown anchor fails when composed
            anchor = None
            total += values
            if len(stack) + height > MAX_DEPTH:
                raise _fail(where, event.start_mark, f"alias *{event.anchor} nests deeper than {MAX_DEPTH} levels")
        else:
            continue
        if total > MAX_VALUES:
            raise _fail(where, event.start_mark, f"more than {MAX_VALUES:,} values"
                        + (f" once alias *{event.anchor} is expanded (anchors may repeat a part, not multiply "
                           "the file)" if isinstance(event, events.AliasEvent) else ""))
        if anchor is not None:
            expanded[anchor] = (values, height)
        if stack:
            stack[-1][0] += values
            stack[-1][1] = max(stack[-1][1], height + 1)


class _Loader(yaml.SafeLoader):
    """Safe loading, plus: duplicate keys refused, `${NAME}` interpolated into string values (not keys),
    and a value PyYAML cannot build (a 13th month, a 5,000-digit integer) reported at its line."""

    def __init__(self, text: str, where: str, interpolate: bool):
        super().__init__(text)
        self.where, self.interpolate, self.env = where, interpolate, {}
        self.in_key = False

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            self.in_key = True
            try:
                for key_node, _ in node.value:
                    if key_node.tag == MERGE:  # `<<: *base`: explicit keys override merged ones, as YAML says
                        continue
                    key = self.construct_object(key_node)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:
                        continue  # an unhashable key: PyYAML reports it below
                    if first is not key_node:
                        raise _fail(self.where, key_node.start_mark, f"duplicate key {key!r} (first on line "
                                    f"{first.start_mark.line + 1}; the last would silently win)")
            finally:
                self.in_key = False
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_str(self, node):
        value = self.construct_scalar(node)
        if not self.interpolate or self.in_key or "${" not in value:
            return value
        return ENV.sub(lambda match: self._env_value(match, node), value)

    def _env_value(self, match: re.Match, node) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            value = os.environ[name]
            if len(value) > MAX_BYTES:
                raise _fail(self.where, node.start_mark, f"environment variable {name} holds more than "
                            f"{MAX_BYTES:,} characters")
            self.env[name] = value
            return value
        if default is not None:
            return default
        raise _fail(self.where, node.start_mark, f"environment variable {name} is not set (write "
                    f"${{{name}:-default}} for a default)")


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


def loads(text: str, where: str, *, interpolate: bool = False) -> Loaded:
    """Parse one YAML document from `text`; `where` (a file name) starts every error message."""
    if len(text) > MAX_BYTES:
        raise PrefdataError(f"{where}: {len(text):,} characters, more than a YAML file here may hold "
                            f"({MAX_BYTES:,})")
    try:
        check_shape(text, where)
        loader = _Loader(text, where, interpolate)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        said = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        problem = ", ".join(str(part) for part in said if part) or str(exc)
        raise _fail(where, mark, f"invalid YAML ({' '.join(problem.split())})") from None
    return Loaded(data, node, loader.env)


def load(path: str | Path, *, what: str = "file", interpolate: bool = False) -> Loaded:
    """Read and parse a YAML file; `what` names it in the error when it cannot be read."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise PrefdataError(f"{path}: {size:,} bytes, more than a {what} may hold ({MAX_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PrefdataError(f"{path}: cannot read {what} ({exc})") from None
    return loads(text, str(path), interpolate=interpolate)


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the YAML node at `loc` (a Pydantic error location), or of its nearest parent that exists."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            key = str(part)  # an integer key (`1: x`) is located by its text too
            match = [v for k, v in node.value if k.value == key] or [k for k, _ in node.value if k.value == key]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
