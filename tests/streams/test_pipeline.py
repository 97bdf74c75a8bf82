"""The worker's pure core: validation, dead letters, dedupe and crash replay, without a broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from streams.clock import FakeClock
from streams.engine import Engine
from streams.pipeline import (
    BatchResult,
    BrandRecord,
    BucketKey,
    OutboxEntry,
    Pipeline,
    RawRecord,
)
from streams.records import ERASURE_KEY, Alert, ErasureCommand, Mention
from streams.rules import load_rules
from streams.scoring import Scorer
from streams.state import CustomerState
from tests import factories

RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


mention = partial(factories.mention, text="Flight delayed again, nobody cares. Terrible.")


def record(
    offset: int, m: Mention | None = None, *, value: bytes | None = None, key: bytes | None = None
) -> RawRecord:
    if m is not None:
        value = m.to_json()
        key = m.brand.encode() if key is None else key
    return RawRecord("mentions.raw", 0, offset, key, value, produced_at=T0.timestamp() - 0.5)


@pytest.fixture
def pipeline() -> Pipeline:
    engine = Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2))
    return Pipeline(Scorer(), engine, clock=FakeClock(T0))


class Store:
    """Stands in for the Faust tables as a restarted worker sees them: everything is read back from
    its changelog form, brand records, customer states and seen-id chunks apart, and joined as the
    app does."""

    def __init__(self) -> None:
        self.brands: dict[str, bytes] = {}
        self.customers: dict[tuple[str, str], bytes] = {}
        self.seen: dict[tuple[str, int], bytes] = {}
        self.buckets: dict[str, dict[BucketKey, bytes]] = {}

    def stored(self, brand: str) -> BrandRecord | None:
        if brand not in self.brands:
            return None
        record = BrandRecord.from_changelog(self.brands[brand])
        assert not record.customers_attached
        for (b, name), value in self.seen.items():
            if b == brand:
                record.seen_ids.load_chunk(name, value)
        record.attach_closed_buckets(self.buckets.get(brand, {}))
        record.attach_customers(
            {
                c: CustomerState.model_validate_json(v)
                for (b, c), v in self.customers.items()
                if b == brand
            }
        )
        return record

    def brands_in(self, partition: int) -> list[str]:
        return [b for b, v in self.brands.items() if json.loads(v)["partition"] == partition]

    def process(self, pipeline: Pipeline, records: list[RawRecord]) -> BatchResult:
        result = pipeline.process(records, self.stored, self.brands_in)
        self.brands.update({b: s.to_changelog() for b, s in result.states.items()})
        for brand, changes in result.customer_changes.items():
            for c, state in changes.upserts.items():
                self.customers[brand, c] = state.model_dump_json().encode()
            for c in changes.deletes:
                del self.customers[brand, c]
        for brand, seen in result.seen_changes.items():
            for name, value in seen.written.items():
                self.seen[brand, name] = value
            for name in seen.deleted:
                del self.seen[brand, name]
        for brand, closed in result.bucket_changes.items():
            kept = self.buckets.setdefault(brand, {})
            kept.update(closed.written)
            for key in closed.deleted:
                del kept[key]
        return result


def test_bad_records_are_dead_lettered_with_their_reason_and_bytes(pipeline: Pipeline) -> None:
    good = mention(1)
    bad = [
        record(0, value=b"{not json"),
        record(1, value=b'{"id": "test:2"}', key=b"acme"),
        record(2, value=b"x" * 1_000_000, key=b"acme"),
        record(3, good, key=b"another-brand"),
        record(4, good),
    ]
    result = Store().process(pipeline, bad)
    reasons = [(d.offset, d.reason) for d in result.dead_letters]
    assert reasons == [
        (0, "invalid_json"),
        (1, "invalid_record"),
        (2, "oversize"),
        (3, "key_mismatch"),
    ]
    assert result.dead_letters[0].raw_bytes() == b"{not json"
    assert "source: Field required" in result.dead_letters[1].detail
    assert [s.mention.id for s in result.scored] == ["test:1"]


def test_pii_is_redacted_before_the_mention_is_published(pipeline: Pipeline) -> None:
    m = mention(
        1, text="Still waiting for a refund, write me at jane.doe@example.com or +44 20 7946 0958"
    )
    result = Store().process(pipeline, [record(0, m)])
    text = result.scored[0].mention.text
    assert "jane.doe@example.com" not in text and "7946" not in text
    assert result.scored[0].pii_redacted == 2


def test_a_duplicate_id_is_scored_once_even_across_batches(pipeline: Pipeline) -> None:
    store = Store()
    first = store.process(pipeline, [record(0, mention(1)), record(1, mention(1))])
    second = store.process(pipeline, [record(2, mention(1)), record(3, mention(2))])
    assert [s.mention.id for s in first.scored + second.scored] == ["test:1", "test:2"]
    assert first.duplicates + second.duplicates == 2


def test_a_replayed_batch_is_republished_but_not_counted_twice(pipeline: Pipeline) -> None:
    """After a crash Faust replays records since the last commit; the state already holds them."""
    store = Store()
    records = [record(i, mention(i, minutes=i)) for i in range(10)]
    store.process(pipeline, records)
    state_before = store.brands["acme"]
    replay = store.process(pipeline, records[5:])
    assert [s.mention.id for s in replay.scored] == [f"test:{i}" for i in range(5, 10)]
    assert replay.replayed == 5 and replay.duplicates == 0
    assert store.brands["acme"] == state_before


def test_customer_state_survives_apart_from_the_brand_record(pipeline: Pipeline) -> None:
    store = Store()
    complaints = [
        mention(
            i, minutes=i, text="Flight cancelled, on hold for hours, nobody cares. I'm done."
        ).model_copy(update={"customer_id": "cust-1"})
        for i in range(4)
    ]
    for i, m in enumerate(complaints):
        store.process(pipeline, [record(i, m)])
    assert "customers" not in json.loads(store.brands["acme"])["engine"]
    restored = store.stored("acme")
    assert restored is not None
    assert [m.id for m in restored.engine.customers["cust-1"].mentions] == [
        m.id for m in complaints
    ]


def test_customers_silent_past_the_horizon_are_deleted_from_the_store(pipeline: Pipeline) -> None:
    store = Store()

    def of(n: int, customer: str, days: float) -> RawRecord:
        m = mention(n, minutes=days * 24 * 60, text="Thanks, all sorted.")
        return record(n, m.model_copy(update={"customer_id": customer}))

    store.process(pipeline, [of(0, "early", 0), of(1, "kept", 6)])
    assert store.customers.keys() == {("acme", "early"), ("acme", "kept")}
    # A week later: "early" is forgotten; "passing" comes and goes inside this one batch (never
    # stored, so nothing to delete); "kept" spoke within the horizon.
    result = store.process(pipeline, [of(2, "passing", 7.5), of(3, "kept", 12), of(4, "new", 15)])
    assert result.customer_changes["acme"].deletes == {"early"}
    assert store.customers.keys() == {("acme", "kept"), ("acme", "new")}


def test_alerts_triggered_by_replayed_records_are_sent_again(pipeline: Pipeline) -> None:
    store = Store()
    fake = Alert.model_validate(
        {
            "labels": {"alertname": "X", "brand": "acme"},
            "state": "firing",
            "value": 1.0,
            "starts_at": T0,
            "fingerprint": "f",
        }
    )
    store.process(pipeline, [record(0, mention(0))])
    state = store.stored("acme")
    assert state is not None
    state.outbox.append(OutboxEntry(offset=0, alert=fake))
    store.brands["acme"] = state.to_changelog()
    replay = store.process(pipeline, [record(0, mention(0))])
    assert replay.alerts == [fake]


def erasure(offset: int, partition: int = 0, **fields: object) -> RawRecord:
    command = ErasureCommand.model_validate({"request_id": "r1", **fields})
    return RawRecord("mentions.raw", partition, offset, ERASURE_KEY, command.to_json(), None)


def everything_stored(store: Store) -> str:
    return " ".join(v.decode() for v in [*store.brands.values(), *store.customers.values()])


def person_and_bystander(store: Store, pipeline: Pipeline) -> None:
    """cust-1 (author p) complains four times; a bystander once; an alert quotes both."""
    person = [
        mention(
            i,
            minutes=i,
            text=f"Bag number {i} lost, awful service, nobody cares. Cancelling my account.",
        ).model_copy(update={"customer_id": "cust-1", "author": "p"})
        for i in range(4)
    ]
    bystander = mention(9, minutes=2, text="Terrible service from the bystander, awful.")
    store.process(pipeline, [record(i, m) for i, m in enumerate([*person, bystander])])
    state = store.stored("acme")
    assert state is not None
    alert = Alert.model_validate(
        {
            "labels": {"alertname": "X", "brand": "acme"},
            "state": "firing",
            "value": 1.0,
            "starts_at": T0,
            "fingerprint": "f",
            "examples": [
                {"id": "test:1", "text": "Bag number 1 lost"},
                {"id": "test:9", "text": "x"},
            ],
        }
    )
    state.outbox.append(OutboxEntry(offset=4, alert=alert))
    store.brands["acme"] = state.to_changelog()
    assert "Bag number 1" in everything_stored(store) and "bystander" in everything_stored(store)


def test_an_erasure_removes_the_persons_mentions_and_customer_from_the_worker_state(
    pipeline: Pipeline,
) -> None:
    store = Store()
    person_and_bystander(store, pipeline)
    before = store.stored("acme")
    assert before is not None and before.engine.customers["cust-1"].firing, "cust-1 is at risk"
    ids = [f"test:{i}" for i in range(4)]
    result = store.process(pipeline, [erasure(5, mention_ids=ids, customer_id="cust-1")])
    (resolved,) = result.alerts
    assert resolved.labels["customer"] == "cust-1" and resolved.state == "resolved"
    assert resolved.examples == (), "no alert stays firing for a customer who no longer exists"
    assert result.erasures == 1 and result.erased_customers == 1 and result.erased_examples >= 4
    kept = everything_stored(store)
    assert not any(f'"{i}"' in kept for i in ids) and "Bag number" not in kept
    assert "bystander" in kept, "other people's examples stay"
    assert ("acme", "cust-1") not in store.customers
    state = store.stored("acme")
    assert state is not None
    assert [e.id for e in state.outbox[0].alert.examples] == ["test:9"]
    assert sum(b.count for b in state.engine.buckets) == 5, "counts hold no identity and stay"


def test_a_replayed_erasure_changes_nothing_more(pipeline: Pipeline) -> None:
    store = Store()
    person_and_bystander(store, pipeline)
    command = erasure(5, mention_ids=["test:1"])
    store.process(pipeline, [command])
    after = dict(store.brands), dict(store.customers)
    again = store.process(pipeline, [command])
    assert (dict(store.brands), dict(store.customers)) == after
    assert again.erased_examples == 0 and again.erased_customers == 0


def test_a_replayed_erasure_sends_its_resolved_alerts_again(pipeline: Pipeline) -> None:
    """A crash after the state was stored but before the alerts were flushed loses nothing."""
    store = Store()
    person_and_bystander(store, pipeline)
    command = erasure(5, customer_id="cust-1")
    first = store.process(pipeline, [command])
    again = store.process(pipeline, [command])
    assert [a.state for a in first.alerts] == ["resolved"]
    assert again.alerts == first.alerts and again.erased_customers == 0


def test_an_erasure_reaches_only_the_brands_of_its_partition_and_brand(pipeline: Pipeline) -> None:
    store = Store()
    person_and_bystander(store, pipeline)
    before = everything_stored(store)
    other_partition = store.process(pipeline, [erasure(5, partition=3, mention_ids=["test:1"])])
    other_brand = store.process(pipeline, [erasure(6, mention_ids=["test:1"], brand="zeta")])
    assert everything_stored(store) == before
    assert other_partition.erasures == other_brand.erasures == 1


def test_a_malformed_erasure_is_dead_lettered(pipeline: Pipeline) -> None:
    bad = RawRecord("mentions.raw", 0, 0, ERASURE_KEY, b'{"mention_ids": 3}', None)
    result = Store().process(pipeline, [bad])
    assert [d.reason for d in result.dead_letters] == ["invalid_record"]
    assert result.erasures == 0
