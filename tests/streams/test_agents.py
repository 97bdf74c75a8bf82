"""The worker shell's batch path without a broker: publish, store, metrics, the state lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.agents import BatchStep, raw_records
from streams.clock import FakeClock
from streams.engine import Engine
from streams.metrics import WorkerMetrics
from streams.offsets import OffsetGap, SkippedRecordRecovery
from streams.pipeline import BrandRecord, Pipeline, RawRecord
from streams.publish import OutputTopics, Publisher
from streams.records import Alert, Mention, ScoredMention
from streams.rules import load_rules
from streams.scoring import Scorer
from streams.tables import BrandStore
from tests import factories
from tests.streams.fakes import FakeConsumer, FakeSink, FakeTable

RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RAW = "p.mentions.raw"
NAMES = OutputTopics.named("p.")
COMPLAINT = "Flight cancelled, on hold for hours, nobody cares. I'm done."


def complaint(n: int, customer: str = "cust-1") -> Mention:
    return factories.mention(n, at=T0, minutes=n, text=COMPLAINT, customer=customer)


def raw(offset: int, value: bytes, key: bytes = b"acme") -> RawRecord:
    return RawRecord(RAW, 1, offset, key, value, produced_at=T0.timestamp())


class Worker:
    """A worker shell over fake tables, a fake producer and a fake consumer."""

    def __init__(self) -> None:
        self.sink = FakeSink()
        self.brands, self.customers = FakeTable("brands-cl"), FakeTable("customers-cl")
        self.store = BrandStore(self.brands, self.customers, self.sink)
        self.metrics = WorkerMetrics(CollectorRegistry())
        self.lock = asyncio.Lock()
        engine = Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2))
        self.pipeline = Pipeline(Scorer(), engine, clock=FakeClock(T0 + timedelta(seconds=30)))

        def unexpected_read(gaps: list[OffsetGap]) -> list[RawRecord]:
            raise AssertionError(f"no gap expected, got {gaps}")

        recovery = SkippedRecordRecovery(
            RAW,
            FakeConsumer(offsets={TP(RAW, 1): 0}),
            unexpected_read,
            self.metrics.skipped_recovered,
        )
        self.step = BatchStep(
            self.pipeline.process,
            self.pipeline.brands.input_topic,
            self.store,
            Publisher(self.sink, NAMES),
            recovery,
            self.metrics,
            self.lock,
            counts_ingested=True,
        )

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def test_a_batch_is_published_then_stored_customers_before_their_brand() -> None:
    worker = Worker()
    records = [raw(0, b"{not json")] + [raw(i, complaint(i).to_json()) for i in range(1, 5)]

    asyncio.run(worker.step(records))

    topics = worker.sink.topics()
    assert topics[0] == NAMES.dead_letters
    assert topics[1:5] == [NAMES.scored] * 4
    alerts = [Alert.from_json(s.value or b"") for s in worker.sink.sent if s.topic == NAMES.alerts]
    assert [(a.alertname, a.state.value) for a in alerts] == [("CustomerAtRisk", "firing")]
    # Every published record before the first table write; customers before their brand.
    first_write = topics.index("customers-cl")
    assert set(topics[:first_write]) == {
        NAMES.dead_letters,
        NAMES.scored,
        NAMES.alerts,
        NAMES.customers,
    }
    assert topics[first_write:] == ["customers-cl", "brands-cl"]
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
