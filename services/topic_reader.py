"""Read a topic once, from its beginning to its end as of now (compacted topics: latest per key)."""

from __future__ import annotations

from collections.abc import Iterator


def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 10.0
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """Yield ``(partition, key, value)`` for every record now in ``topic``, in offset order per
    partition; stops at the end offsets taken when it starts, or when a poll waits ``timeout_s``.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if end[tp] > 0}
        while remaining:
            batches = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batches:
                break
            for tp, messages in batches.items():
                for message in messages:
                    yield tp.partition, message.key, message.value
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()
