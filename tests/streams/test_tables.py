"""The brand/customer store: reads for the pipeline, writes in order through the producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.dedupe import encode_chunk, id_digest
from streams.engine import Engine
from streams.pipeline import BatchResult, BrandRecord, BucketChanges, CustomerChanges, SeenChanges
from streams.rules import load_rules
from streams.state import CustomerState
from streams.tables import BrandRecordCodec, BrandStore, CustomerStateCodec
from tests.streams.fakes import FakeSink, FakeTable

RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ENGINE = Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2))


def store() -> tuple[BrandStore, FakeTable, FakeTable, FakeSink]:
    brands, customers, sink = FakeTable("brands-cl"), FakeTable("customers-cl"), FakeSink()
    return BrandStore(brands, customers, sink), brands, customers, sink


def brand_record(brand: str, partition: int) -> BrandRecord:
    return BrandRecord(engine=ENGINE.new_state(brand), partition=partition, applied_offset=7)


def customer(minutes: int = 0) -> CustomerState:
    return CustomerState(last_mention_at=T0 + timedelta(minutes=minutes))


def test_customers_are_written_before_their_brand_and_to_the_brands_raw_partition() -> None:
    brand_store, brands, customers, sink = store()
    gone = customer()
    customers.data[b"acme/c-gone"] = gone
    result = BatchResult(
        states={"acme": brand_record("acme", partition=2)},
        customer_changes={
            "acme": CustomerChanges(partition=2, upserts={"c1": customer(1)}, deletes={"c-gone"})
        },
    )

    asyncio.run(brand_store.save(result))

    assert [(s.topic, s.key, s.partition) for s in sink.sent] == [
        ("customers-cl", b"acme/c1", 2),
        ("customers-cl", b"acme/c-gone", 2),
        ("brands-cl", b"acme", None),  # the producer's partitioner on the key, as for raw
    ]
    assert sink.sent[1].value is None, "a deleted customer is a tombstone"
    assert CustomerState.model_validate_json(sink.sent[0].value or b"") == customer(1)
    assert sink.sent[2].value == result.states["acme"].to_changelog()
    assert set(customers.data) == {b"acme/c1"} and brands.data[b"acme"] is result.states["acme"]


def test_a_record_recovered_from_the_changelog_gets_its_own_customers_back() -> None:
    brand_store, brands, customers, _ = store()
    # What Faust's recovery leaves in the tables: values decoded by the tables' codecs.
    recovered = BrandRecordCodec()._loads(brand_record("acme", 1).to_changelog())
    brands.data[b"acme"] = recovered
    customers.data[b"acme/c1"] = CustomerStateCodec()._loads(customer(1).model_dump_json().encode())
    customers.data[b"acme-air/c2"] = customer(2)
    customers.data[b"globex/c3"] = customer(3)

    record = brand_store.stored("acme")

    assert record is recovered and record.customers_attached
    assert record.engine.customers == {"c1": customer(1)}
    assert brand_store.stored("never-seen") is None


def test_brands_are_found_by_their_raw_partition() -> None:
    brand_store, brands, _, _ = store()
    for name, partition in (("acme", 0), ("globex", 1), ("initech", 0)):
        brands.data[name.encode()] = brand_record(name, partition)
    assert sorted(brand_store.brands_in(0)) == ["acme", "initech"]
    assert dict(brand_store.records()).keys() == {"acme", "globex", "initech"}


def test_parts_are_written_before_their_brand_and_deleted_after_it() -> None:
    brands, customers, parts, sink = (
        FakeTable("brands-cl"),
        FakeTable("customers-cl"),
        FakeTable("parts-cl"),
        FakeSink(),
    )
    brand_store = BrandStore(brands, customers, sink, parts)
    minute = T0 - timedelta(minutes=30)
    result = BatchResult(
        states={"acme": brand_record("acme", partition=3)},
        customer_changes={"acme": CustomerChanges(partition=3, upserts={"c1": customer(1)})},
        seen_changes={"acme": SeenChanges(3, written={40: b"chunk"}, deleted=[7])},
        bucket_changes={
            "acme": BucketChanges(3, written={("", T0): b"{}"}, deleted=[("", minute)])
        },
    )

    asyncio.run(brand_store.save(result))

    assert [(s.topic, s.key, s.partition, s.value is None) for s in sink.sent] == [
        ("parts-cl", b"acme/s/40", 3, False),
        ("parts-cl", f"acme/b//{int(T0.timestamp())}".encode(), 3, False),
        ("customers-cl", b"acme/c1", 3, False),
        ("brands-cl", b"acme", None, False),
        ("parts-cl", b"acme/s/7", 3, True),
        ("parts-cl", f"acme/b//{int(minute.timestamp())}".encode(), 3, True),
    ]


def test_a_recovered_record_gets_its_seen_ids_and_closed_minutes_back_through_one_index() -> None:
    brands, customers, parts, sink = (
        FakeTable("brands-cl"),
        FakeTable("customers-cl"),
        FakeTable("parts-cl"),
        FakeSink(),
    )
    state = ENGINE.new_state("acme")
    state.closed_until = T0
    state.baseline_until = T0 - timedelta(minutes=60)
    record = BrandRecord(engine=state, partition=1)
    brands.data[b"acme"] = BrandRecordCodec()._loads(record.to_changelog())
    brands.data[b"globex"] = BrandRecordCodec()._loads(brand_record("globex", 1).to_changelog())
    closed = T0 - timedelta(minutes=5)
    parts.data[b"acme/s/12"] = encode_chunk(T0.timestamp(), [(id_digest("test:1"), 12)])
    parts.data[f"acme/b//{int(closed.timestamp())}".encode()] = (
        f'{{"minute": "{closed.isoformat()}", "count": 3}}'.encode()
    )
    # Written by a batch whose record never landed: that minute is still open in the record.
    parts.data[f"acme/b//{int(T0.timestamp())}".encode()] = (
        f'{{"minute": "{T0.isoformat()}", "count": 9}}'.encode()
    )
    parts.data[b"globex/s/1"] = encode_chunk(T0.timestamp(), [(id_digest("test:2"), 1)])
    brand_store = BrandStore(brands, customers, sink, parts)

    acme = brand_store.stored("acme")

    assert acme is not None and acme.customers_attached
    assert acme.seen_ids.offset_of(id_digest("test:1")) == 12
    assert acme.seen_ids.offset_of(id_digest("test:2")) is None
    assert [(b.minute, b.count) for b in acme.engine.buckets] == [(closed, 3)]
    globex = brand_store.stored("globex")
    assert globex is not None and globex.seen_ids.offset_of(id_digest("test:2")) == 1


def test_values_recovery_leaves_as_bytes_are_decoded_on_first_use_only() -> None:
    """The tables hold raw bytes on the changelog: recovery leaves every brand record and customer
    state as bytes, and only those used are decoded (a restart reads every record ever written)."""
    brand_store, brands, customers, _ = store()
    brands.data[b"acme"] = brand_record("acme", 1).to_changelog()
    brands.data[b"globex"] = brand_record("globex", 2).to_changelog()
    customers.data[b"acme/c1"] = customer(1).model_dump_json().encode()
    customers.data[b"globex/c2"] = customer(2).model_dump_json().encode()

    acme = brand_store.stored("acme")

    assert acme is not None and acme.engine.customers == {"c1": customer(1)}
    assert brands.data[b"acme"] is acme
    assert isinstance(brands.data[b"globex"], bytes), "not used yet: not decoded"
    assert isinstance(customers.data[b"globex/c2"], bytes)
    assert brand_store.brands_in(2) == ["globex"]
    assert dict(brand_store.records()).keys() == {"acme", "globex"}
