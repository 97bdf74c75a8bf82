"""The brand state's changelog layout (issue 15): what a batch writes grows with what it changed.

Seen ids are stored as one chunk per batch (:mod:`streams.dedupe`) and closed minute buckets as
entries of their own; the brand record keeps the rest. These tests restart the pipeline from the
stored bytes (``tests/streams/test_pipeline.py``'s ``Store``), check the effectively-once promises
across a crash between the writes of one batch, and that records in the format before this layout
still load.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from streams.clock import FakeClock
from streams.dedupe import SeenIds, decode_chunk, encode_chunk, id_digest
from streams.engine import Engine
from streams.pipeline import BatchResult, BrandRecord, Pipeline
from streams.records import ERASURE_KEY, ErasureCommand, Mention
from streams.rules import load_rules
from streams.scoring import Scorer
from tests import factories
from tests.streams.test_pipeline import RULES, T0, Store, record


@pytest.fixture
def pipeline() -> Pipeline:
    engine = Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2))
    return Pipeline(Scorer(), engine, clock=FakeClock(T0))


def complaint(n: int, minutes: float) -> Mention:
    return factories.mention(n, minutes=minutes, text="Flight delayed again, nobody cares. Awful.")


def stream(count: int, per_minute: int = 5) -> list[Mention]:
    return [complaint(i, i / per_minute) for i in range(count)]


def feed(
    pipeline: Pipeline, store: Store, mentions: list[Mention], batch: int
) -> list[BatchResult]:
    results = []
    for start in range(0, len(mentions), batch):
        records = [record(start + i, m) for i, m in enumerate(mentions[start : start + batch])]
        results.append(store.process(pipeline, records))
    return results


def test_a_chunk_holds_each_id_with_its_offset_and_garbage_is_refused() -> None:
    entries = [(id_digest("test:1"), 7), (id_digest("test:2"), 2**40)]
    assert decode_chunk(encode_chunk(1.5e9, entries)) == (1.5e9, entries)
    for garbage in (b"", b"\x00" * 11, encode_chunk(0.0, entries)[:-1]):
        with pytest.raises(ValueError):
            decode_chunk(garbage)


def test_each_batch_stores_only_its_new_ids_and_the_minutes_it_closed(
    pipeline: Pipeline,
) -> None:
    store = Store()
    results = feed(pipeline, store, stream(600), batch=50)
    for result in results:
        chunk = result.seen_changes["acme"].written
        assert len(chunk) == 1
        _, entries = decode_chunk(next(iter(chunk.values())))
        assert len(entries) == len(result.scored) == 50
        # Ten minutes a batch: only those (and no minute twice).
        closed = result.bucket_changes.get("acme")
        assert closed is None or len(closed.written) <= 11
    written = [
        k for r in results if "acme" in r.bucket_changes for k in r.bucket_changes["acme"].written
    ]
    assert len(written) == len(set(written))
    # The record itself does not grow with the ids and minutes kept.
    sizes = [len(store.brands["acme"])]
    more = stream(1200)[600:]
    for result in feed(pipeline, store, more, batch=50):
        sizes.append(len(result.states["acme"].to_changelog()))
    assert max(sizes[1:]) < 2 * min(sizes[1:])


def test_a_restarted_worker_keeps_deduping_and_windows_from_the_stored_entries(
    pipeline: Pipeline,
) -> None:
    mentions = stream(300)
    store = Store()
    feed(pipeline, store, mentions, batch=100)
    restarted = store.stored("acme")
    assert restarted is not None
    assert len(restarted.seen_ids) == 300
    # The closed minutes came back from their own entries: the same state as a worker that kept
    # it in memory all along.
    live: dict[str, BrandRecord] = {}
    for start in range(0, 300, 100):
        batch = [record(start + i, m) for i, m in enumerate(mentions[start : start + 100])]
        live.update(pipeline.process(batch, live.get).states)
    assert restarted.engine.model_dump() == live["acme"].engine.model_dump()
    closed_until = restarted.engine.closed_until
    assert closed_until is not None
    assert any(b.minute < closed_until for b in restarted.engine.buckets)
    # A re-send of an early mention at a new offset is a duplicate after the restart too.
    again = store.process(pipeline, [record(300, mentions[3])])
    assert again.duplicates == 1 and not again.scored


def test_a_crash_after_the_chunks_but_before_the_record_counts_the_replay_once(
    pipeline: Pipeline,
) -> None:
    mentions = stream(400)
    whole = Store()
    reference = feed(pipeline, whole, mentions, batch=100)

    crashed = Store()
    feed(pipeline, crashed, mentions[:200], batch=100)
    record_before = crashed.brands["acme"]
    buckets_before, seen_before = dict(crashed.buckets["acme"]), dict(crashed.seen)
    batch = [record(200 + i, m) for i, m in enumerate(mentions[200:300])]
    lost = crashed.process(pipeline, batch)
    # The crash: the new chunk and closed minutes landed (written first), the brand record and
    # the deletions (written after it) did not.
    crashed.brands["acme"] = record_before
    crashed.buckets["acme"] = {**buckets_before, **lost.bucket_changes["acme"].written}
    crashed.seen = {
        **seen_before,
        **{("acme", n): v for n, v in lost.seen_changes["acme"].written.items()},
    }
    assert lost.bucket_changes["acme"].deleted, "the batch moved minutes out of the windows"
    replayed = crashed.process(pipeline, batch)
    assert replayed.duplicates == 0 and replayed.replayed == 0
    crashed.process(pipeline, [record(300 + i, m) for i, m in enumerate(mentions[300:])])
    a, b = whole.stored("acme"), crashed.stored("acme")
    assert a is not None and b is not None
    assert a.engine.model_dump() == b.engine.model_dump()
    assert reference  # the uninterrupted run processed it all


def test_old_records_with_their_ids_inline_load_and_keep_deduping(pipeline: Pipeline) -> None:
    """The format before this layout: ``seen`` (hex digest → [offset, event time]) and every
    minute bucket inside the brand record, nothing beside it."""
    mentions = stream(100)
    store = Store()
    feed(pipeline, store, mentions, batch=100)
    current = store.stored("acme")
    assert current is not None
    old = json.loads(current.model_dump_json(exclude={"engine": {"customers"}}))
    old["seen"] = {
        id_digest(m.id).hex(): [i, m.created_at.timestamp()] for i, m in enumerate(mentions)
    }
    legacy = Store()
    legacy.brands["acme"] = json.dumps(old).encode()

    loaded = BrandRecord.from_changelog(legacy.brands["acme"])
    assert len(loaded.seen_ids) == 100 and not loaded.seen
    duplicate = legacy.process(pipeline, [record(100, mentions[5])])
    assert duplicate.duplicates == 1
    replay = legacy.process(pipeline, [record(5, mentions[5])])
    assert replay.duplicates == 0 and replay.replayed == 1
    # Migrated with the first batch: the old ids sit in a chunk of their own, the closed minutes
    # in entries of their own, and the record holds neither.
    assert [len(decode_chunk(v)[1]) for v in legacy.seen.values()] == [100]
    stored = json.loads(legacy.brands["acme"])
    assert "seen" not in stored
    closed_until = loaded.engine.closed_until
    assert closed_until is not None
    assert legacy.buckets["acme"]
    assert all(b["minute"] >= closed_until.isoformat()[:19] for b in stored["engine"]["buckets"])


def test_chunks_older_than_the_horizon_are_deleted() -> None:
    seen = SeenIds()
    for hour in range(10):
        seen.add(id_digest(f"test:{hour}"), hour, T0.timestamp() + hour * 3600)
        assert seen.take_new() is not None
    gone = seen.prune(timedelta(hours=6).total_seconds())
    assert gone == [0, 1, 2]
    assert seen.offset_of(id_digest("test:2")) is None
    assert seen.offset_of(id_digest("test:3")) == 3


def test_an_erasure_rewrites_the_closed_minutes_without_the_erased_examples(
    pipeline: Pipeline,
) -> None:
    mentions = stream(200)
    store = Store()
    feed(pipeline, store, mentions, batch=100)
    target = mentions[170].id  # minute 34: closed (lateness 2 min), still in the windows
    assert any(target.encode() in value for value in store.buckets["acme"].values()), (
        "the example is kept in a closed minute"
    )
    command = ErasureCommand(request_id="r1", mention_ids=(target,))
    erased = store.process(pipeline, [record(200, value=command.to_json(), key=ERASURE_KEY)])
    assert erased.bucket_changes["acme"].written
    assert not any(target.encode() in value for value in store.buckets["acme"].values())
    restarted = store.stored("acme")
    assert restarted is not None
    assert all(e.id != target for b in restarted.engine.buckets for e in b.examples)
