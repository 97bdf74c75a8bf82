"""The worker's state: the ``brands`` and ``customers`` Faust tables and :class:`BrandStore`.

State lives in plain Faust tables (not windowed tables: see DESIGN.md, "Windows and state"):

- ``brands``: one :class:`streams.pipeline.BrandRecord` per brand, keyed by the brand's UTF-8 bytes,
  exactly the raw topic's message key. The table uses the default partitioner on those bytes, the
  same murmur2 partitioner the producers use for ``mentions.raw``, so a brand's state sits in the
  changelog partition with the same number as its raw partition and moves with it on a rebalance.
- ``customers``: one :class:`streams.engine.CustomerState` per ``brand/customer`` key, written
  explicitly into the partition of its brand's raw records (its own key would hash elsewhere).
- ``parts``: the pieces of a brand's state that are written once and then only deleted, in the
  brand's partition likewise: the ids it counted, one entry per batch that counted any
  (``brand/s/<name>``, the binary chunks of :mod:`streams.dedupe`; deleted past the dedupe
  horizon), and its closed minute buckets (``brand/b/<scope>/<minute as epoch seconds>``, JSON;
  deleted when they leave the windows).

A batch writes only what it changed: the customers it touched, one chunk of new ids and the
minutes it closed per brand, and each brand's record (its open minutes, rules, baseline, outbox).
Entries recovered from the changelogs are attached to their brand's record the first time the
brand is used, through an index of all keys built in one pass (rebuilt after each rebalance), so a
restart with many brands is linear in the state, not quadratic.

:class:`BrandStore` reads them for :class:`streams.pipeline.Pipeline` and writes what a batch
changed, in a fixed order, through the app's producer.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any, Protocol

from faust.serializers import codecs

from streams.pipeline import BatchResult, BrandRecord, BucketKey, CustomerChanges
from streams.producer import RecordSink
from streams.state import CustomerState
from streams.table_store import CHANGELOG_TOPIC_CONFIGS, LocalStateStore

__all__ = [
    "CUSTOMER_KEY_SEPARATOR",
    "BrandRecordCodec",
    "BrandStore",
    "ChangelogTable",
    "CustomerStateCodec",
    "declare_table",
]

CUSTOMER_KEY_SEPARATOR = "/"
SEP = "/"
SEEN_PART = "s"
BUCKET_PART = "b"
BRAND_RECORD_CODEC = "listenwell_brand_record"
CUSTOMER_STATE_CODEC = "listenwell_customer_state"


class BrandRecordCodec(codecs.Codec):
    """Table values as JSON on the changelog, as :class:`BrandRecord` objects in memory."""

    def _dumps(self, obj: Any) -> bytes:
        assert isinstance(obj, BrandRecord)
        return obj.to_changelog()

    def _loads(self, s: bytes) -> Any:
        return BrandRecord.from_changelog(s)


class CustomerStateCodec(codecs.Codec):
    """One customer's engine state per table entry (see :class:`BrandRecord`)."""

    def _dumps(self, obj: Any) -> bytes:
        assert isinstance(obj, CustomerState)
        return obj.to_json()

    def _loads(self, s: bytes) -> Any:
        return CustomerState.model_validate_json(s)


codecs.register(BRAND_RECORD_CODEC, BrandRecordCodec())
codecs.register(CUSTOMER_STATE_CODEC, CustomerStateCodec())


def declare_table(
    app: Any, name: str, partitions: int, value_codec: str, *, use_partitioner: bool = False
) -> Any:
    """A table with raw byte keys and values in ``value_codec``, on the changelog and on recovery.

    Faust derives a table's serializers from key_type/value_type only (json otherwise) and builds
    the changelog topic, which also decodes it on recovery, in the constructor: set both here.
    """
    table: Any = app.Table(
        name,
        partitions=partitions,
        use_partitioner=use_partitioner,
        extra_topic_configs=CHANGELOG_TOPIC_CONFIGS,
    )
    table.key_serializer = "raw"
    table.value_serializer = value_codec
    changelog: Any = table.changelog_topic
    changelog.key_serializer = changelog.schema.key_serializer = "raw"
    changelog.value_serializer = changelog.schema.value_serializer = value_codec
    return table


def declare_tables(app: Any, partitions: int) -> tuple[Any, Any, Any]:
    """The ``brands``, ``customers`` and ``parts`` tables of ``app`` (see the module
    docstring)."""
    # Keys are the brand's UTF-8 bytes, exactly the raw topic's message key: same partitioner,
    # same partition, and the same type before and after recovery from the changelog.
    # Values stay raw bytes on recovery and are decoded on first use (see BrandStore._record).
    brands = declare_table(app, "brands", partitions, "raw", use_partitioner=True)
    customers = declare_table(app, "customers", partitions, "raw")
    parts = declare_table(app, "parts", partitions, "raw")
    return brands, customers, parts


def _seen_key(brand: str, name: int) -> bytes:
    return f"{brand}{SEP}{SEEN_PART}{SEP}{name}".encode()


def _bucket_key(brand: str, bucket: BucketKey) -> bytes:
    scope, minute = bucket
    return f"{brand}{SEP}{BUCKET_PART}{SEP}{scope}{SEP}{int(minute.timestamp())}".encode()


def _customer(value: CustomerState | bytes) -> CustomerState:
    """A customer's state, decoded if it is still the bytes recovery left."""
    if isinstance(value, bytes):
        return CustomerState.model_validate_json(value)
    return value


class _TopicName(Protocol):
    def get_topic_name(self) -> str: ...


class ChangelogTable(Protocol):
    """What :class:`BrandStore` needs of a Faust table: its in-memory data and changelog topic."""

    @property
    def data(self) -> MutableMapping[bytes, Any]: ...

    @property
    def changelog_topic(self) -> _TopicName: ...


class BrandStore:
    """Brand records and customer states: read for the pipeline, written back after each batch.

    Writes go in one order, customers before their brand (see :meth:`save`), each through
    ``sink`` and awaited (see :meth:`_write`).
    """

    def __init__(
        self,
        brands: ChangelogTable,
        customers: ChangelogTable,
        sink: RecordSink,
        parts: ChangelogTable | None = None,
    ) -> None:
        self._brands = brands
        self._customers = customers
        self._parts = parts
        self._sink = sink
        self._index: dict[bytes, tuple[list[bytes], list[bytes]]] | None = None

    def forget_index(self) -> None:
        """Drop the index of recovered entries (on a rebalance: new partitions recover)."""
        self._index = None

    def _parts_of(self, brand: bytes) -> tuple[list[bytes], list[bytes]]:
        """Keys of the brand's customers and parts, from an index of every key."""
        if self._index is None:
            index: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
            separator = CUSTOMER_KEY_SEPARATOR.encode()
            for key in self._customers.data:
                index.setdefault(key.partition(separator)[0], ([], []))[0].append(key)
            if self._parts is not None:
                for key in self._parts.data:
                    index.setdefault(key.partition(separator)[0], ([], []))[1].append(key)
            self._index = index
        return self._index.get(brand, ([], []))

    def stored(self, brand: str) -> BrandRecord | None:
        """The brand's record with its customers and parts attached, or None for a brand never
        seen.

        A record recovered from the changelog arrives without them (they have tables of their
        own); they are attached on first use.
        """
        key = brand.encode()
        record = self._record(key)
        if record is not None and not record.customers_attached:
            customer_keys, part_keys = self._parts_of(key)
            skip = len(key) + 1
            customers = self._customers.data
            if self._parts is not None:
                parts = self._parts.data
                buckets: dict[BucketKey, bytes] = {}
                for part_key in part_keys:
                    value = parts.get(part_key)
                    if value is None:
                        continue
                    kind, _, name = part_key[skip:].decode().partition(SEP)
                    if kind == SEEN_PART:
                        record.seen_ids.load_chunk(int(name), value)
                    elif kind == BUCKET_PART:
                        scope, _, minute = name.rpartition(SEP)
                        buckets[scope, datetime.fromtimestamp(int(minute), UTC)] = value
                record.attach_closed_buckets(buckets)
            record.attach_customers(
                {
                    customer_key[skip:].decode(): _customer(customers[customer_key])
                    for customer_key in customer_keys
                    if customer_key in customers
                }
            )
        return record

    def _record(self, key: bytes) -> BrandRecord | None:
        """The brand record under ``key``, decoded now if it is still the bytes recovery left
        (the tables hold raw bytes on the changelog: recovery reads every record ever written
        for a brand, and only the last one is used)."""
        data = self._brands.data
        value = data.get(key)
        if isinstance(value, bytes):
            value = data[key] = BrandRecord.from_changelog(value)
        record: BrandRecord | None = value
        return record

    def brands_in(self, partition: int) -> list[str]:
        """Brands whose mentions arrive on raw partition ``partition``."""
        return [key.decode() for key, record in self._all() if record.partition == partition]

    def records(self) -> Iterator[tuple[str, BrandRecord]]:
        """Every brand in the table (customers not necessarily attached), for a quick look."""
        for key, record in self._all():
            yield key.decode(), record

    def _all(self) -> list[tuple[bytes, BrandRecord]]:
        found = []
        for key in list(self._brands.data):
            record = self._record(key)
            if record is not None:
                found.append((key, record))
        return found

    async def save(self, result: BatchResult) -> None:
        """Store the customers and brand records ``result`` changed.

        New parts and customers before their brand's record, deleted parts after it: if a crash
        keeps only some of these writes, a customer ahead of its brand record is harmless (the
        engine skips mentions a customer already holds when the batch is replayed), so is a
        seen-id chunk (it names the offsets the replay brings back, see :mod:`streams.dedupe`)
        and a closed minute the record has not closed (left out on recovery, written again when
        the replay closes it); a part deleted before its record was stored would be missing from
        the record the replay starts from. A part whose deletion a crash skipped is dropped on
        recovery (:meth:`BrandRecord.attach_closed_buckets`) or at the next prune.
        """
        parts = self._parts
        if parts is not None:
            for brand, seen in result.seen_changes.items():
                for name, value in seen.written.items():
                    key = _seen_key(brand, name)
                    await self._write(parts, key, value, value, seen.partition)
            for brand, closed in result.bucket_changes.items():
                for bucket, value in closed.written.items():
                    key = _bucket_key(brand, bucket)
                    await self._write(parts, key, value, value, closed.partition)
        for brand, changes in result.customer_changes.items():
            await self._save_customers(brand, changes)
        for brand, record in result.states.items():
            # partition None: the producer's murmur2 partitioner on the brand key, as for raw.
            await self._write(self._brands, brand.encode(), record, record.to_changelog(), None)
        if parts is not None:
            # After the records: until a record is stored, the entries it still names must stay.
            for brand, seen in result.seen_changes.items():
                for name in seen.deleted:
                    await self._write(parts, _seen_key(brand, name), None, None, seen.partition)
            for brand, closed in result.bucket_changes.items():
                for bucket in closed.deleted:
                    key = _bucket_key(brand, bucket)
                    await self._write(parts, key, None, None, closed.partition)

    async def _save_customers(self, brand: str, changes: CustomerChanges) -> None:
        prefix = brand + CUSTOMER_KEY_SEPARATOR
        for customer_id, state in changes.upserts.items():
            key = (prefix + customer_id).encode()
            payload = state.to_json()
            await self._write(self._customers, key, state, payload, changes.partition)
        for customer_id in changes.deletes:
            key = (prefix + customer_id).encode()
            await self._write(self._customers, key, None, None, changes.partition)

    async def _write(
        self,
        table: ChangelogTable,
        key: bytes,
        value: Any,
        payload: bytes | None,
        partition: int | None,
    ) -> None:
        """Set (or, with ``value`` None, delete) a table entry and write it to the changelog.

        The write goes through the app's producer and is awaited, like every other output, so the
        producer flush that precedes each offset commit covers it. Faust's own table writes
        (``send_soon``) sit in a buffer whose flush gives up after 0.1 s without progress, so a
        commit can overtake them and a kill -9 then loses state for committed records.
        """
        data = table.data
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
        delivery = await self._sink.send(
            table.changelog_topic.get_topic_name(), key, payload, partition=partition
        )
        if isinstance(data, LocalStateStore):
            # On disk only once the broker has it (see streams/table_store.py).
            data.written(key, payload, delivery)
