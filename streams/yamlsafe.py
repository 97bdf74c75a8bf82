"""Guards for configuration YAML read with ``yaml.SafeLoader``: alias bombs and deep nesting.

``SafeLoader`` never runs code, but a small file can still describe a huge document through
aliases (``*a`` nine times, nine levels deep: 387 million nodes, the "billion laughs") and a deeply
nested one (``[[[[…``) exhausts the composer's recursion. Parsers that walk the node tree call
:func:`check_node` first and turn :class:`YamlTooLarge` (and ``RecursionError``) into their own
``file:line: reason`` error.
"""

from __future__ import annotations

import yaml

MAX_NODES = 100_000
"""Largest number of nodes a configuration document may expand to (aliases counted each time)."""


class YamlTooLarge(ValueError):
    """The document expands to more than :data:`MAX_NODES` nodes."""


def check_node(node: yaml.Node, limit: int = MAX_NODES) -> int:
    """The expanded node count of ``node``; ``YamlTooLarge`` beyond ``limit``. Linear in the
    number of distinct nodes (a shared, aliased node is sized once)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        known = sizes.get(id(n))
        if known is not None:
            return known
        total = 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                total += size(key) + size(value)
                if total > limit:
                    break
        elif isinstance(n, yaml.SequenceNode):
            for item in n.value:
                total += size(item)
                if total > limit:
                    break
        if total > limit:
            raise YamlTooLarge(f"document expands to more than {limit} nodes (too many aliases?)")
        sizes[id(n)] = total
        return total

    return size(node)
