"""Raw offsets: what the consumer owns and has committed, and recovery of records it skipped.

- :class:`ConsumerPosition` is what the worker asks of its consumer; :class:`FaustConsumerPosition`
  answers it for a Faust app and is the only code that touches Faust's private consumer state.
- :func:`find_gaps` (pure) finds raw offsets that never reached the agent;
  :class:`SkippedRecordRecovery` reads them back from the topic (:func:`read_offsets`) and puts
  them in front of the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faust.types import TP
from prometheus_client import Counter

from streams.pipeline import RawRecord
from streams.topic_reader import read_records

__all__ = [
    "ConsumerPosition",
    "FaustConsumerPosition",
    "OffsetGap",
    "SkippedRecordRecovery",
    "find_gaps",
    "owned_partitions",
    "read_offsets",
]

log = logging.getLogger(__name__)


class ConsumerPosition(Protocol):
    """The partitions the worker's consumer is assigned, and what its group has committed."""

    def assignment(self) -> set[TP]:
        """Topic partitions this worker actively consumes (standby copies are not assigned)."""
        ...

    def committed(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (the next to read), or None."""
        ...


class FaustConsumerPosition:
    """:class:`ConsumerPosition` of a Faust app's consumer (looked up on each call: the app
    creates it on start).

    faust-streaming has no public accessor for the offsets it committed; it keeps them in
    ``Consumer._committed_offset`` (updated on every commit and on assignment). Reading that dict
    costs nothing, where asking the broker would queue a request behind commits and fetches on
    Faust's consumer thread. If a Faust upgrade renames it, this is the one place to change.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    def assignment(self) -> set[TP]:
        return set(self._app.consumer.assignment())

    def committed(self, tp: TP) -> int | None:
        offsets: Any = self._app.consumer._committed_offset
        offset: int | None = offsets.get(tp)
        return offset


def owned_partitions(consumer: ConsumerPosition, topic: str) -> set[int]:
    """The partitions of ``topic`` this worker actively consumes."""
    return {tp.partition for tp in consumer.assignment() if tp.topic == topic}


@dataclass(frozen=True)
class OffsetGap:
    """Offsets ``start`` to ``end - 1`` of a raw partition that never reached the agent."""

    partition: int
    start: int
    end: int


def find_gaps(
    records: Sequence[RawRecord],
    next_offsets: dict[int, int],
    committed: Callable[[int], int | None],
) -> list[OffsetGap]:
    """The offsets skipped between what this worker has seen and this batch, per partition.

    ``next_offsets`` maps a partition to the offset after the last one this worker processed;
    ``committed(partition)`` gives the group's committed offset (the next one to read), or None.
    A batch must start at or before the larger of the two: offsets on ``mentions.raw`` are dense
    (no transactions, no compaction), so starting later means records were skipped. faust-streaming
    can do that when a worker starts or a rebalance ends (fetched records dropped while the flow is
    suspended still advance its read offset, and it then commits past a one-record gap at the
    head of the acked offsets), which lost one mention in about one kill -9 in ten.
    Updates ``next_offsets`` with the batch.
    """
    gaps = []
    expected: dict[int, int] = {}
    for record in records:
        partition = record.partition
        if partition not in expected:
            base = committed(partition)
            expected[partition] = max(next_offsets.get(partition, -1), -1 if base is None else base)
        if 0 <= expected[partition] < record.offset:
            gaps.append(OffsetGap(partition, expected[partition], record.offset))
        expected[partition] = max(expected[partition], record.offset + 1)
    next_offsets.update(expected)
    return gaps


def read_offsets(
    bootstrap: str, topic: str, gaps: list[OffsetGap], *, patience_s: float = 60.0
) -> list[RawRecord]:
    """The records of ``topic`` in ``gaps``, read outside the consumer group. Blocking.

    Raises ``TimeoutError`` if not all of them arrive (a poll waited ``patience_s`` for nothing);
    the agent then exits without acking its batch, so a restart replays it.
    """
    wanted = {(gap.partition, offset) for gap in gaps for offset in range(gap.start, gap.end)}
    ranges: dict[int, tuple[int, int]] = {}
    for gap in gaps:
        start, end = ranges.get(gap.partition, (gap.start, gap.end))
        ranges[gap.partition] = (min(start, gap.start), max(end, gap.end))
    records = [
        RawRecord(
            topic=topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            produced_at=message.timestamp / 1000.0,
        )
        for message in read_records(bootstrap, topic, ranges, timeout_s=patience_s)
        if (message.partition, message.offset) in wanted
    ]
    if len(records) < len(wanted):
        raise TimeoutError(f"read {len(records)} of the {len(wanted)} skipped records of {topic}")
    return records


@dataclass
class SkippedRecordRecovery:
    """Puts the raw records the consumer skipped (see :func:`find_gaps`) in front of a batch.

    ``read(gaps)`` reads them (blocking; :func:`read_offsets` in the worker, run in a thread);
    ``recovered`` counts them.
    """

    topic: str
    consumer: ConsumerPosition
    read: Callable[[list[OffsetGap]], list[RawRecord]]
    recovered: Counter
    next_offsets: dict[int, int] = field(default_factory=dict)

    def _committed(self, partition: int) -> int | None:
        return self.consumer.committed(TP(self.topic, partition))

    async def with_skipped(self, records: list[RawRecord]) -> list[RawRecord]:
        """``records``, preceded by any raw records the consumer skipped, read back directly."""
        gaps = find_gaps(records, self.next_offsets, self._committed)
        if not gaps:
            return records
        for gap in gaps:
            log.warning(
                "listenwell worker: offsets %d-%d of %s partition %d never reached the agent; "
                "reading them directly",
                gap.start,
                gap.end - 1,
                self.topic,
                gap.partition,
            )
        recovered = await asyncio.to_thread(self.read, gaps)
        self.recovered.inc(len(recovered))
        return recovered + records
