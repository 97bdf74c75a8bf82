"""The harness of the worker shell's batch-path tests, fused and split: one brand's complaints as
raw records, and fake tables, producer and consumer with the default rules' engine, a fake clock,
metrics and the state lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.clock import FakeClock
from streams.engine import Engine
from streams.metrics import WorkerMetrics
from streams.offsets import OffsetGap, SkippedRecordRecovery
from streams.pipeline import RawRecord
from streams.publish import OutputTopics
from streams.records import Alert, Mention
from streams.rules import load_rules
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


def raw(offset: int, value: bytes, key: bytes | None = b"acme") -> RawRecord:
    return RawRecord(RAW, 1, offset, key, value, produced_at=T0.timestamp())


def unexpected_read(gaps: list[OffsetGap]) -> list[RawRecord]:
    raise AssertionError(f"no gap expected, got {gaps}")


class ShellHarness:
    """What a worker shell's steps are built on: fake tables behind a :class:`BrandStore`, a fake
    producer, metrics, the state lock, the default rules' engine and a clock 30 s after ``T0``."""

    def __init__(self) -> None:
        self.sink = FakeSink()
        self.brands, self.customers = FakeTable("brands-cl"), FakeTable("customers-cl")
        self.store = BrandStore(self.brands, self.customers, self.sink)
        self.metrics = WorkerMetrics(CollectorRegistry())
        self.lock = asyncio.Lock()
        self.engine = Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2))
        self.clock = FakeClock(T0 + timedelta(seconds=30))

    def recovery(self, topic: str, partition: int) -> SkippedRecordRecovery:
        """Skipped-record recovery for a consumer at offset 0 of ``topic``'s ``partition``, where
        no gap is expected."""
        return SkippedRecordRecovery(
            topic,
            FakeConsumer(offsets={TP(topic, partition): 0}),
            unexpected_read,
            self.metrics.skipped_recovered,
        )

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def assert_published_then_stored(harness: ShellHarness) -> None:
    """A dead letter, then four scored mentions, and one CustomerAtRisk alert fired; every record
    published before the first table write, customers written before their brand."""
    topics = harness.sink.topics()
    assert topics[0] == NAMES.dead_letters
    assert topics[1:5] == [NAMES.scored] * 4
    alerts = [Alert.from_json(s.value or b"") for s in harness.sink.sent if s.topic == NAMES.alerts]
    assert [(a.alertname, a.state.value) for a in alerts] == [("CustomerAtRisk", "firing")]
    first_write = topics.index("customers-cl")
    assert set(topics[:first_write]) == {
        NAMES.dead_letters,
        NAMES.scored,
        NAMES.alerts,
        NAMES.customers,
    }
    assert topics[first_write:] == ["customers-cl", "brands-cl"]
