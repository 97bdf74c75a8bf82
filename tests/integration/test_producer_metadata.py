"""The worker's producer against the real broker: records queued for a topic are delivered even
when the first send to a topic created later refreshes the producer's metadata meanwhile (the
start-up stall of streams/faust_app.py's module docstring)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

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


def test_records_queued_before_a_new_topic_is_first_sent_to_are_delivered(
    kafka_bootstrap: str,
) -> None:
    run = f"t-producer-{os.getpid()}-{time.monotonic_ns()}"
    known, created_later = f"{run}-a.", f"{run}-b."
    create_topics(kafka_bootstrap, known)
    queued = topics.topic_name(topics.MENTIONS_SCORED, known)
    other = topics.topic_name(topics.ALERTS, created_later)
    keys = [f"brand-{n}".encode() for n in range(40)]

    async def produce() -> bool:
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

    assert asyncio.run(produce()), f"the producer forgot the metadata of {queued}"
    delivered = sorted(record.key for record in read_records(kafka_bootstrap, queued))
    assert delivered == sorted(keys)
