"""The brand/customer store: reads for the pipeline, writes in order through the producer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.engine import Engine
from streams.pipeline import BatchResult, BrandRecord, CustomerChanges
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
