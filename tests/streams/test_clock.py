"""The one clock type: the system clock tells the time, the fake one moves only when told."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from streams.clock import SYSTEM_CLOCK, Clock, FakeClock


def test_system_clock_is_aware_utc_and_agrees_with_epoch_seconds() -> None:
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is UTC
    assert abs(SYSTEM_CLOCK.time() - now.timestamp()) < 5.0
    assert SYSTEM_CLOCK.monotonic() <= SYSTEM_CLOCK.monotonic()


def test_fake_clock_moves_only_when_advanced_or_slept_on() -> None:
    clock: Clock = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert clock.now() == datetime(2026, 3, 1, 12, tzinfo=UTC)
    mono = clock.monotonic()
    clock.sleep(30)
    assert clock.now() == datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    assert clock.monotonic() == mono + 30
    assert clock.time() == clock.now().timestamp()


def test_fake_clock_records_sleeps_and_refuses_to_go_back() -> None:
    clock = FakeClock()
    clock.sleep(1.5)
    asyncio.run(clock.asleep(2.0))
    assert clock.sleeps == [1.5, 2.0]
    clock.advance(60)
    assert clock.now() - FakeClock().now() == timedelta(seconds=63.5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 1, 1))


def test_wait_returns_at_once_when_stopped_and_sleeps_otherwise() -> None:
    clock = FakeClock()
    stop = threading.Event()
    assert clock.wait(stop, 10) is False
    assert clock.sleeps == [10]
    stop.set()
    assert clock.wait(stop, 10) is True
    assert clock.sleeps == [10]
    assert SYSTEM_CLOCK.wait(stop, 10) is True
