"""Cursor bookkeeping shared by the polling sources, and the settings every HTTP source has.

A cursor is a JSON object the runner stores as an opaque string:

``{"marks": {"<stream>": {"t": 1700000000, "ids": ["..."]}}, "recent": ["<mention id>", ...]}``

* one *mark* per stream (a query, a hashtag, a subreddit): the newest position seen (an integer:
  epoch seconds, microseconds or a status id) and the item ids seen exactly at that position, so an
  item that appears later with the same timestamp is still fetched (no gap) while the ones already
  returned are not (no repeat);
* ``recent``: the last mention ids returned, so an item found by two streams (a post that matches a
  hashtag and a search) is returned once, whichever stream finds it first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.http import make_client

RECENT_IDS = 500
"""How many returned mention ids a cursor remembers for cross-stream deduplication."""

MAX_PROBLEMS = 100
"""How many problem descriptions a source keeps (the ``skipped`` count keeps counting)."""


class SourceSettings(BaseModel):
    """Settings every HTTP source shares (each source's model adds its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    author_salt: SecretStr = Field(
        default=SecretStr(""),
        description="per-deployment salt for hashing author handles into opaque ids",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="timeout of every HTTP call")
    max_pages: int = Field(
        default=10, ge=1, le=100, description="API pages per stream back-filled by a first fetch"
    )


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

    def claim(self, mention_id: str) -> bool:
        """True the first time a mention id is offered; False if it was returned recently."""
        if mention_id in self.recent:
            return False
        self.recent.append(mention_id)
        if len(self.recent) > RECENT_IDS * 2:
            del self.recent[:-RECENT_IDS]
        return True


class SkipLog:
    """``skipped`` and ``problems`` (see ``connectors.base.ReportsSkipped``), bounded."""

    def __init__(self) -> None:
        self.skipped = 0
        self.problems: list[str] = []

    def skip(self, reason: str) -> None:
        """Count one item that could not become a mention, and why."""
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(reason[:300])  # ids from the payload may be huge


def reason(exc: Exception) -> str:
    """A one-line, credential-free reason why an item could not become a mention."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return f"{where}: {first.get('msg', 'invalid')}"[:160]
        except (IndexError, TypeError, AttributeError):
            pass
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def problem(name: str, exc: Exception) -> str:
    """A ``check()`` problem from an error: its message without the source-name prefix."""
    return str(exc).removeprefix(f"{name}: ")


CATCH_UP_FACTOR = 10
"""A resumed newest-first walk may read this many times ``max_pages`` to reach its cursor."""


def page_budget(settings: SourceSettings, mark: Mark) -> int:
    """Pages a newest-first walk may read in one fetch.

    ``max_pages`` bounds the back-fill of a stream's first fetch; a resumed fetch reads on until it
    reaches its cursor (a backlog after downtime), up to ``CATCH_UP_FACTOR × max_pages``, since
    stopping earlier would leave a gap between the cursor and the pages read.
    """
    return settings.max_pages if mark.t == 0 else settings.max_pages * CATCH_UP_FACTOR


class HttpSourceSettings(SourceSettings):
    """Settings of a source over one HTTP API (each source gives ``base_url`` its default)."""

    base_url: str = Field(description="API base URL")


S = TypeVar("S", bound=HttpSourceSettings)


class HttpSource(SkipLog, Generic[S]):
    """Common construction of a source over one HTTP API: name, brand, settings and an httpx client.

    Tests inject ``transport`` (or a whole ``client``) to reach the local fakes; ``headers`` are
    sent with every request (e.g. a bearer token).
    """

    def __init__(
        self,
        name: str,
        brand: str,
        settings: S,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.brand = brand
        self.settings = settings
        self._client = client or make_client(
            settings.base_url, timeout_s=settings.timeout_s, transport=transport, headers=headers
        )
