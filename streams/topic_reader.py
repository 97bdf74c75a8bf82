"""Read a topic once, outside any consumer group: all of it as of now (compacted topics: latest
per key), or chosen offset ranges of its partitions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def read_records(
    bootstrap: str,
    topic: str,
    ranges: Mapping[int, tuple[int, int]] | None = None,
    *,
    timeout_s: float = 10.0,
) -> Iterator[Any]:
    """Yield kafka-python ``ConsumerRecord``s of ``topic`` in offset order per partition.

    With ``ranges`` (partition → ``(start, end)``), offsets ``start`` to ``end - 1`` of those
    partitions; without, every record now in the topic, up to the end offsets taken when it
    starts. Stops early when a poll waits ``timeout_s`` for nothing.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        if ranges is None:
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
            assigned = [TopicPartition(topic, p) for p in partitions]
            if not assigned:
                return
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            end = consumer.end_offsets(assigned)
        else:
            assigned = [TopicPartition(topic, p) for p in sorted(ranges)]
            consumer.assign(assigned)
            for tp in assigned:
                consumer.seek(tp, ranges[tp.partition][0])
            end = {tp: ranges[tp.partition][1] for tp in assigned}
        remaining = {tp for tp in assigned if consumer.position(tp) < end[tp]}
        while remaining:
            batches = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batches:
                break
            for tp, messages in batches.items():
                yield from (m for m in messages if m.offset < end[tp])
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 10.0
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """``(partition, key, value)`` for every record now in ``topic`` (see :func:`read_records`)."""
    for record in read_records(bootstrap, topic, timeout_s=timeout_s):
        yield record.partition, record.key, record.value
