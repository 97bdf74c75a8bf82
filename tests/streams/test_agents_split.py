"""The split deployment's shell without a broker: the scoring step publishes to
``mentions.scored``, the brand stage's step folds it (publish, store, metrics, the state lock)."""

from __future__ import annotations

import asyncio

import pytest

from streams.agents import BatchStep, ScoringStep
from streams.pipeline import BrandRecord, BrandStage, RawRecord, ScoringStage
from streams.publish import Publisher
from streams.records import ScoredMention
from streams.scoring import Scorer
from tests.streams import worker_harness
from tests.streams.worker_harness import (
    NAMES,
    RAW,
    ShellHarness,
    assert_published_then_stored,
    complaint,
)

SCORED = "p.mentions.scored"


def raw(offset: int, value: bytes) -> RawRecord:
    """A raw record without a key."""
    return worker_harness.raw(offset, value, key=None)


class Worker(ShellHarness):
    """The split deployment's scoring step and brand-stage step over fake tables, a fake producer
    and fake consumers."""

    def __init__(self) -> None:
        super().__init__()
        self.scoring_stage = ScoringStage(Scorer(), clock=self.clock)
        self.brand_stage = BrandStage(self.engine, clock=self.clock)
        publisher = Publisher(self.sink, NAMES, 4)
        self.scoring = ScoringStep(
            self.scoring_stage, publisher, self.recovery(RAW, 1), self.metrics
        )
        self.brand_step = BatchStep(
            self.brand_stage.process_records,
            self.brand_stage.input_topic,
            self.store,
            publisher,
            self.recovery(SCORED, 2),
            self.metrics,
            self.lock,
        )

    async def step(self, records: list[RawRecord]) -> None:
        """Score ``records``, then fold what was published to ``mentions.scored`` (all in
        partition 2, as one brand's would be)."""
        await self.scoring(records)
        published = [s for s in self.sink.sent if s.topic == NAMES.scored]
        scored = [RawRecord(SCORED, 2, i, s.key, s.value) for i, s in enumerate(published)]
        await self.brand_step(scored)


def test_a_batch_is_published_then_stored_customers_before_their_brand() -> None:
    worker = Worker()
    records = [raw(0, b"{not json")] + [raw(i, complaint(i).to_json()) for i in range(1, 5)]

    asyncio.run(worker.step(records))

    assert_published_then_stored(worker)
    record = worker.brands.data[b"acme"]
    # applied_offset is an offset of mentions.scored (four scored mentions: 0 to 3).
    assert isinstance(record, BrandRecord) and record.applied_offset == 3
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
        ScoredMention.from_json(s.value or b"").sentiment.label for s in worker.sink.sent[1:6]
    }
    assert len(labels) == 1
    # The scoring stage scores the re-sent copy too; the brand stage counts it once.
    scored = worker.metric(
        "listenwell_mentions_scored_total", brand="acme", source="test", label=labels.pop()
    )
    assert scored == 5
    assert worker.metric("listenwell_alerts_total", alertname="CustomerAtRisk", state="firing") == 1
    assert worker.metric("listenwell_processing_latency_seconds_count") == 5
    assert worker.metric("listenwell_processing_latency_seconds_sum") == pytest.approx(5 * 30.0)
    assert worker.metric("listenwell_batch_processing_seconds_count") == 2


def test_a_batch_waits_for_the_state_lock() -> None:
    worker = Worker()

    async def scenario() -> None:
        await worker.lock.acquire()
        task = asyncio.create_task(worker.step([raw(0, complaint(0).to_json())]))
        for _ in range(10):
            await asyncio.sleep(0)
        # The scoring stage holds no state and takes no lock; the brand stage waits.
        assert worker.sink.topics() == [NAMES.scored], "no state written while the lock is held"
        worker.lock.release()
        await task
        assert worker.sink.topics()[-1] == "brands-cl"

    asyncio.run(scenario())
