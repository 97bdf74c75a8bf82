"""The worker's producer against the real broker: records queued for a topic are delivered even
when the first send to a topic created later refreshes the producer's metadata meanwhile (the
start-up stall of streams/faust_app.py's module docstring)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
import uvloop
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.kafka_local import create_topics
from streams import topics
from streams.faust_app import ListenwellApp
from streams.topic_reader import read_records

pytestmark = pytest.mark.integration

# Long enough that the records of the first topic are still queued when the second topic's
# metadata arrives, whatever the machine's load.
LINGER_S = 2.0
# A liveness bound (the test fails instead of hanging for the producer's 20 min request
# timeout), not a speed assertion.
PATIENCE_S = 60.0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_records_queued_before_a_new_topic_is_first_sent_to_are_delivered(
    kafka_bootstrap: str, loop: str
) -> None:
    """On either event loop the worker can run on (``LISTENWELL_EVENT_LOOP``). Without the
    worker producer's registration of each topic, idle uvloop workers of the wall-clock
    watermark's test kept their last offsets uncommitted: Faust's flush before the commit waited
    on a batch without a leader (docs/performance.md)."""
    run = f"t-producer-{os.getpid()}-{time.monotonic_ns()}"
    known, created_later = f"{run}-a.", f"{run}-b."
    create_topics(kafka_bootstrap, known)
    queued = topics.topic_name(topics.MENTIONS_SCORED, known)
    other = topics.topic_name(topics.ALERTS, created_later)
    keys = [f"brand-{n}".encode() for n in range(40)]

    async def produce() -> bool:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop) == (loop == "uvloop")
        app = ListenwellApp(
            run, broker=f"kafka://{kafka_bootstrap}", producer_linger=LINGER_S, web_enabled=False
        )
        producer = app.producer
        await producer.start()
        client = producer._producer.client  # type: ignore[attr-defined]
        try:
            # What Faust does after declaring each of the worker's topics: read the metadata of
            # every topic. The second topic is created after that, like a changelog topic whose
            # creation the broker had not finished propagating when that refresh was answered.
            await client.force_metadata_update()
            create_topics(kafka_bootstrap, created_later)
            for key in keys:
                await producer.send(queued, key, b"scored", None, None, None)
            await producer.send(other, b"k", b"alert", None, None, None)
            await client.force_metadata_update()
            remembered = client.cluster.partitions_for_topic(queued) is not None
            if not remembered:
                # Its queued batches have no leader and would wait 20 min; let them go so the
                # producer can stop.
                await client.add_topic(queued)
            await asyncio.wait_for(producer.flush(), PATIENCE_S)
            return remembered
        finally:
            await producer.stop()

    loop_factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(produce()), f"the producer forgot the metadata of {queued}"
    delivered = sorted(record.key for record in read_records(kafka_bootstrap, queued))
    assert delivered == sorted(keys)


def test_the_worker_producer_s_records_land_where_aiokafka_s_own_send_puts_them(
    kafka_bootstrap: str,
) -> None:
    """The worker's shorter produce path (streams/faust_app.py ``_Producer``) against aiokafka's
    ``AIOKafkaProducer.send`` with the same settings: same partitions, bytes and order."""
    from aiokafka import AIOKafkaProducer

    run = f"t-produce-path-{os.getpid()}-{time.monotonic_ns()}"
    worker_prefix, reference_prefix = f"{run}-w.", f"{run}-r."
    for prefix in (worker_prefix, reference_prefix):
        create_topics(kafka_bootstrap, prefix, partitions=12)
    name = topics.MENTIONS_SCORED
    records: list[tuple[bytes, bytes | None, int | None]] = []
    for n in range(600):
        records.append((f"brand-{n % 150}".encode(), f"mention {n}".encode(), None))
        if n % 7 == 0:
            records.append((b"__erase__", f"command {n}".encode(), n % 12))
        if n % 11 == 0:
            records.append((f"brand-{n % 150}/customer".encode(), None, None))

    async def produce() -> None:
        app = ListenwellApp(
            run, broker=f"kafka://{kafka_bootstrap}", producer_linger=0.02, web_enabled=False
        )
        producer: Any = app.producer
        await producer.start()
        reference = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
        await reference.start()
        full_path = 0
        original_send = faust_aiokafka.Producer.send

        async def count_full_path(*args: Any, **kwargs: Any) -> Any:
            nonlocal full_path
            full_path += 1
            return await original_send(*args, **kwargs)

        try:
            worker_topic = topics.topic_name(name, worker_prefix)
            await producer._producer.client._wait_on_metadata(worker_topic)
            faust_aiokafka.Producer.send = count_full_path  # type: ignore[method-assign]
            for key, value, partition in records:
                await producer.send(worker_topic, key, value, partition, None, None)
                await reference.send(
                    topics.topic_name(name, reference_prefix), value, key=key, partition=partition
                )
            await asyncio.wait_for(producer.flush(), PATIENCE_S)
            await asyncio.wait_for(reference.flush(), PATIENCE_S)
        finally:
            faust_aiokafka.Producer.send = original_send  # type: ignore[method-assign]
            await reference.stop()
            await producer.stop()
        assert full_path == 0, "the worker's records took Faust's and aiokafka's full path"

    asyncio.run(produce())

    def landed(prefix: str) -> dict[int, list[tuple[bytes, bytes | None]]]:
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for record in read_records(kafka_bootstrap, topics.topic_name(name, prefix)):
            by_partition.setdefault(record.partition, []).append((record.key, record.value))
        return by_partition

    worker, reference = landed(worker_prefix), landed(reference_prefix)
    assert sum(len(rows) for rows in worker.values()) == len(records)
    assert len(worker) == 12
    assert worker == reference
