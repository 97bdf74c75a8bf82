"""The one clock type: wall time, monotonic time and waiting, injected wherever time is needed.

Every component that needs the time takes a :class:`Clock` (``clock: Clock = SYSTEM_CLOCK``) and
asks it; nothing else in listenwell calls ``time.time()``, ``datetime.now()`` or ``time.sleep()``.
Tests pass a :class:`FakeClock`, whose time moves only when a test advances it or code sleeps on
it, so timers, back-off, pacing and group waits are tested without waiting (as arroyo's
``MockedClock``). The pure core (scoring, windows, rules) takes no clock at all: it is given the
event time or the watermark it must act on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """What time it is, and how to wait."""

    def now(self) -> datetime:
        """Wall time, aware UTC."""

    def time(self) -> float:
        """Wall time as epoch seconds (the unit of Kafka record timestamps / 1000)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and deadlines)."""

    def sleep(self, seconds: float) -> None:
        """Block this thread for ``seconds``."""

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` or until ``stop`` is set; True if it was set."""

    async def asleep(self, seconds: float) -> None:
        """Suspend this coroutine for ``seconds``."""


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
"""The default clock of every component."""


class FakeClock:
    """A clock for tests: time stands still until :meth:`advance` or a sleep moves it.

    Wall and monotonic time move together. Every sleep is recorded in :attr:`sleeps`.
    """

    def __init__(self, start: datetime = datetime(2026, 1, 5, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._epoch = start.timestamp()
        self._monotonic = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._epoch, UTC)

    def time(self) -> float:
        return self._epoch

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._epoch += seconds
        self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        if stop.is_set():
            return True
        self.sleep(seconds)
        return stop.is_set()

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)
