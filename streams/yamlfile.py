"""Configuration YAML with line numbers: one loader for rules, lexicons, rule tests, routes and
connector configs, so every such file reports its errors as ``file:line: reason`` the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

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
