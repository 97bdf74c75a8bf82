"""Cursor bookkeeping shared by the polling sources: where each stream stopped, what was returned.

A cursor is a JSON object the runner stores as an opaque string:

``{"marks": {"<stream>": {"t": 1700000000, "ids": ["..."]}}, "recent": ["<mention id>", ...]}``

* one *mark* per stream (a query, a hashtag, a subreddit): the newest position seen (an integer:
  epoch seconds, microseconds or a status id) and the item ids seen exactly at that position, so an
  item that appears later with the same timestamp is still fetched (no gap) while the ones already
  returned are not (no repeat);
* ``recent``: the last mention ids returned, so an item found by two streams (a post that matches a
  hashtag and a search) is returned once, whichever stream finds it first.

``page_budget`` bounds how many API pages one fetch of a stream may read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors.remote import SourceSettings
from streams.records import Mention

Item = tuple[int, str, Mention]
"""A mention found in a stream with its position there and its item id."""

RECENT_IDS = 500
"""How many returned mention ids a cursor remembers for cross-stream deduplication."""


@dataclass
class Mark:
    """The newest position seen in one stream and the ids seen exactly there."""

    t: int = 0
    ids: list[str] = field(default_factory=list)

    def is_new(self, t: int, item_id: str) -> bool:
        """Whether an item at position ``t`` has not been returned yet."""
        return t > self.t or (t == self.t and item_id not in self.ids)

    def is_older(self, t: int) -> bool:
        """Whether position ``t`` is strictly before this mark (a newest-first walk may stop)."""
        return t < self.t

    def advance(self, t: int, item_id: str) -> None:
        """Record that the item ``item_id`` at ``t`` has been seen."""
        if t > self.t:
            self.t, self.ids = t, [item_id]
        elif t == self.t and item_id not in self.ids:
            self.ids.append(item_id)

    def collect(self, items: Iterable[Item | None], pending: list[Item]) -> bool:
        """Add the items not returned yet to ``pending`` (``None``: an item that was skipped);
        True when one is older than this mark (a newest-first walk has reached what it saw)."""
        reached = False
        for item in items:
            if item is None:
                continue
            if self.is_older(item[0]):
                reached = True
            elif self.is_new(item[0], item[1]):
                pending.append(item)
        return reached

    def accept(self, pending: Iterable[Item], found: list[tuple[int, Mention]]) -> None:
        """Advance past every pending item and add its mention to ``found``."""
        for t, item_id, mention in pending:
            self.advance(t, item_id)
            found.append((t, mention))


@dataclass
class CursorState:
    """A decoded cursor (see the module docstring)."""

    marks: dict[str, Mark] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)
    started: bool = False

    @classmethod
    def loads(cls, cursor: str | None, source: str) -> CursorState:
        """Decode ``cursor`` (``None`` = the first fetch); ``ValueError`` if it is not ours."""
        if cursor is None:
            return cls()
        try:
            raw = json.loads(cursor)
            marks = {
                str(k): Mark(int(v["t"]), [str(i) for i in v.get("ids", [])])
                for k, v in raw["marks"].items()
            }
            recent = [str(i) for i in raw.get("recent", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError(f"{source}: not a cursor of this source: {cursor[:80]!r}") from None
        return cls(marks, recent, started=True)

    def dumps(self) -> str:
        """The cursor string for the runner to store."""
        return json.dumps(
            {
                "marks": {k: {"t": m.t, "ids": m.ids} for k, m in sorted(self.marks.items())},
                "recent": self.recent[-RECENT_IDS:],
            },
            separators=(",", ":"),
        )

    def mark(self, stream: str) -> Mark:
        """The mark of ``stream`` (a fresh one for a stream not seen before)."""
        return self.marks.setdefault(stream, Mark())

    def first_time(self, stream: str) -> bool:
        """Whether ``stream`` has never been fetched (a back-fill, bounded by ``max_pages``)."""
        return stream not in self.marks

    def answer(self, found: list[tuple[int, Mention]]) -> tuple[list[Mention], str]:
        """What ``fetch`` returns: the mentions found, oldest first (ties by id), without those
        returned recently, and the cursor to resume from."""
        found.sort(key=lambda pair: (pair[0], pair[1].id))
        return [m for _, m in found if self.claim(m.id)], self.dumps()

    def claim(self, mention_id: str) -> bool:
        """True the first time a mention id is offered; False if it was returned recently."""
        if mention_id in self.recent:
            return False
        self.recent.append(mention_id)
        if len(self.recent) > RECENT_IDS * 2:
            del self.recent[:-RECENT_IDS]
        return True


CATCH_UP_FACTOR = 10
"""A resumed newest-first walk may read this many times ``max_pages`` to reach its cursor."""


def page_budget(settings: SourceSettings, mark: Mark) -> int:
    """Pages a newest-first walk may read in one fetch.

    ``max_pages`` bounds the back-fill of a stream's first fetch; a resumed fetch reads on until it
    reaches its cursor (a backlog after downtime), up to ``CATCH_UP_FACTOR × max_pages``, since
    stopping earlier would leave a gap between the cursor and the pages read.
    """
    return settings.max_pages if mark.t == 0 else settings.max_pages * CATCH_UP_FACTOR
