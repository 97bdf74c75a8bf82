"""The RocksDB table store: on disk only what the broker acknowledged, in memory while it runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

import faust
from faust.types import TP

from streams.clock import FakeClock
from streams.table_store import (
    LOCAL_STATE_MAX_AGE_S,
    STORED_AT_KEY,
    LocalStateStore,
    store_url,
)
from streams.tables import declare_tables

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ChangelogMessage:
    """A changelog record as Faust's recovery hands it to the store."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes | None

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class ChangelogEvent:
    message: ChangelogMessage


@dataclass
class Delivered:
    """What the producer's delivery future resolves to (aiokafka's RecordMetadata)."""

    partition: int
    offset: int


@contextmanager
def customers_store(data_dir: Path) -> Iterator[tuple[LocalStateStore, Any]]:
    """The ``customers`` table's store of a worker app on ``data_dir`` (no broker needed), and
    its changelog topic; the databases are closed afterwards, as when the process ends."""
    app = faust.App(
        "table-store-test", store=store_url("rocksdb"), datadir=str(data_dir), broker="kafka://"
    )
    _brands, customers, _parts = declare_tables(app, 2)
    store = customers.data
    assert isinstance(store, LocalStateStore)
    try:
        yield store, customers.changelog_topic.get_topic_name()
    finally:
        for db in store._dbs.values():
            db.close()


async def acknowledged(future: asyncio.Future[Any], partition: int, offset: int) -> None:
    future.set_result(Delivered(partition, offset))
    await asyncio.sleep(0)  # the done-callbacks run
    await asyncio.sleep(0)  # the store writes what they acknowledged


class Changelog:
    """What the store reads of a table in a rebalance: its changelog topic's names."""

    def __init__(self, topic: str) -> None:
        self.changelog_topic = type("Changelog", (), {"topics": {topic}})()


class CountingDatabase:
    """A partition's database that counts the writes the store makes to it."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.puts: list[bytes] = []
        self.deletes: list[bytes] = []
        self.batches = 0

    def put(self, key: bytes, value: bytes) -> None:
        self.puts.append(key)
        self.db.put(key, value)

    def delete(self, key: bytes) -> None:
        self.deletes.append(key)
        self.db.delete(key)

    def write(self, batch: Any) -> None:
        self.batches += 1
        self.db.write(batch)


def test_a_restarted_store_has_what_the_broker_acknowledged_and_its_offset(tmp_path: Path) -> None:
    async def first_run() -> None:
        with customers_store(tmp_path) as (store, _topic):
            loop = asyncio.get_running_loop()
            for offset, (key, payload) in enumerate([(b"b/1", b"one"), (b"b/2", b"two")]):
                store[key] = object()  # what the worker keeps in memory: decoded states
                delivery = loop.create_future()
                store.written(key, payload, delivery)
                await acknowledged(delivery, 1, offset)
            store.pop(b"b/1")
            deletion = loop.create_future()
            store.written(b"b/1", None, deletion)
            await acknowledged(deletion, 1, 2)

    async def second_run() -> tuple[int | None, int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            offsets = store.persisted_offset(TP(topic, 1)), store.persisted_offset(TP(topic, 0))
            return offsets[0], offsets[1], dict(store.items())

    asyncio.run(first_run())
    offset_1, offset_0, recovered = asyncio.run(second_run())
    assert (offset_1, offset_0) == (2, None)
    assert recovered == {b"b/2": b"two"}


def test_a_write_the_broker_did_not_acknowledge_never_reaches_the_disk(tmp_path: Path) -> None:
    """A crash between a table write and its changelog record (or a failed produce) leaves the
    database at the last acknowledged record: recovery then reads that record from the
    changelog if it is there, and the batch is replayed if it is not."""

    async def first_run() -> None:
        with customers_store(tmp_path) as (store, _topic):
            loop = asyncio.get_running_loop()
            stored = loop.create_future()
            store[b"b/1"] = "first"
            store.written(b"b/1", b"first", stored)
            await acknowledged(stored, 0, 10)
            failed, pending = loop.create_future(), loop.create_future()
            store[b"b/1"] = "second"
            store.written(b"b/1", b"second", failed)
            failed.set_exception(RuntimeError("broker unreachable"))
            store[b"b/2"] = "third"
            store.written(b"b/2", b"third", pending)  # the process dies before the ack
            await asyncio.sleep(0)
            assert dict(store.items()) == {b"b/1": "second", b"b/2": "third"}

    async def second_run() -> tuple[int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            return store.persisted_offset(TP(topic, 0)), dict(store.items())

    asyncio.run(first_run())
    assert asyncio.run(second_run()) == (10, {b"b/1": b"first"})


def test_records_acknowledged_together_reach_the_database_as_one_write_batch_per_partition(
    tmp_path: Path,
) -> None:
    """The producer resolves a produce batch's futures in one go: the store writes those records
    as one RocksDB write batch per partition, ending with the last offset, not two writes per
    record (docs/performance.md, "The worker's shell, a third look")."""
    writes: list[tuple[bytes, bytes | None, int, int]] = [
        (b"b/1", b"one", 1, 3),
        (b"a/1", b"x", 0, 7),
        (b"b/2", b"two", 1, 4),
    ]
    writes += [(b"b/1", None, 1, 5), (b"a/1", b"y", 0, 8)]

    async def first_run() -> dict[int, CountingDatabase]:
        with customers_store(tmp_path) as (store, _topic):
            loop = asyncio.get_running_loop()
            databases: dict[int, CountingDatabase] = {}
            open_database = store._db_for_partition

            def counted(partition: int) -> Any:
                if partition not in databases:
                    databases[partition] = CountingDatabase(open_database(partition))
                return databases[partition]

            futures = []
            with patch.object(store, "_db_for_partition", counted):
                for key, payload, _partition, _offset in writes:
                    future = loop.create_future()
                    store.written(key, payload, future)
                    futures.append(future)
                for future, (_key, _payload, partition, offset) in zip(
                    futures, writes, strict=True
                ):
                    future.set_result(Delivered(partition, offset))
                for _ in range(3):
                    await asyncio.sleep(0)
            return databases

    async def second_run() -> tuple[int | None, int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            offsets = store.persisted_offset(TP(topic, 1)), store.persisted_offset(TP(topic, 0))
            return offsets[0], offsets[1], dict(store.items())

    databases = asyncio.run(first_run())
    assert sorted(databases) == [0, 1]
    for database in databases.values():
        assert database.batches == 1
        assert database.deletes == []
        assert [key for key in database.puts if key != STORED_AT_KEY] == []
    assert asyncio.run(second_run()) == (5, 8, {b"a/1": b"y", b"b/2": b"two"})


def test_acknowledged_records_are_on_disk_before_an_offset_is_read_or_a_database_let_go(
    tmp_path: Path,
) -> None:
    """Acknowledged records wait for the next turn of the event loop to reach the database; a
    read of the stored offset (recovery starts there) or a revoked partition in between writes
    them first."""

    async def run() -> tuple[int | None, bytes | None, bytes | None]:
        with customers_store(tmp_path) as (store, topic):
            loop = asyncio.get_running_loop()
            first, second = loop.create_future(), loop.create_future()
            store.written(b"b/1", b"one", first)
            store.written(b"a/1", b"x", second)
            first.set_result(Delivered(1, 6))
            second.set_result(Delivered(0, 9))
            await asyncio.sleep(0)  # the done-callbacks run; the write waits for the next turn
            offset = store.persisted_offset(TP(topic, 1))
            revoked = store._db_for_partition(0)
            third = loop.create_future()
            store.written(b"a/2", b"z", third)
            third.set_result(Delivered(0, 10))
            await asyncio.sleep(0)
            store.revoke_partitions(Changelog(topic), {TP(topic, 0)})
            return offset, revoked.get(store.offset_key), revoked.get(b"a/2")

    assert asyncio.run(run()) == (6, b"10", b"z")


def test_recovery_fills_disk_and_memory_and_a_revoked_partition_leaves_memory(
    tmp_path: Path,
) -> None:
    async def run() -> tuple[dict[bytes, Any], dict[bytes, Any], int | None]:
        with customers_store(tmp_path) as (store, topic):
            store.apply_changelog_batch(
                [
                    ChangelogEvent(ChangelogMessage(topic, 0, 0, b"a/1", b"x")),
                    ChangelogEvent(ChangelogMessage(topic, 1, 0, b"b/1", b"y")),
                    ChangelogEvent(ChangelogMessage(topic, 1, 1, b"b/2", b"z")),
                    ChangelogEvent(ChangelogMessage(topic, 1, 2, b"b/1", None)),
                ],
                to_key=lambda k: k,
                to_value=lambda v: v,
            )
            before = dict(store.items())
            store.revoke_partitions(Changelog(topic), {TP(topic, 1)})
            after = dict(store.items())
            return before, after, store.persisted_offset(TP(topic, 1))

    before, after, offset = asyncio.run(run())
    assert before == {b"a/1": b"x", b"b/2": b"z"}
    assert after == {b"a/1": b"x"}
    assert offset == 2  # on disk all along: assigned again, the partition reads from there


def test_local_state_older_than_the_changelog_keeps_deletions_is_rebuilt(tmp_path: Path) -> None:
    """A database last written more than half of the changelogs' delete retention ago may miss
    deletions the broker has since compacted away: it is emptied, and recovery rebuilds it."""
    clock = FakeClock()

    async def write(payload: bytes, offset: int) -> None:
        with customers_store(tmp_path) as (store, _topic):
            delivery = asyncio.get_running_loop().create_future()
            store.written(b"b/1", payload, delivery)
            await acknowledged(delivery, 0, offset)

    async def restart() -> tuple[int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            return store.persisted_offset(TP(topic, 0)), dict(store.items())

    with patch.object(LocalStateStore, "clock", clock):
        asyncio.run(write(b"erased tomorrow", 4))
        clock.advance(LOCAL_STATE_MAX_AGE_S - 60)
        assert asyncio.run(restart()) == (4, {b"b/1": b"erased tomorrow"})
        clock.advance(120)
        assert asyncio.run(restart()) == (None, {})


def test_two_workers_on_one_data_dir_get_a_folder_each_and_a_restart_gets_its_own_back(
    tmp_path: Path,
) -> None:
    script = (
        "import sys, time; from pathlib import Path; "
        "from streams.table_store import claim_state_dir; "
        "print(claim_state_dir(Path(sys.argv[1])).name, flush=True); time.sleep(60)"
    )
    command = [sys.executable, "-c", script, str(tmp_path)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "slot-0"
        second = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert second.stdout is not None
            assert second.stdout.readline().strip() == "slot-1"
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()  # a crash: the kernel releases its lock
        first.wait()
    restarted = subprocess.run(
        [sys.executable, "-c", script.replace("time.sleep(60)", "pass"), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert restarted.stdout.strip() == "slot-0"


def test_a_bulk_read_keeps_each_keys_last_value_with_its_offset_across_a_restart(
    tmp_path: Path,
) -> None:
    """What the changelog preload writes (one batch per fetch, keys repeated as in an
    uncompacted changelog): each key ends as its last record says, on disk and in memory."""

    async def first_run() -> dict[bytes, Any]:
        with customers_store(tmp_path) as (store, topic):
            records: list[tuple[bytes, bytes | None]] = [
                (b"b/1", b"one"),
                (b"b/2", b"two"),
                (b"b/1", None),
                (b"b/3", b"three"),
                (b"b/2", None),
                (b"b/2", b"two again"),
            ]
            store.apply_records(TP(topic, 1), records, 41)
            return dict(store.items())

    async def second_run() -> tuple[int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            return store.persisted_offset(TP(topic, 1)), dict(store.items())

    expected = {b"b/2": b"two again", b"b/3": b"three"}
    assert asyncio.run(first_run()) == expected
    assert asyncio.run(second_run()) == (41, expected)


def test_the_preload_budget_is_shared_by_one_apps_tables_per_rebalance_and_not_across_apps(
    tmp_path: Path,
) -> None:
    """The changelog preload runs while the group consumer sends no heartbeats: the tables of one
    app share half the session timeout per rebalance, a new rebalance starts a new budget, and a
    second app in the same process (a test, two workers) has a budget of its own, even at the
    same generation id."""
    clock = FakeClock()
    budgets: list[tuple[str, str, float]] = []

    async def preload(store: LocalStateStore, tps: set[TP], budget_s: float) -> int:
        budgets.append((store.app.conf.id, store.table.name, budget_s))
        clock.advance(8.0)  # the time this table's bulk read took
        return 0

    def worker_tables(name: str) -> list[Any]:
        app = faust.App(
            name,
            store=store_url("rocksdb"),
            datadir=str(tmp_path / name),
            broker="kafka://",
            broker_session_timeout=60.0,
        )
        return list(declare_tables(app, 2))

    async def rebalance(tables: list[Any], generation_id: int) -> None:
        for table in tables:
            tps = {TP(table.changelog_topic.get_topic_name(), 0)}
            await table.data.assign_partitions(table, tps, generation_id)

    async def run() -> None:
        first_tables = worker_tables("first-app")
        second_tables = worker_tables("second-app")
        try:
            await rebalance(first_tables, 1)
            clock.advance(100.0)
            await rebalance(second_tables, 1)
            await rebalance(first_tables, 2)
        finally:
            for table in first_tables + second_tables:
                for db in table.data._dbs.values():
                    db.close()

    with (
        patch.object(LocalStateStore, "clock", clock),
        patch.object(LocalStateStore, "preload_changelogs", preload),
    ):
        asyncio.run(run())
    assert [(app, budget) for app, _table, budget in budgets] == [
        ("first-app", 30.0),
        ("first-app", 22.0),
        ("first-app", 14.0),
        ("second-app", 30.0),
        ("second-app", 22.0),
        ("second-app", 14.0),
        ("first-app", 30.0),
        ("first-app", 22.0),
        ("first-app", 14.0),
    ]


@dataclass
class Fetched:
    """A changelog record as aiokafka's consumer hands it out."""

    offset: int
    key: bytes
    value: bytes | None


class FailingChangelogConsumer:
    """aiokafka's consumer as the preload uses it, over one changelog partition whose first
    fetch succeeds and whose second fails (a broker gone, a timeout)."""

    fetches: ClassVar[list[list[Fetched]]] = []
    end = 0

    def __init__(self, **config: Any) -> None:
        self.position_of: dict[Any, int] = {}

    async def start(self) -> None:
        pass

    def assign(self, partitions: list[Any]) -> None:
        self.partitions = partitions

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {tp: self.end for tp in partitions}

    def seek(self, tp: Any, offset: int) -> None:
        self.position_of[tp] = offset

    async def getmany(self, *partitions: Any, timeout_ms: int = 0) -> dict[Any, list[Fetched]]:
        if not self.fetches:
            raise ConnectionError("broker gone")
        fetched = self.fetches.pop(0)
        (tp,) = partitions
        self.position_of[tp] = fetched[-1].offset + 1
        return {tp: fetched}

    async def position(self, tp: Any) -> int:
        return self.position_of[tp]

    def pause(self, tp: Any) -> None:
        pass

    async def stop(self) -> None:
        pass


def test_a_preload_that_fails_midway_keeps_what_it_stored_with_its_offset_and_recovery_reads_on(
    tmp_path: Path,
) -> None:
    """The preload stores each fetch with that fetch's last offset in one write batch: when a
    later fetch fails, the database (and memory) hold exactly the changelog up to the stored
    offset, so Faust's recovery, which starts there, ends with the whole changelog's state, and
    so does a restart."""
    first_fetch = [Fetched(0, b"b/1", b"one"), Fetched(1, b"b/2", b"two"), Fetched(2, b"b/1", None)]
    rest = [Fetched(3, b"b/3", b"three"), Fetched(4, b"b/2", b"two again")]

    async def preload_then_recover() -> tuple[int, int | None, dict[bytes, Any], dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            tp = TP(topic, 1)
            store._db_for_partition(1)  # opened as Faust's assign_partitions opens it
            read = await store.preload_changelogs({tp}, 30.0)
            offset, preloaded = store.persisted_offset(tp), dict(store.items())
            # Faust's recovery: from the stored offset (it re-reads that record) to the end.
            store.apply_changelog_batch(
                [
                    ChangelogEvent(ChangelogMessage(topic, 1, r.offset, r.key, r.value))
                    for r in [first_fetch[-1], *rest]
                ],
                to_key=lambda k: k,
                to_value=lambda v: v,
            )
            return read, offset, preloaded, dict(store.items())

    async def restart() -> tuple[int | None, dict[bytes, Any]]:
        with customers_store(tmp_path) as (store, topic):
            return store.persisted_offset(TP(topic, 1)), dict(store.items())

    with (
        patch.object(FailingChangelogConsumer, "fetches", [first_fetch]),
        patch.object(FailingChangelogConsumer, "end", 5),
        patch("streams.table_store.aiokafka.AIOKafkaConsumer", FailingChangelogConsumer),
    ):
        read, offset, preloaded, recovered = asyncio.run(preload_then_recover())
    assert (read, offset, preloaded) == (3, 2, {b"b/2": b"two"})
    whole_changelog = {b"b/2": b"two again", b"b/3": b"three"}
    assert recovered == whole_changelog
    assert asyncio.run(restart()) == (4, whole_changelog)
