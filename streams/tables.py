"""The worker's state: the ``brands`` and ``customers`` Faust tables and :class:`BrandStore`.

State lives in plain Faust tables (not windowed tables: see DESIGN.md, "Windows and state"):

- ``brands``: one :class:`streams.pipeline.BrandRecord` per brand, keyed by the brand's UTF-8 bytes,
  exactly the raw topic's message key. The table uses the default partitioner on those bytes, the
  same murmur2 partitioner the producers use for ``mentions.raw``, so a brand's state sits in the
  changelog partition with the same number as its raw partition and moves with it on a rebalance.
- ``customers``: one :class:`streams.engine.CustomerState` per ``brand/customer`` key, written
  explicitly into the partition of its brand's raw records (its own key would hash elsewhere).

:class:`BrandStore` reads them for :class:`streams.pipeline.Pipeline` and writes what a batch
changed, in a fixed order, through the app's producer.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

from faust.serializers import codecs

from streams.pipeline import BatchResult, BrandRecord, CustomerChanges
from streams.producer import RecordSink
from streams.state import CustomerState

__all__ = [
    "CUSTOMER_KEY_SEPARATOR",
    "BrandRecordCodec",
    "BrandStore",
    "ChangelogTable",
    "CustomerStateCodec",
    "declare_table",
]

CUSTOMER_KEY_SEPARATOR = "/"
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
        return obj.model_dump_json().encode()

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
    table: Any = app.Table(name, partitions=partitions, use_partitioner=use_partitioner)
    table.key_serializer = "raw"
    table.value_serializer = value_codec
    changelog: Any = table.changelog_topic
    changelog.key_serializer = changelog.schema.key_serializer = "raw"
    changelog.value_serializer = changelog.schema.value_serializer = value_codec
    return table


def declare_tables(app: Any, partitions: int) -> tuple[Any, Any]:
    """The ``brands`` and ``customers`` tables of ``app`` (see the module docstring)."""
    # Keys are the brand's UTF-8 bytes, exactly the raw topic's message key: same partitioner,
    # same partition, and the same type before and after recovery from the changelog.
    brands = declare_table(app, "brands", partitions, BRAND_RECORD_CODEC, use_partitioner=True)
    customers = declare_table(app, "customers", partitions, CUSTOMER_STATE_CODEC)
    return brands, customers


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

    def __init__(self, brands: ChangelogTable, customers: ChangelogTable, sink: RecordSink) -> None:
        self._brands = brands
        self._customers = customers
        self._sink = sink

    def stored(self, brand: str) -> BrandRecord | None:
        """The brand's record with its customers attached, or None for a brand never seen.

        A record recovered from the changelog arrives without its customers (they have their own
        table); they are attached on first use.
        """
        record: BrandRecord | None = self._brands.data.get(brand.encode())
        if record is not None and not record.customers_attached:
            prefix = (brand + CUSTOMER_KEY_SEPARATOR).encode()
            record.attach_customers(
                {
                    key[len(prefix) :].decode(): state
                    for key, state in self._customers.data.items()
                    if key.startswith(prefix)
                }
            )
        return record

    def brands_in(self, partition: int) -> list[str]:
        """Brands whose mentions arrive on raw partition ``partition``."""
        return [
            key.decode()
            for key, record in self._brands.data.items()
            if record.partition == partition
        ]

    def records(self) -> Iterator[tuple[str, BrandRecord]]:
        """Every brand in the table (customers not necessarily attached), for a quick look."""
        for key, record in list(self._brands.data.items()):
            yield key.decode(), record

    async def save(self, result: BatchResult) -> None:
        """Store the customers and brand records ``result`` changed.

        Customers before their brand: if a crash keeps only some of these writes, a customer
        ahead of its brand record is harmless (the engine skips mentions a customer already holds
        when the batch is replayed); the reverse would lose those mentions.
        """
        for brand, changes in result.customer_changes.items():
            await self._save_customers(brand, changes)
        for brand, record in result.states.items():
            # partition None: the producer's murmur2 partitioner on the brand key, as for raw.
            await self._write(self._brands, brand.encode(), record, record.to_changelog(), None)

    async def _save_customers(self, brand: str, changes: CustomerChanges) -> None:
        prefix = brand + CUSTOMER_KEY_SEPARATOR
        for customer_id, state in changes.upserts.items():
            key = (prefix + customer_id).encode()
            payload = state.model_dump_json().encode()
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
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        await self._sink.send(
            table.changelog_topic.get_topic_name(), key, payload, partition=partition
        )
