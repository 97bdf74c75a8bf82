"""Stand-ins for the Faust objects the worker shell talks to, so its parts run without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None


class FakeSink:
    """Records every send; deliveries complete at once unless ``hold`` is set, in which case they
    wait for :meth:`deliver`. ``events`` lists ``("sent" | "delivered", record)`` in order."""

    def __init__(self, *, hold: bool = False) -> None:
        self.sent: list[Sent] = []
        self.events: list[tuple[str, Sent]] = []
        self.hold = hold
        self.pending: list[tuple[Sent, asyncio.Future[object]]] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, *, partition: int | None = None
    ) -> Awaitable[object]:
        record = Sent(topic, key, value, partition)
        self.sent.append(record)
        self.events.append(("sent", record))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.pending.append((record, future))
        if not self.hold:
            self.deliver()
        return future

    def deliver(self) -> None:
        """Complete every delivery still pending."""
        for record, future in self.pending:
            future.set_result(None)
            self.events.append(("delivered", record))
        self.pending.clear()

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]


@dataclass
class _Changelog:
    name: str

    def get_topic_name(self) -> str:
        return self.name


class FakeTable:
    """A Faust table as :class:`streams.tables.BrandStore` uses it: ``data`` and its changelog."""

    def __init__(self, changelog: str) -> None:
        self.data: dict[bytes, Any] = {}
        self.changelog_topic = _Changelog(changelog)


@dataclass
class FakeConsumer:
    """Assignment and committed offsets as a test sets them."""

    assigned: set[TP] = field(default_factory=set)
    offsets: dict[TP, int] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def committed(self, tp: TP) -> int | None:
        return self.offsets.get(tp)
