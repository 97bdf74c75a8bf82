"""Configuration YAML with line numbers: one loader for rules, lexicons, rule tests, routes and
connector configs, so every such file reports its errors as ``file:line: reason`` the same way.

Also the value types those files share: durations (``30s``, ``15m``, ``2h``, ``7d``) and the
``path: reason`` of a pydantic validation error, which the loaders turn into ``file:line: reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ValidationError

from streams.yamlsafe import YamlTooLarge, check_node


@dataclass
class LineMap:
    """1-based line of a YAML node, and of the children of mappings and sequences."""

    line: int
    children: dict[object, LineMap] = field(default_factory=dict)

    def line_of(self, path: tuple[object, ...]) -> int:
        """Line of the deepest node along ``path`` that exists."""
        loc = self
        for part in path:
            child = loc.children.get(part)
            if child is None:
                break
            loc = child
        return loc.line


def line_map(node: yaml.Node, file: str, error: type[Exception]) -> LineMap:
    """The lines of ``node``'s tree; a duplicate mapping key raises ``error`` with its line."""
    loc = LineMap(node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key in loc.children:
                raise error(f"{file}:{line}: duplicate key {key!r}")
            child = line_map(value_node, file, error)
            # Errors about a field point at its key, which is where a reader looks.
            child.line = line
            loc.children[key] = child
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            loc.children[index] = line_map(item, file, error)
    return loc


def read_text(path: Path, error: type[Exception], what: str) -> str:
    """A configuration file's UTF-8 text; raises ``error("file:1: reason")`` if it cannot be read
    (``what`` names the file's kind in that reason)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}:1: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}:1: not UTF-8 text: {exc.reason}") from None


def load_located(
    text: str, file: str, error: type[Exception], *, empty: str | None
) -> tuple[Any, LineMap]:
    """Parse one YAML document safely (``SafeLoader``, size and depth guards) with its line map.

    Every problem — invalid YAML, an empty document (``empty`` says what was expected), an alias
    bomb, deep nesting, a duplicate key — raises ``error("file:line: reason")``. With
    ``empty=None`` an empty document is allowed and gives ``None``.
    """
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # ReaderError: control characters
        raise error(f"{file}:1: invalid YAML: {str(exc).splitlines()[0]}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            if empty is None:
                return None, LineMap(1)
            raise error(f"{file}:1: {empty}")
        check_node(node)
        lines = line_map(node, file, error)
        data: Any = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise error(f"{file}:{line}: invalid YAML: {exc.problem}") from None
    except YamlTooLarge as exc:
        raise error(f"{file}:1: {exc}") from None
    except yaml.YAMLError as exc:  # ReaderError: control characters, bad encoding
        raise error(f"{file}:1: invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise error(f"{file}:1: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data, lines


_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``/``15m``/``2h``/``7d`` (or an existing ``timedelta``) into a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"duration must be a string like 30s, 15m, 2h or 7d, got {value!r}")
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(f"invalid duration {value!r} (use a number and s, m, h or d, e.g. 15m)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A pydantic field type for durations written as ``30s``, ``15m``, ``2h`` or ``7d``."""


def validation_reason(exc: ValidationError) -> tuple[tuple[object, ...], str]:
    """The path of the first error of ``exc`` (to find its line) and ``path: message``."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc)
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return loc, f"{where}: {message}" if where else message
