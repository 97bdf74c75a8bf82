"""The worker shell's batch path without a broker: publish, store, metrics, the state lock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import pytest

from streams import agents
from streams.agents import BatchStep, raw_records
from streams.lag import StallWatchdog
from streams.pipeline import BatchResult, BrandRecord, Pipeline, RawRecord, StateTopicMismatch
from streams.publish import Publisher
from streams.records import ScoredMention
from streams.scoring import Scorer
from tests.streams.worker_harness import (
    NAMES,
    RAW,
    ShellHarness,
    assert_published_then_stored,
    complaint,
    raw,
)


class Worker(ShellHarness):
    """The fused worker's batch step over fake tables, a fake producer and a fake consumer."""

    def __init__(self) -> None:
        super().__init__()
        self.pipeline = Pipeline(Scorer(), self.engine, clock=self.clock)
        self.step = self.step_with(self.pipeline.process, Publisher(self.sink, NAMES))

    def step_with(
        self, process: Any, publisher: Publisher, watchdog: StallWatchdog | None = None
    ) -> BatchStep:
        """The fused batch step over this worker's store, recovery, metrics and lock."""
        return BatchStep(
            process,
            self.pipeline.brands.input_topic,
            self.store,
            publisher,
            self.recovery(RAW, 1),
            self.metrics,
            self.lock,
            watchdog=watchdog,
            counts_ingested=True,
        )


def test_a_batch_is_published_then_stored_customers_before_their_brand() -> None:
    worker = Worker()
    records = [raw(0, b"{not json")] + [raw(i, complaint(i).to_json()) for i in range(1, 5)]

    asyncio.run(worker.step(records))

    assert_published_then_stored(worker)
    record = worker.brands.data[b"acme"]
    assert isinstance(record, BrandRecord) and record.applied_offset == 4
    assert set(worker.customers.data) == {b"acme/cust-1"}


def test_a_batch_is_counted_in_the_metrics() -> None:
    worker = Worker()
    records = [raw(0, b"{not json")] + [raw(i, complaint(i).to_json()) for i in range(1, 5)]
    records.append(raw(5, complaint(1).to_json()))  # the same mention id again

    asyncio.run(worker.step(records))

    assert worker.metric("listenwell_mentions_ingested_total") == 6
    assert worker.metric("listenwell_mentions_dead_lettered_total", reason="invalid_json") == 1
    assert worker.metric("listenwell_mentions_deduplicated_total") == 1
    labels = {
        ScoredMention.from_json(s.value or b"").sentiment.label for s in worker.sink.sent[1:5]
    }
    assert len(labels) == 1
    scored = worker.metric(
        "listenwell_mentions_scored_total", brand="acme", source="test", label=labels.pop()
    )
    assert scored == 4
    assert worker.metric("listenwell_alerts_total", alertname="CustomerAtRisk", state="firing") == 1
    assert worker.metric("listenwell_processing_latency_seconds_count") == 4
    assert worker.metric("listenwell_processing_latency_seconds_sum") == pytest.approx(4 * 30.0)
    assert worker.metric("listenwell_batch_processing_seconds_count") == 1


def test_a_batch_waits_for_the_state_lock() -> None:
    worker = Worker()

    async def scenario() -> None:
        await worker.lock.acquire()
        task = asyncio.create_task(worker.step([raw(0, complaint(0).to_json())]))
        for _ in range(10):
            await asyncio.sleep(0)
        assert worker.sink.sent == [], "nothing happens while another step holds the lock"
        worker.lock.release()
        await task
        assert worker.sink.topics()[-1] == "brands-cl"

    asyncio.run(scenario())


def test_faust_events_become_raw_records() -> None:
    message = SimpleNamespace(
        topic=RAW, partition=2, offset=9, key=b"acme", value=b"{}", timestamp=1767600000.5
    )
    assert raw_records([SimpleNamespace(message=message)]) == [
        RawRecord(RAW, 2, 9, b"acme", b"{}", produced_at=1767600000.5)
    ]


def test_a_batch_longer_than_the_watchdog_s_patience_is_not_a_stall() -> None:
    """The core holds the event loop for 5 minutes (a catch-up after a long silence); the lag
    check that runs right after must not take that for a stall, or the worker would exit and its
    restart replay the same batch forever."""
    worker = Worker()
    watchdog = StallWatchdog(90.0, worker.clock)
    topic = worker.pipeline.brands.input_topic
    checks: list[list[str]] = []

    def five_minutes_of_work(*args: Any) -> BatchResult:
        checks.append(watchdog.stalled({topic: 10}))  # records are waiting as the batch starts
        worker.clock.advance(300.0)
        return worker.pipeline.process(*args)

    class CheckingPublisher(Publisher):
        async def publish(self, result: BatchResult) -> list[Awaitable[object]]:
            checks.append(watchdog.stalled({topic: 10}))  # the first check the loop can run
            return await super().publish(result)

    step = worker.step_with(five_minutes_of_work, CheckingPublisher(worker.sink, NAMES), watchdog)
    asyncio.run(step([raw(i, complaint(i + 1).to_json()) for i in range(4)]))
    assert checks == [[], []]
    worker.clock.advance(91.0)
    assert watchdog.stalled({topic: 10}) == [topic], "no batch since: a stall again"


class _Exited(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _exit_to_raise(status: int) -> None:
    raise _Exited(status)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StateTopicMismatch("acme", "mentions.raw", "mentions.scored"), agents.EXIT_CONFIG),
        (KeyError("unexpected"), agents.EXIT_UNEXPECTED),
    ],
)
def test_an_agent_or_timer_error_ends_the_worker_with_its_status(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    status: int,
) -> None:
    """Faust would restart an agent or a timer whose body raised; the worker exits instead (the
    batch in hand is not acked, so a restarted worker reads it again), with a status that says
    whether its configuration or something unexpected is the cause."""
    monkeypatch.setattr(os, "_exit", _exit_to_raise)
    with pytest.raises(_Exited) as exited, agents._exit_on_error():
        raise error
    assert exited.value.status == status
    assert str(error) in caplog.text


def test_a_cancelled_agent_or_timer_does_not_end_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """How Faust stops an agent or timer on shutdown or rebalance: not an error."""
    monkeypatch.setattr(os, "_exit", _exit_to_raise)
    with pytest.raises(asyncio.CancelledError), agents._exit_on_error():
        raise asyncio.CancelledError
