"""The worker's default partition of a key is Kafka's (Java client, aiokafka, kafka-python)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner as AiokafkaPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.partitioning import KeyPartitions, default_partition

# Kafka's Java client (org.apache.kafka.common.utils.Utils.murmur2) among 1,000 partitions, as
# kafka-python's compatibility test lists them.
JAVA_PARTITIONS_OF_1000 = {
    b"": 681,
    b"a": 524,
    b"ab": 434,
    b"abc": 107,
    b"123456789": 566,
    b"\x00 ": 742,
}
COUNTS = [1, 2, 3, 4, 7, 12, 100]


def some_keys() -> list[bytes]:
    rng = random.Random(15)
    keys = [f"brand-{n}".encode() for n in range(300)]
    keys += [f"acme/customer-{n}".encode() for n in range(300)]
    keys += [rng.randbytes(rng.randrange(0, 40)) for _ in range(300)]
    keys += ["marque-é-🙂".encode(), b"\xff" * 17]
    return keys


def test_the_default_partition_is_the_java_clients() -> None:
    for key, partition in JAVA_PARTITIONS_OF_1000.items():
        assert default_partition(key, 1000) == partition
        assert KeyPartitions().partition(key, 1000) == partition


def test_every_key_goes_where_aiokafka_and_kafka_python_would_send_it() -> None:
    aiokafka = AiokafkaPartitioner()
    remembered = KeyPartitions()
    for count in COUNTS:
        partitions = list(range(count))
        for key in some_keys():
            expected = aiokafka(key, partitions, partitions)
            # kafka-python's producer (the connectors') picks partitions[hash % count].
            assert (kafka_python_murmur2(key) & 0x7FFFFFFF) % count == expected
            assert default_partition(key, count) == expected
            assert remembered.partition(key, count) == expected
            assert remembered.partition(key, count) == expected  # the remembered answer


def test_a_full_memory_starts_again_and_still_answers_right() -> None:
    remembered = KeyPartitions(keys_remembered=3)
    for _ in range(2):
        for key in some_keys():
            assert remembered.partition(key, 12) == default_partition(key, 12)
    assert all(len(known) <= 3 for known in remembered._by_count.values())
