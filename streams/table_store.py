"""Where the worker's tables live between restarts: Faust's memory store, or RocksDB on disk.

With ``memory`` (Faust's ``memory://``) a starting worker rebuilds every table by reading its whole
changelog. With ``rocksdb`` (:class:`LocalStateStore`) each table partition also lives in a local
RocksDB database (faust-streaming's store through ``rocksdict``) under the worker's data
directory, with the changelog offset it holds; a worker restarted on the same disk reads only the
changelog records written after that offset.

The worker reads and writes its tables through memory in both cases (:mod:`streams.tables` keeps
decoded objects in them). What reaches RocksDB is only what the broker has acknowledged on the
changelog, in offset order, each record followed by its offset: the database is always the
changelog applied up to its stored offset, never ahead of it. A crash anywhere (between a table
write and its changelog record, between the record and the offset commit of the batch that made
it) leaves the database behind the changelog at worst, and recovery reads the difference, exactly
what a memory-store worker would rebuild from the changelog, so the write order and the
effectively-once argument of :mod:`streams.tables` are unchanged.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import itertools
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import aiokafka
import rocksdict
from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.types import TP

from streams.clock import SYSTEM_CLOCK, Clock
from streams.settings import TableStoreKind

__all__ = [
    "CHANGELOG_TOPIC_CONFIGS",
    "STORE_URLS",
    "LocalStateStore",
    "TableStoreKind",
    "claim_state_dir",
    "store_url",
]

LOCAL_STORE_SCHEME = "listenwell-rocksdb"
STORE_URLS: dict[TableStoreKind, str] = {
    "memory": "memory://",
    "rocksdb": f"{LOCAL_STORE_SCHEME}://",
}
DELETE_RETENTION_S = 24 * 3600
"""How long the broker keeps a deletion (tombstone) on a compacted changelog."""
LOCAL_STATE_MAX_AGE_S = DELETE_RETENTION_S / 2
"""A partition's local database last written longer ago than this is discarded when the partition
is assigned, and rebuilt from the changelog: a deletion older than ``DELETE_RETENTION_S`` may have
been compacted away, and an old database would keep what was deleted (an erased customer, say)."""
CHANGELOG_TOPIC_CONFIGS: dict[str, str] = {
    # Faust creates the changelogs compacted. A segment is only compacted once it is closed, and
    # Kafka's default segment (1 GiB, 7 days) would keep a changelog's every record for days: a
    # worker on a new disk would read them all. Rolling every 10 minutes (or 64 MiB) and cleaning
    # at 20% dirty keeps about one record per key, plus the last 10 minutes, plus the deletions
    # of the last day.
    "segment.ms": str(10 * 60 * 1000),
    "segment.bytes": str(64 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.2",
    "delete.retention.ms": str(DELETE_RETENTION_S * 1000),
}
PRELOAD_FETCH_BYTES = 16 * 1024 * 1024
"""Most bytes the changelog preload fetches per partition and request (aiokafka's default: 1 MiB,
which took a round trip per ~6,000 records)."""
STORED_AT_KEY = b"__listenwell\0stored_at__"
"""Where a local database keeps when it was last written (epoch seconds), beside Faust's offset."""
STORED_AT_EVERY_S = 60.0

# Per partition database: small memtables and cache (the worker reads from memory; RocksDB is
# read once, when a partition is assigned). Faust's defaults (64 MiB x 3 memtables, 2 GiB cache)
# times 3 tables x the partition count would let a worker's memory grow by gigabytes.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 32 * 1024 * 1024,
    "block_cache_compressed_size": 0,
}


def store_url(kind: TableStoreKind) -> str:
    """The Faust store URL of ``kind`` (``LISTENWELL_TABLE_STORE``)."""
    return STORE_URLS[kind]


_CLAIMED: list[IO[str]] = []
_PRELOAD_DEADLINES: weakref.WeakKeyDictionary[Any, tuple[int, float]] = weakref.WeakKeyDictionary()
"""Per Faust app, the generation id of its latest rebalance and when (on its stores' monotonic
clock) the changelog preload of that rebalance must stop, for all of the app's tables: the group
consumer sends no heartbeats until every table's store has handled the rebalance. Keyed by the
app (two apps in one process have budgets of their own) and dropped with it."""


def claim_state_dir(base: Path) -> Path:
    """A folder under ``base`` for this process's RocksDB databases that no running process
    uses: ``slot-0``, else the first free ``slot-N``, held by a lock on its ``worker.lock`` for
    the life of the process.

    RocksDB lets one process open a database: two workers on one data dir (two on a machine, or
    replicas sharing a volume) would otherwise fail on each other's locks when a partition or its
    standby moves between them. A worker restarted after its predecessor died (the kernel drops
    the lock with the process) gets ``slot-0`` back, and with it its state.
    """
    base.mkdir(parents=True, exist_ok=True)
    for number in itertools.count():
        path = base / f"slot-{number}"
        path.mkdir(exist_ok=True)
        handle = (path / "worker.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _CLAIMED.append(handle)
        return path
    raise AssertionError("unreachable")


class LocalStateStore(faust_rocksdb.Store):
    """Faust's RocksDB store with a dict in front of it (see the module docstring).

    Reads and writes of the table's ``data`` go to memory. RocksDB gets what recovery reads from
    the changelog (Faust's own ``apply_changelog_batch``) and, through :meth:`written`, the
    worker's own changelog records once the broker acknowledged them. When a partition is
    assigned its database is loaded into memory; when it is revoked its keys leave memory.
    """

    clock: Clock = SYSTEM_CLOCK
    """Tells the age of a local database and times the changelog preload (a class attribute:
    Faust builds the stores)."""
    preload: bool = True
    """Read the changelog of newly assigned partitions in bulk (:meth:`preload_changelogs`)
    before Faust's recovery reads what is left, record by record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rocksdb_options = faust_rocksdb.RocksDBOptions(
            **{**ROCKSDB_OPTIONS, **self.rocksdb_options.extra_options},
            use_rocksdict=True,
        )
        self._memory: dict[bytes, Any] = {}
        self._keys_of: dict[int, set[bytes]] = {}
        self._loaded: set[int] = set()
        self._stored_at: dict[int, float] = {}
        # Acknowledged changelog records not yet in their databases: (partition, offset, key,
        # payload), in acknowledgement order (see written).
        self._unstored: list[tuple[int, int, bytes, bytes | None]] = []

    # The mapping the worker uses: values are whatever streams.tables put there (objects, or
    # the bytes recovery read until they are first used).

    def __getitem__(self, key: Any) -> Any:
        return self._memory[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._memory[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._memory[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._memory)

    def __len__(self) -> int:
        return len(self._memory)

    def __contains__(self, key: object) -> bool:
        return key in self._memory

    def keys(self) -> Any:
        return self._memory.keys()

    def values(self) -> Any:
        return self._memory.values()

    def items(self) -> Any:
        return self._memory.items()

    def _get(self, key: bytes) -> bytes | None:
        value = self._memory.get(key)
        return value if value is None or isinstance(value, bytes) else None

    def _contains(self, key: bytes) -> bool:
        return key in self._memory

    def _iterkeys(self) -> Iterator[bytes]:
        return iter(list(self._memory))

    def _size(self) -> int:
        return len(self._memory)

    # RocksDB: what the changelog holds, up to the offset stored with it.

    def written(self, key: bytes, payload: bytes | None, delivery: Awaitable[object]) -> None:
        """Store ``key``'s new ``payload`` (None: deleted) locally once ``delivery`` (the
        changelog record's produce future) succeeds, with the record's offset.

        The producer resolves the futures of one partition in offset order, so the database
        follows the changelog in order. A failed delivery stores nothing (the worker stops on
        it, and its batch is replayed).

        The records acknowledged together (the producer resolves a whole produce batch's futures
        in one go) reach the database as one write batch per partition, with the last one's
        offset, in the loop turn after their acknowledgements (:meth:`_store_acknowledged`): two
        RocksDB writes per record cost ~8 µs, a batch ~2 µs a record (docs/performance.md, "The
        worker's shell, a third look").
        """
        future = asyncio.ensure_future(delivery)
        future.add_done_callback(functools.partial(self._acknowledged, key, payload))

    def _acknowledged(self, key: bytes, payload: bytes | None, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        metadata = done.result()
        if not self._unstored:
            done.get_loop().call_soon(self._store_acknowledged)
        self._unstored.append((metadata.partition, metadata.offset, key, payload))

    def _store_acknowledged(self) -> None:
        """Write the records acknowledged since the last call into their partitions' databases:
        per partition one write batch, in acknowledgement (offset) order, ending with the last
        record's offset, so a database holds the records and their offset, or neither. Also
        called before anything reads a database's offset, writes recovered records or lets a
        database go (a rebalance, a reset, the store's stop), so none of them sees the database
        behind what the worker's own acknowledged writes already put in the queue."""
        unstored, self._unstored = self._unstored, []
        by_partition: dict[int, list[tuple[int, bytes, bytes | None]]] = {}
        for partition, offset, key, payload in unstored:
            by_partition.setdefault(partition, []).append((offset, key, payload))
        for partition, records in by_partition.items():
            db = self._db_for_partition(partition)
            batch = rocksdict.WriteBatch(raw_mode=True)
            keys = self._keys_of.get(partition)
            for _offset, key, payload in records:
                if payload is None:
                    batch.delete(key)
                    if keys is not None:
                        keys.discard(key)
                else:
                    batch.put(key, payload)
                    if keys is None:
                        keys = self._keys_of[partition] = set()
                    keys.add(key)
            batch.put(self.offset_key, str(records[-1][0]).encode())
            db.write(batch)
            self._mark_stored(partition, db)

    def _mark_stored(self, partition: int, db: Any) -> None:
        now = self.clock.time()
        if now - self._stored_at.get(partition, 0.0) >= STORED_AT_EVERY_S:
            db.put(STORED_AT_KEY, repr(now).encode())
            self._stored_at[partition] = now

    def apply_changelog_batch(
        self,
        batch: Iterable[Any],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Recovery: the changelog records into RocksDB and into memory, as raw bytes (values are
        decoded when first used, see :mod:`streams.tables`)."""
        by_tp: dict[TP, list[Any]] = defaultdict(list)
        for event in batch:
            by_tp[event.message.tp].append(event.message)
        for tp, messages in by_tp.items():
            records = [(message.key, message.value) for message in messages]
            self.apply_records(tp, records, max(message.offset for message in messages))

    def apply_records(self, tp: TP, records: list[tuple[bytes, bytes | None]], offset: int) -> None:
        """Changelog records of ``tp`` up to and including ``offset``, in offset order (a None
        value: the key was deleted), into the partition's database in one write batch, followed
        by ``offset``, and into memory."""
        self._store_acknowledged()
        partition = tp.partition
        self._load(partition)
        db = self._db_for_partition(partition)
        batch = rocksdict.WriteBatch(raw_mode=True)
        memory = self._memory
        keys = self._keys_of.setdefault(partition, set())
        # Only each key's last value counts: an uncompacted changelog repeats keys many times.
        for key, value in dict(records).items():
            if value is None:
                batch.delete(key)
                memory.pop(key, None)
                keys.discard(key)
            else:
                batch.put(key, value)
                memory[key] = value
                keys.add(key)
        # The offset in the same batch: the database holds the records and their offset, or
        # neither.
        batch.put(self.offset_key, str(offset).encode())
        db.write(batch)
        self._mark_stored(partition, db)

    def persisted_offset(self, tp: TP) -> int | None:
        """The changelog offset the local database holds (recovery starts there); loads the
        partition into memory first, so memory and the database start from the same state."""
        self._store_acknowledged()
        self._load(tp.partition)
        offset: int | None = super().persisted_offset(tp)
        return offset

    async def assign_partitions(self, table: Any, tps: set[TP], generation_id: int = 0) -> None:
        await super().assign_partitions(table, tps, generation_id)
        # Faust's store opened a database for each active (not standby) partition of this table.
        actives = {
            tp
            for tp in tps
            if tp.topic in table.changelog_topic.topics and tp.partition in self._dbs
        }
        for tp in actives:
            self._load(tp.partition)
        if self.preload and actives:
            deadline = self._preload_deadline(generation_id)
            await self.preload_changelogs(actives, deadline - self.clock.monotonic())

    def _preload_deadline(self, generation_id: int) -> float:
        """When the preload of rebalance ``generation_id`` must stop: one budget per rebalance
        of this store's app, shared by its tables' stores (each preloads its own partitions)."""
        latest = _PRELOAD_DEADLINES.get(self.app)
        if latest is None or latest[0] != generation_id:
            budget_s = float(self.app.conf.broker_session_timeout) / 2
            latest = (generation_id, self.clock.monotonic() + budget_s)
            _PRELOAD_DEADLINES[self.app] = latest
        return latest[1]

    async def preload_changelogs(self, tps: set[TP], budget_s: float) -> int:
        """Read the changelog of ``tps`` from each database's offset to the end as it is now,
        in bulk, into the databases and memory; returns the records read.

        Faust's recovery reads a changelog record by record through its consumer, conductor and
        recovery loop, ~4,000-7,000 records/s here (``bench/restart.py``); a consumer of our
        own, fetching large batches and writing one RocksDB batch per fetch, reads them many
        times faster. Recovery then starts from the offsets stored here and reads only what was
        written since. This runs inside the group's rebalance callback, while the group
        consumer sends no heartbeats: it stops after ``budget_s`` (what is left of half the
        session timeout for all tables), and on any error, and leaves the rest to Faust's
        recovery. Each fetch is stored with
        its last offset, so whatever it read stays read.
        """
        if budget_s <= 0:
            return 0
        conf = self.app.conf
        clock = self.clock
        deadline = clock.monotonic() + budget_s
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=server_list(conf.broker, 9092),
            client_id=f"{conf.broker_client_id}-table-preload",
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=PRELOAD_FETCH_BYTES,
            fetch_max_bytes=4 * PRELOAD_FETCH_BYTES,
            fetch_max_wait_ms=50,
            request_timeout_ms=max(1000, int(budget_s * 1000)),
            **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )
        read = 0
        try:
            await asyncio.wait_for(consumer.start(), timeout=budget_s)
            partitions = {aiokafka.TopicPartition(tp.topic, tp.partition): tp for tp in tps}
            consumer.assign(list(partitions))
            ends = await consumer.end_offsets(list(partitions))
            pending = set()
            for kafka_tp, tp in partitions.items():
                stored = self.persisted_offset(tp)
                start = 0 if stored is None else stored + 1
                if start < ends[kafka_tp]:
                    consumer.seek(kafka_tp, start)
                    pending.add(kafka_tp)
            while pending and clock.monotonic() < deadline:
                fetched = await consumer.getmany(*pending, timeout_ms=200)
                for kafka_tp, messages in fetched.items():
                    records = [(message.key, message.value) for message in messages]
                    self.apply_records(partitions[kafka_tp], records, messages[-1].offset)
                    read += len(records)
                for kafka_tp in list(pending):
                    if await consumer.position(kafka_tp) >= ends[kafka_tp]:
                        pending.discard(kafka_tp)
                        consumer.pause(kafka_tp)
        except Exception as error:  # recovery reads what the preload could not
            self.log.warning("changelog preload stopped (%r); recovery reads the rest", error)
        finally:
            await consumer.stop()
        self.log.info("preloaded %d changelog records of %d partitions", read, len(tps))
        return read

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        self._store_acknowledged()
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                for key in self._keys_of.pop(tp.partition, set()):
                    self._memory.pop(key, None)
                self._loaded.discard(tp.partition)
        super().revoke_partitions(table, tps)

    def _load(self, partition: int) -> None:
        """The partition's database into memory, once per assignment; a database too old to
        trust (see ``LOCAL_STATE_MAX_AGE_S``) is emptied first, and recovery rebuilds it."""
        if partition in self._loaded:
            return
        self._loaded.add(partition)
        db = self._db_for_partition(partition)
        stored_at = db.get(STORED_AT_KEY)
        if stored_at is not None and self.clock.time() - float(stored_at) > LOCAL_STATE_MAX_AGE_S:
            self.log.warning(
                "local state of partition %d is older than %.0f h: rebuilding it from the "
                "changelog",
                partition,
                LOCAL_STATE_MAX_AGE_S / 3600,
            )
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key in db.keys():  # noqa: SIM118 (an Rdict in raw mode does not iterate)
                batch.delete(key)
            db.write(batch)
            return
        keys = self._keys_of.setdefault(partition, set())
        memory = self._memory
        for key, value in self._visible_items(db):
            if key == STORED_AT_KEY:
                continue
            # A key already in memory was written or recovered after the database's state.
            memory.setdefault(key, value)
            keys.add(key)

    async def stop(self) -> None:
        self._store_acknowledged()
        await super().stop()

    def reset_state(self) -> None:
        self._store_acknowledged()
        self._memory.clear()
        self._keys_of.clear()
        self._loaded.clear()
        super().reset_state()


STORES.aliases[LOCAL_STORE_SCHEME] = f"{__name__}:LocalStateStore"
