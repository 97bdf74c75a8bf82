"""The worker's producer queues its own records straight into aiokafka's batches, where
aiokafka's own send would put them; everything else still takes Faust's and aiokafka's path."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from faust.exceptions import ProducerSendError

from streams.app import faust_app
from streams.partitioning import default_partition
from streams.settings import Settings

AIOKAFKA_CHECKED = "0.14.0"
"""The aiokafka release whose producer internals ``streams.faust_app._Producer`` was checked
against: its message accumulator's ``add_message(tp, key, value, timeout, timestamp_ms=,
headers=)`` is what ``AIOKafkaProducer.send`` ends with."""


class FakeCluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions
        self.listeners: list[Any] = []

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.partitions.get(topic)
        return None if count is None else set(range(count))

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def update(self, **partitions: int) -> None:
        """A metadata answer: aiokafka replaces what it knows and calls every listener."""
        self.partitions.update(partitions)
        for listener in self.listeners:
            listener(self)


class FakeClient:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.cluster = FakeCluster(partitions)
        self.registered: list[str] = []

    def add_topic(self, topic: str) -> None:
        self.registered.append(topic)


class FakeAccumulator:
    def __init__(self) -> None:
        self.appended: list[tuple[TopicPartition, bytes, bytes | None]] = []
        self.error: Exception | None = None

    async def add_message(
        self,
        tp: TopicPartition,
        key: bytes,
        value: bytes | None,
        timeout: float,
        timestamp_ms: int | None = None,
        headers: Any = (),
    ) -> str:
        assert timestamp_ms is None and list(headers) == []
        if self.error is not None:
            raise self.error
        self.appended.append((tp, key, value))
        return f"delivery of {key!r}"


class FakeKafkaProducer:
    """aiokafka's producer: its own ``send`` records what took the full path."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.client = FakeClient(partitions)
        self._message_accumulator = FakeAccumulator()
        self.sent: list[tuple[str, bytes | None, int | None]] = []

    async def send(self, topic: str, value: bytes | None, **kwargs: Any) -> str:
        self.sent.append((topic, kwargs["key"], kwargs["partition"]))
        return "full path"


def worker_producer(tmp_path: Any, partitions: dict[str, int]) -> tuple[Any, FakeKafkaProducer]:
    producer: Any = faust_app(Settings(app_id="producer-path", data_dir=tmp_path)).producer
    fake = producer._producer = FakeKafkaProducer(partitions)
    return producer, fake


def test_the_producer_internals_are_the_release_they_were_checked_against() -> None:
    """Fails on an aiokafka upgrade: check ``_Producer.send`` against the new release's
    ``AIOKafkaProducer.send`` (and test_producer_metadata.py against a broker), then update."""
    assert aiokafka.__version__ == AIOKAFKA_CHECKED


def test_keyed_records_go_to_the_key_s_default_partition_or_the_one_given(tmp_path: Any) -> None:
    async def scenario() -> tuple[list[Any], FakeKafkaProducer]:
        producer, fake = worker_producer(tmp_path, {"scored": 12, "parts": 4})
        deliveries = [
            await producer.send("scored", b"acme", b"v1", None, None, None),
            await producer.send("scored", b"globex", b"v2", None, None, None),
            await producer.send("parts", b"acme/seen/1", b"v3", 3, None, None),
            await producer.send("parts", b"acme/seen/0", None, 2, None, None),  # a deletion
            await producer.send("scored", b"acme", b"v4", None, None, None),
        ]
        return deliveries, fake

    deliveries, fake = asyncio.run(scenario())
    assert fake._message_accumulator.appended == [
        (TopicPartition("scored", default_partition(b"acme", 12)), b"acme", b"v1"),
        (TopicPartition("scored", default_partition(b"globex", 12)), b"globex", b"v2"),
        (TopicPartition("parts", 3), b"acme/seen/1", b"v3"),
        (TopicPartition("parts", 2), b"acme/seen/0", None),
        (TopicPartition("scored", default_partition(b"acme", 12)), b"acme", b"v4"),
    ]
    assert deliveries[0] == "delivery of b'acme'"
    assert fake.sent == []
    assert fake.client.registered == ["scored", "parts"]


def test_everything_else_takes_the_full_path(tmp_path: Any) -> None:
    async def scenario() -> FakeKafkaProducer:
        producer, fake = worker_producer(tmp_path, {"scored": 12})
        await producer.send("not-yet-known", b"k", b"v", None, None, None)
        await producer.send("scored", None, b"no key", None, None, None)
        await producer.send("scored", b"k", b"v", None, 1_700_000_000.0, None)
        await producer.send("scored", b"k", b"v", None, None, [("h", b"1")])
        await producer.send("scored", b"k", b"v", 12, None, None)  # no such partition
        await producer.send(
            "scored", b"k", b"x" * (producer.max_request_size + 1), None, None, None
        )
        return fake

    fake = asyncio.run(scenario())
    assert [topic for topic, _, _ in fake.sent] == ["not-yet-known"] + ["scored"] * 5
    assert fake._message_accumulator.appended == []


def test_keys_follow_a_changed_partition_count(tmp_path: Any) -> None:
    async def scenario() -> list[Any]:
        producer, fake = worker_producer(tmp_path, {"scored": 2})
        await producer.send("scored", b"acme", b"v", None, None, None)
        fake.client.cluster.update(scored=12)
        await producer.send("scored", b"acme", b"v", None, None, None)
        return [tp.partition for tp, _, _ in fake._message_accumulator.appended]

    assert asyncio.run(scenario()) == [
        default_partition(b"acme", 2),
        default_partition(b"acme", 12),
    ]


def test_a_refused_record_raises_faust_s_send_error(tmp_path: Any) -> None:
    async def scenario() -> None:
        producer, fake = worker_producer(tmp_path, {"scored": 12})
        fake._message_accumulator.error = KafkaTimeoutError()
        await producer.send("scored", b"acme", b"v", None, None, None)

    with pytest.raises(ProducerSendError, match="KafkaTimeoutError"):
        asyncio.run(scenario())


def test_a_restarted_producer_registers_its_topics_with_the_new_client(tmp_path: Any) -> None:
    """Without it, the new client's metadata refreshes could drop a topic with records queued,
    and the worker would wait out the producer's request timeout (the module's docstring)."""

    async def scenario() -> tuple[FakeKafkaProducer, FakeKafkaProducer]:
        producer, first = worker_producer(tmp_path, {"scored": 12})
        await producer.send("scored", b"acme", b"v1", None, None, None)
        restarted = producer._producer = FakeKafkaProducer({"scored": 12})
        await producer.send("scored", b"acme", b"v2", None, None, None)
        return first, restarted

    first, restarted = asyncio.run(scenario())
    assert first.client.registered == ["scored"]
    assert restarted.client.registered == ["scored"]
    assert [value for _, _, value in restarted._message_accumulator.appended] == [b"v2"]


def test_a_restarted_producer_routes_by_its_own_metadata(tmp_path: Any) -> None:
    async def scenario() -> FakeKafkaProducer:
        producer, _ = worker_producer(tmp_path, {"scored": 2})
        await producer.send("scored", b"globex", b"v1", None, None, None)
        restarted = producer._producer = FakeKafkaProducer({"scored": 12})
        await producer.send("scored", b"globex", b"v2", None, None, None)
        return restarted

    restarted = asyncio.run(scenario())
    assert default_partition(b"globex", 2) != default_partition(b"globex", 12)
    assert restarted._message_accumulator.appended == [
        (TopicPartition("scored", default_partition(b"globex", 12)), b"globex", b"v2")
    ]


def test_a_transactional_record_goes_through_its_transaction_s_producer(tmp_path: Any) -> None:
    async def scenario() -> tuple[Any, FakeKafkaProducer, FakeKafkaProducer]:
        producer, fake = worker_producer(tmp_path, {"scored": 12})
        in_transaction = FakeKafkaProducer({"scored": 12})
        producer._transaction_producers = {"tx-1": in_transaction}
        producer._trn_locks = {"tx-1": asyncio.Lock()}
        delivery = await producer.send(
            "scored", b"acme", b"v", None, None, None, transactional_id="tx-1"
        )
        return delivery, fake, in_transaction

    delivery, fake, in_transaction = asyncio.run(scenario())
    assert delivery == "full path"
    assert in_transaction.sent == [("scored", b"acme", None)]
    assert fake._message_accumulator.appended == []
    assert in_transaction._message_accumulator.appended == []


class FirstPartition(DefaultPartitioner):
    """A configured partitioner that derives from aiokafka's default but picks otherwise."""

    def __call__(self, key: bytes, all_partitions: list[int], available: list[int]) -> int:
        return all_partitions[0]


def test_a_partitioner_other_than_aiokafka_s_default_takes_the_full_path(tmp_path: Any) -> None:
    """The configured partitioner picks the partition (aiokafka's send calls it), even one
    derived from DefaultPartitioner."""

    async def scenario() -> FakeKafkaProducer:
        producer, fake = worker_producer(tmp_path, {"scored": 12})
        producer.partitioner = FirstPartition()
        await producer.send("scored", b"acme", b"v", None, None, None)
        await producer.send("scored", b"globex", b"v", 3, None, None)  # a partition given
        return fake

    fake = asyncio.run(scenario())
    assert fake.sent == [("scored", b"acme", None)]
    assert fake._message_accumulator.appended == [(TopicPartition("scored", 3), b"globex", b"v")]
