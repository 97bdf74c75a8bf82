"""The consumer-lag probe, with a fake consumer and fake end offsets; the stall watchdog."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.clock import FakeClock
from streams.lag import LagProbe, StallWatchdog
from streams.metrics import WorkerMetrics
from tests.streams.fakes import FakeConsumer

LOGICAL = {"p.mentions.raw": "mentions.raw"}


def lag(metrics: WorkerMetrics, topic: str = "mentions.raw") -> float | None:
    return metrics.registry.get_sample_value("listenwell_consumer_lag_messages", {"topic": topic})


def test_lag_is_end_minus_committed_summed_over_the_assigned_partitions() -> None:
    raw0, raw1, changelog = TP("p.mentions.raw", 0), TP("p.mentions.raw", 1), TP("app-brands", 0)
    consumer = FakeConsumer(assigned={raw0, raw1, changelog}, offsets={raw0: 90, raw1: 10})
    asked: list[list[TP]] = []

    def end_offsets(partitions: list[TP]) -> dict[tuple[str, int], int]:
        asked.append(partitions)
        return {("p.mentions.raw", 0): 100, ("p.mentions.raw", 1): 10}

    metrics = WorkerMetrics(CollectorRegistry())
    asyncio.run(LagProbe(consumer, end_offsets, LOGICAL, metrics.consumer_lag).measure())

    assert lag(metrics) == 10
    assert asked == [[raw0, raw1]], "only the topics it measures are asked about"


def test_a_partition_never_committed_counts_from_zero_and_lag_is_never_negative() -> None:
    raw0, raw1 = TP("p.mentions.raw", 0), TP("p.mentions.raw", 1)
    consumer = FakeConsumer(assigned={raw0, raw1}, offsets={raw1: 50})
    metrics = WorkerMetrics(CollectorRegistry())
    probe = LagProbe(
        consumer,
        lambda tps: {("p.mentions.raw", 0): 7, ("p.mentions.raw", 1): 40},
        LOGICAL,
        metrics.consumer_lag,
    )
    asyncio.run(probe.measure())
    assert lag(metrics) == 7


def test_unavailable_end_offsets_leave_the_last_figure() -> None:
    raw0 = TP("p.mentions.raw", 0)
    consumer = FakeConsumer(assigned={raw0}, offsets={raw0: 5})
    ends: list[dict[tuple[str, int], int] | Exception] = [
        {("p.mentions.raw", 0): 8},
        ConnectionError("broker restarting"),
    ]

    def end_offsets(partitions: list[TP]) -> dict[tuple[str, int], int]:
        answer = ends.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    metrics = WorkerMetrics(CollectorRegistry())
    probe = LagProbe(consumer, end_offsets, LOGICAL, metrics.consumer_lag)
    asyncio.run(probe.measure())
    asyncio.run(probe.measure())
    assert lag(metrics) == 3


def test_the_watchdog_names_an_input_waiting_at_every_reading_with_no_batch_done() -> None:
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    watchdog = StallWatchdog(90.0, clock)
    assert watchdog.stalled({"mentions.scored": 800}) == []
    clock.advance(60.0)
    assert watchdog.stalled({"mentions.scored": 800}) == [], "within patience"
    clock.advance(31.0)
    assert watchdog.stalled({"mentions.scored": 800, "mentions.raw": 0}) == ["mentions.scored"]
    watchdog.progressed("mentions.scored")
    clock.advance(89.0)
    assert watchdog.stalled({"mentions.scored": 800}) == [], "a batch was done meanwhile"
    assert StallWatchdog(0.0, clock).stalled({"mentions.scored": 1}) == [], "0 turns it off"


def test_a_reading_without_lag_restarts_the_watchdogs_window() -> None:
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    watchdog = StallWatchdog(90.0, clock)
    watchdog.stalled({"mentions.raw": 5})
    clock.advance(60.0)
    watchdog.stalled({})  # the end offsets were not available: not waiting
    clock.advance(60.0)
    assert watchdog.stalled({"mentions.raw": 3000}) == [], "one reading during a rebalance"
    clock.advance(91.0)
    assert watchdog.stalled({"mentions.raw": 3000}) == ["mentions.raw"]


def test_a_reset_during_recovery_restarts_the_watchdogs_window() -> None:
    """A table recovery longer than the patience (a large state) is not a stall."""
    clock = FakeClock(datetime(2026, 1, 5, tzinfo=UTC))
    watchdog = StallWatchdog(90.0, clock)
    watchdog.stalled({"mentions.raw": 3000})
    for _ in range(60):  # two minutes of recovery, a reading every 2 s
        clock.advance(2.0)
        watchdog.reset()
    assert watchdog.stalled({"mentions.raw": 3000}) == []
    clock.advance(89.0)
    assert watchdog.stalled({"mentions.raw": 3000}) == []
    clock.advance(2.0)
    assert watchdog.stalled({"mentions.raw": 3000}) == ["mentions.raw"]
