"""Kafka's default partition of a keyed record, remembered per key.

A record with a key and no explicit partition goes to ``murmur2(key) & 0x7fffffff`` modulo the
topic's partition count, as in Kafka's Java client (and aiokafka's and kafka-python's
``DefaultPartitioner``, which every producer of the worker's topics uses). aiokafka computes the
hash in pure Python (~1.6 µs a key); the worker writes the same keys (brands, customers) over and
over, so :class:`KeyPartitions` remembers the answer per partition count.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

__all__ = ["KeyPartitions", "default_partition"]

KEYS_REMEMBERED = 100_000
"""At most this many keys per partition count; once full, the memory starts again empty (keys
such as customers or incident ids are unbounded; each answer is ~100 bytes)."""


def default_partition(key: bytes, partition_count: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partition_count``
    (partitions are numbered 0 to count - 1)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partition_count


class KeyPartitions:
    """:func:`default_partition`, remembered per key and partition count."""

    def __init__(self, keys_remembered: int = KEYS_REMEMBERED) -> None:
        self._keys_remembered = keys_remembered
        self._by_count: dict[int, dict[bytes, int]] = {}

    def partition(self, key: bytes, partition_count: int) -> int:
        """The default partition of ``key`` among ``partition_count`` partitions."""
        known = self._by_count.get(partition_count)
        if known is None:
            known = self._by_count[partition_count] = {}
        partition = known.get(key)
        if partition is None:
            if len(known) >= self._keys_remembered:
                known.clear()
            partition = known[key] = default_partition(key, partition_count)
        return partition
