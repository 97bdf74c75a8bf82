"""Event-time pacing: replay a finite source at the pace its mentions were written, sped up.

The one place pacing is decided (``connectors.runner.InstanceRunner`` asks before each mention).
Each mention is due ``(created_at - first created_at) / speedup`` seconds after the first one was
sent. The schedule is absolute, so a slow send never adds up into drift: a runner that is behind
is told to wait 0 until it has caught up.
"""

from __future__ import annotations

from datetime import datetime

from streams.clock import Clock

MIN_WAIT_S = 0.001
"""Waits shorter than this are skipped (the absolute schedule keeps them from accumulating)."""


class EventTimePacer:
    """How long to wait before sending each mention, ``speedup`` times faster than real time."""

    def __init__(self, speedup: float, clock: Clock) -> None:
        if speedup <= 0.0:
            raise ValueError(f"speedup must be positive, got {speedup}")
        self.speedup = speedup
        self.clock = clock
        self._anchor: tuple[float, datetime] | None = None

    def delay(self, created_at: datetime) -> float:
        """Seconds to wait before sending a mention written at ``created_at`` (0: send now).

        The first mention asked about anchors the schedule at the clock's current time.
        """
        now = self.clock.monotonic()
        if self._anchor is None:
            self._anchor = (now, created_at)
        started, first = self._anchor
        wait = started + (created_at - first).total_seconds() / self.speedup - now
        return wait if wait > MIN_WAIT_S else 0.0
