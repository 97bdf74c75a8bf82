"""A worker restarted on its own disk serves the state it had from there (RocksDB table store)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import faust
import pytest
from faust.types import TP
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import BrokerResponseError

from connectors.simulate import generate
from streams.records import Mention, MentionKind
from streams.table_store import LocalStateStore, store_url
from streams.tables import declare_tables
from tests.integration.harness import Run, wait_for
from tests.integration.test_pipeline import produce, wait_until_scored

pytestmark = pytest.mark.integration


def changelog_ends(run: Run) -> dict[TopicPartition, int]:
    """End offset of each partition of the run's table changelogs."""
    app_id = run.env()["LISTENWELL_APP_ID"]
    consumer = KafkaConsumer(bootstrap_servers=run.bootstrap)
    try:
        parts = [
            TopicPartition(topic, partition)
            for topic in consumer.topics()
            if topic.startswith(app_id) and topic.endswith("-changelog")
            for partition in consumer.partitions_for_topic(topic) or ()
        ]
        ends: dict[TopicPartition, int] = consumer.end_offsets(parts)
        return ends
    finally:
        consumer.close()


def empty_the_changelogs(run: Run) -> int:
    """Delete every record of the run's table changelogs (nothing left to recover from there);
    returns how many there were."""
    ends = changelog_ends(run)
    parts = list(ends)
    admin = KafkaAdminClient(bootstrap_servers=run.bootstrap)
    try:
        # The broker deletes records of a compacted-only topic only if it may also delete them.
        admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": "compact,delete"}
                )
                for topic in {tp.topic for tp in parts}
            ]
        )

        def deleted() -> bool:
            # The broker applies a topic's new config shortly after answering: until then it
            # refuses the deletion (PolicyViolationError).
            try:
                admin.delete_records(ends)
            except BrokerResponseError as error:
                if "PolicyViolationError" not in str(error):
                    raise
                return False
            return True

        wait_for(deleted, what="the changelogs' records deleted")
    finally:
        admin.close()
    return sum(ends.values())


def last_mention(brand: str) -> Mention:
    return Mention(
        id="test:after-restart",
        source="test",
        kind=MentionKind.POST,
        brand=brand,
        text="the one after the restart",
        author="a1",
        created_at=datetime.now(UTC),
        fetched_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(("store", "duplicates_recognised"), [("rocksdb", 10), ("memory", 0)])
def test_a_restarted_worker_keeps_the_state_on_its_disk(
    run_factory: Callable[[str], Run], store: str, duplicates_recognised: int
) -> None:
    """With the RocksDB store the state a worker had survives its restart on the same data dir
    even with nothing on the changelogs to recover from (so a restart reads only the changelog
    written since); the memory store, the control, has only the changelogs."""
    run = run_factory(f"restart-{store}")
    mentions = generate("calm", seed=5)[:30]
    produce(run, mentions)
    run.start_worker(LISTENWELL_TABLE_STORE=store)
    wait_until_scored(run, {m.id for m in mentions})
    run.stop_all()
    assert empty_the_changelogs(run) > 0, "the worker wrote its state to the changelogs"

    after = last_mention(mentions[0].brand)
    produce(run, [*mentions[:10], after])
    restarted = run.start_worker(LISTENWELL_TABLE_STORE=store)
    wait_until_scored(run, {after.id})
    assert wait_for(
        lambda: restarted.metric("listenwell_mentions_ingested_total") >= 11,
        what="the 11 mentions after the restart ingested",
    )
    deduplicated = restarted.metric("listenwell_mentions_deduplicated_total")
    assert deduplicated == duplicates_recognised
    scored = [s.mention.id for s in run.scored()]
    assert len(scored) == len(mentions) + 1 + (10 - duplicates_recognised)


PRELOADED = re.compile(r"preloaded (\d+) changelog records")


def test_a_worker_on_a_new_disk_rebuilds_its_state_from_the_changelogs(
    run_factory: Callable[[str], Run], tmp_path: Path
) -> None:
    """A worker on an empty data dir reads the changelogs in bulk (the store's preload, every
    record of them) and has the state the stopped worker had: it recognises all 10 re-sent
    mentions as duplicates."""
    run = run_factory("restart-new-disk")
    mentions = generate("calm", seed=5)[:30]
    produce(run, mentions)
    run.start_worker(LISTENWELL_TABLE_STORE="rocksdb")
    wait_until_scored(run, {m.id for m in mentions})
    run.stop_all()
    written = sum(changelog_ends(run).values())
    assert written > 0, "the worker wrote its state to the changelogs"

    after = last_mention(mentions[0].brand)
    produce(run, [*mentions[:10], after])
    restarted = run.start_worker(
        LISTENWELL_TABLE_STORE="rocksdb", LISTENWELL_DATA_DIR=str(tmp_path / "new-disk")
    )
    wait_until_scored(run, {after.id})
    assert wait_for(
        lambda: restarted.metric("listenwell_mentions_ingested_total") >= 11,
        what="the 11 mentions after the restart ingested",
    )
    assert restarted.metric("listenwell_mentions_deduplicated_total") == 10
    preloaded = [int(n) for n in PRELOADED.findall(restarted.log.read_text(errors="replace"))]
    assert sum(preloaded) == written, "the preload read every changelog record there was"
    assert len(run.scored()) == len(mentions) + 1


def test_the_preload_reads_a_changelog_from_the_stored_offset_to_its_end(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The store's bulk read of a changelog keeps each key's last value (a tombstone deletes
    it), stores the last offset it read, and a second preload reads only what came after; with
    no time left it reads nothing and stores no offset (Faust's recovery then reads it all)."""
    app = faust.App(
        f"preload-{time.monotonic_ns()}",
        store=store_url("rocksdb"),
        datadir=str(tmp_path),
        broker=f"kafka://{kafka_bootstrap}",
    )
    _brands, customers, _parts = declare_tables(app, 2)
    store = customers.data
    assert isinstance(store, LocalStateStore)
    topic = customers.changelog_topic.get_topic_name()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    def append(partition: int, records: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush()

    first = [(f"b/{n % 700}".encode(), f"v{n}".encode()) for n in range(3_000)]
    append(1, [*first, (b"b/5", None)])
    append(0, [(b"a/1", b"only")])
    tps = {TP(topic, 0), TP(topic, 1)}

    async def preload(budget_s: float) -> int:
        await store.assign_partitions(customers, tps)  # opens the databases (preload off)
        return await store.preload_changelogs(tps, budget_s)

    try:
        with patch.object(LocalStateStore, "preload", False):
            assert asyncio.run(preload(0.0)) == 0
            assert store.persisted_offset(TP(topic, 1)) is None
            assert asyncio.run(preload(30.0)) == 3_002
            expected = {key: value for key, value in first} | {b"a/1": b"only"}
            del expected[b"b/5"]
            assert dict(store.items()) == expected
            assert store.persisted_offset(TP(topic, 1)) == 3_000
            append(1, [(b"b/6", b"later")])
            assert asyncio.run(preload(30.0)) == 1
            assert store[b"b/6"] == b"later"
            assert store.persisted_offset(TP(topic, 1)) == 3_001
    finally:
        producer.close()
        for db in store._dbs.values():
            db.close()
