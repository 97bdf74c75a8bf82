"""Raw offsets: gap detection, read-back of skipped records, and the Faust consumer adapter."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.metrics import WorkerMetrics
from streams.offsets import FaustConsumerPosition, OffsetGap, SkippedRecordRecovery, find_gaps
from streams.pipeline import RawRecord
from tests.streams.fakes import FakeConsumer

RAW = "p.mentions.raw"


def raw_at(partition: int, offset: int) -> RawRecord:
    return RawRecord("mentions.raw", partition, offset, b"acme", b"{}", None)


def test_a_record_skipped_at_the_committed_offset_is_found() -> None:
    """The faust-streaming race: after a restart the group's committed offset is 2342 but the
    first record the agent gets is 2343."""
    next_offsets: dict[int, int] = {}
    gaps = find_gaps([raw_at(2, 2343), raw_at(2, 2344)], next_offsets, lambda p: 2342)
    assert gaps == [OffsetGap(partition=2, start=2342, end=2343)]
    assert next_offsets == {2: 2345}


def test_gaps_between_and_inside_batches_are_found_and_replays_are_not_gaps() -> None:
    next_offsets: dict[int, int] = {}
    assert find_gaps([raw_at(0, 0), raw_at(1, 5)], next_offsets, lambda p: None) == []
    assert find_gaps([raw_at(0, 1), raw_at(0, 4), raw_at(1, 9)], next_offsets, lambda p: None) == [
        OffsetGap(0, 2, 4),
        OffsetGap(1, 6, 9),
    ]
    # A replay (the group seeks back to its committed offset after a rebalance) is not a gap.
    assert find_gaps([raw_at(0, 3), raw_at(0, 4), raw_at(0, 5)], next_offsets, lambda p: 3) == []
    # Another worker moved the partition on while it was away: its committed offset counts.
    assert find_gaps([raw_at(1, 20)], next_offsets, lambda p: 20) == []
    assert find_gaps([raw_at(1, 22)], next_offsets, lambda p: 20) == [OffsetGap(1, 21, 22)]


class Topic:
    """The raw topic as :func:`streams.offsets.read_offsets` would read it."""

    def __init__(self, records: list[RawRecord]) -> None:
        self.records = records
        self.asked: list[list[OffsetGap]] = []

    def read(self, gaps: list[OffsetGap]) -> list[RawRecord]:
        self.asked.append(gaps)
        return [
            r
            for r in self.records
            if any(g.partition == r.partition and g.start <= r.offset < g.end for g in gaps)
        ]


def recovery(consumer: FakeConsumer, topic: Topic) -> SkippedRecordRecovery:
    metrics = WorkerMetrics(CollectorRegistry())
    return SkippedRecordRecovery(RAW, consumer, topic.read, metrics.skipped_recovered)


def recovered_total(step: SkippedRecordRecovery) -> float | None:
    """The counter's value as Prometheus would scrape it."""
    registry = CollectorRegistry()
    registry.register(step.recovered)
    return registry.get_sample_value("listenwell_raw_records_recovered_total")


def test_records_skipped_at_the_head_are_read_back_and_put_in_front_of_the_batch() -> None:
    topic = Topic([raw_at(1, offset) for offset in range(10, 14)])
    step = recovery(FakeConsumer(offsets={TP(RAW, 1): 10}), topic)

    batch = asyncio.run(step.with_skipped(topic.records[2:]))

    assert [(r.partition, r.offset) for r in batch] == [(1, 10), (1, 11), (1, 12), (1, 13)]
    assert topic.asked == [[OffsetGap(1, 10, 12)]]
    assert recovered_total(step) == 2


def test_a_dense_batch_is_passed_through_without_reading_the_topic() -> None:
    topic = Topic([raw_at(0, offset) for offset in range(5)])
    step = recovery(FakeConsumer(offsets={TP(RAW, 0): 0}), topic)

    assert asyncio.run(step.with_skipped(topic.records[:3])) == topic.records[:3]
    assert asyncio.run(step.with_skipped(topic.records[3:])) == topic.records[3:]
    assert topic.asked == []
    assert recovered_total(step) == 0


def test_a_failed_read_back_raises_so_the_batch_is_not_acked() -> None:
    def read(gaps: list[OffsetGap]) -> list[RawRecord]:
        raise TimeoutError("read 0 of the 1 skipped records")

    consumer = FakeConsumer(offsets={TP(RAW, 0): 0})
    metrics = WorkerMetrics(CollectorRegistry())
    step = SkippedRecordRecovery(RAW, consumer, read, metrics.skipped_recovered)
    with pytest.raises(TimeoutError):
        asyncio.run(step.with_skipped([raw_at(0, 1)]))


def test_the_faust_adapter_reads_the_assignment_and_the_offsets_faust_committed() -> None:
    tp = TP(RAW, 3)
    consumer = SimpleNamespace(assignment=lambda: {tp}, _committed_offset={tp: 41})
    position = FaustConsumerPosition(SimpleNamespace(consumer=consumer))
    assert position.assignment() == {tp}
    assert position.committed(tp) == 41
    assert position.committed(TP(RAW, 4)) is None


def test_the_installed_faust_still_keeps_the_private_offsets_the_adapter_reads() -> None:
    """A canary for upgrades: the adapter reads ``Consumer._committed_offset``."""
    assert "_committed_offset" in Consumer.__annotations__
