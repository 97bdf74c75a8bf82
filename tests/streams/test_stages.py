"""The two halves of the pure core on their own: the stateless scoring stage, and the brand stage
fed through ``mentions.scored`` (scored records re-keyed by brand, at offsets of their own)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.simulate import generate
from streams.clock import FakeClock
from streams.engine import Engine
from streams.pipeline import (
    BatchResult,
    BrandRecord,
    BrandStage,
    Pipeline,
    RawRecord,
    ScoredRecord,
    ScoringStage,
    StateTopicMismatch,
    decode_scored,
)
from streams.records import ERASURE_KEY, ErasureCommand, Mention, ScoredMention
from streams.rules import load_rules
from streams.scoring import Scorer
from tests import factories

RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"
NOW = datetime(2026, 1, 6, tzinfo=UTC)
PARTITIONS = 4


def no_state(brand: str) -> BrandRecord | None:
    return None


def engine() -> Engine:
    return Engine(load_rules(RULES), allowed_lateness=timedelta(seconds=120))


def raw(offset: int, m: Mention, partition: int = 0, *, by_brand: bool = False) -> RawRecord:
    """``m`` on ``mentions.raw``, keyed by its id (or by its brand, as the fused worker needs)."""
    key = m.brand if by_brand else m.id
    return RawRecord("mentions.raw", partition, offset, key.encode(), m.to_json())


class ScoredTopic:
    """``mentions.scored`` in memory: what the scoring stage publishes, keyed by brand, each
    partition with its own dense offsets."""

    def __init__(self) -> None:
        self.partitions: list[list[RawRecord]] = [[] for _ in range(PARTITIONS)]
        self._brands: dict[str, int] = {}

    def partition_of(self, brand: str) -> int:
        return self._brands.setdefault(brand, len(self._brands) % PARTITIONS)

    def publish(self, records: list[ScoredRecord]) -> None:
        for record in records:
            value = record.value
            targets = (
                range(PARTITIONS)
                if isinstance(value, ErasureCommand)
                else [self.partition_of(value.mention.brand)]
            )
            key = ERASURE_KEY if isinstance(value, ErasureCommand) else b""
            for p in targets:
                log = self.partitions[p]
                log.append(RawRecord("mentions.scored", p, len(log), key, value.to_json()))


def run_brand_stage(stage: BrandStage, topic: ScoredTopic, batch: int) -> list[BatchResult]:
    """Consume ``topic`` partition by partition, ``batch`` records at a time, keeping states."""
    states: dict[str, BrandRecord] = {}
    results = []
    for log in topic.partitions:
        for start in range(0, len(log), batch):
            items, letters = decode_scored(log[start : start + batch])
            assert letters == []
            result = stage.process(items, states.get)
            states.update(result.states)
            results.append(result)
    return results


def transitions(results: list[BatchResult]) -> list[tuple[str, str, str]]:
    return sorted(
        (a.fingerprint, a.state.value, a.starts_at.isoformat()) for r in results for a in r.alerts
    )


def test_the_scoring_stage_keeps_nothing_between_batches() -> None:
    stage = ScoringStage(Scorer(), clock=FakeClock(NOW))
    batch = [raw(i, factories.mention(i)) for i in range(5)] + [raw(5, factories.mention(1))]
    first, second = stage.process(batch), stage.process(batch)
    assert [r.value for r in first.scored] == [r.value for r in second.scored]
    # A re-sent id is scored again: only the brand stage knows what was counted.
    assert [r.value.mention.id for r in first.scored if isinstance(r.value, ScoredMention)] == [
        "test:0",
        "test:1",
        "test:2",
        "test:3",
        "test:4",
        "test:1",
    ]


def test_the_scoring_stage_forwards_an_erasure_command_at_its_place() -> None:
    stage = ScoringStage(Scorer(), clock=FakeClock(NOW))
    command = ErasureCommand(request_id="r1", customer_id="cust-1")
    batch = [
        raw(0, factories.mention(1)),
        RawRecord("mentions.raw", 0, 1, ERASURE_KEY, command.to_json()),
        raw(2, factories.mention(2)),
    ]
    result = stage.process(batch)
    assert [(r.offset, type(r.value).__name__) for r in result.scored] == [
        (0, "ScoredMention"),
        (1, "ErasureCommand"),
        (2, "ScoredMention"),
    ]
    assert result.erasure_commands == [command]
    assert [s.mention.id for s in result.published().scored] == ["test:1", "test:2"]


def test_a_scored_record_that_is_not_one_is_dead_lettered_by_the_brand_stage() -> None:
    good = ScoringStage(Scorer(), clock=FakeClock(NOW)).process([raw(0, factories.mention(1))])
    value = good.scored[0].value
    records = [
        RawRecord("mentions.scored", 2, 7, b"acme", b"{not json"),
        RawRecord("mentions.scored", 2, 8, b"acme", value.to_json()),
    ]
    items, letters = decode_scored(records)
    assert [(d.topic, d.offset, d.reason) for d in letters] == [
        ("mentions.scored", 7, "invalid_json")
    ]
    assert [(i.partition, i.offset, i.value) for i in items] == [(2, 8, value)]


def test_through_mentions_scored_with_replayed_copies_the_alerts_are_those_of_one_step() -> None:
    """The crisis hour, raw keyed by id over 4 partitions, scored, published by brand; a
    scoring-stage crash re-publishes a stretch of scored copies at new offsets. The brand stage
    drops the copies without counting them, and raises the alerts the one-step core raises."""
    mentions = [
        m for m in generate("crisis", seed=7, rate_scale=0.3) if 7 <= m.created_at.hour < 12
    ]
    assert len(mentions) > 1000
    one_step = Pipeline(Scorer(), engine(), clock=FakeClock(NOW))
    states: dict[str, BrandRecord] = {}
    expected: list[BatchResult] = []
    for start in range(0, len(mentions), 200):
        batch = [
            raw(start + i, m, by_brand=True) for i, m in enumerate(mentions[start : start + 200])
        ]
        result = one_step.process(batch, states.get)
        states.update(result.states)
        expected.append(result)

    scoring = ScoringStage(Scorer(), clock=FakeClock(NOW))
    topic = ScoredTopic()
    batches = [mentions[i : i + 200] for i in range(0, len(mentions), 200)]
    published = 0
    for n, chunk in enumerate(batches):
        scored = scoring.process([raw(published + i, m) for i, m in enumerate(chunk)]).scored
        topic.publish(scored)
        published += len(chunk)
        if n == 1:  # crash before the commit: batches 0 and 1 are scored and published again
            for again in batches[:2]:
                topic.publish(scoring.process([raw(0, m) for m in again]).scored)
    results = run_brand_stage(BrandStage(engine(), clock=FakeClock(NOW)), topic, 150)
    assert sum(r.duplicates for r in results) == len(batches[0]) + len(batches[1])
    assert transitions(results) == transitions(expected)
    assert len(transitions(expected)) > 0


def test_an_erasure_on_every_scored_partition_reaches_each_brand_after_its_mentions() -> None:
    scoring = ScoringStage(Scorer(), clock=FakeClock(NOW))
    topic = ScoredTopic()
    mentions = [
        factories.mention(i, minutes=i, brand=brand, customer="cust-1")
        for i, brand in enumerate(["acme", "globex", "initech", "acme"])
    ]
    topic.publish(scoring.process([raw(i, m) for i, m in enumerate(mentions)]).scored)
    command = ErasureCommand(request_id="r1", customer_id="cust-1")
    topic.publish([ScoredRecord(0, 99, command)])
    stage = BrandStage(engine(), clock=FakeClock(NOW))
    states: dict[str, BrandRecord] = {}
    erased = 0
    for log in topic.partitions:
        items, _ = decode_scored(log)
        # Each partition holds one copy of the command, after that partition's mentions.
        assert isinstance(items[-1].value, ErasureCommand)
        result = stage.process(
            items, states.get, lambda p: [b for b, s in states.items() if s.partition == p]
        )
        states.update(result.states)
        erased += result.erased_customers
    assert erased == 3
    assert all("cust-1" not in s.engine.customers for s in states.values())


def test_a_state_written_by_the_fused_worker_is_refused_by_the_split_brand_stage() -> None:
    """Switching a deployment from fused (raw offsets) to split (scored offsets) over the same
    tables would misread applied offsets and seen ids: the brand stage stops, saying why."""
    fused = Pipeline(Scorer(), engine(), clock=FakeClock(NOW))
    mentions = [factories.mention(i, minutes=i) for i in range(3)]
    states: dict[str, BrandRecord] = {}
    fused_result = fused.process(
        [raw(i, m, by_brand=True) for i, m in enumerate(mentions)], no_state
    )
    states.update(fused_result.states)
    assert states["acme"].offsets_of == "mentions.raw"

    # What the changelog holds is what a restarted worker reads.
    stored = {b: BrandRecord.from_changelog(s.to_changelog()) for b, s in states.items()}
    scoring = ScoringStage(Scorer(), clock=FakeClock(NOW))
    topic = ScoredTopic()
    topic.publish(scoring.process([raw(9, factories.mention(9, minutes=9))]).scored)
    split = BrandStage(engine(), clock=FakeClock(NOW))
    items, _ = decode_scored(topic.partitions[topic.partition_of("acme")])
    with pytest.raises(StateTopicMismatch) as refused:
        split.process(items, stored.get)
    assert refused.value.brand == "acme"
    assert "mentions.raw" in str(refused.value) and "mentions.scored" in str(refused.value)
    assert "LISTENWELL_APP_ID" in str(refused.value)
    with pytest.raises(StateTopicMismatch):
        split.advance(["acme"], NOW, stored.get)


def test_a_state_written_by_the_split_brand_stage_is_refused_by_the_fused_worker() -> None:
    scoring = ScoringStage(Scorer(), clock=FakeClock(NOW))
    topic = ScoredTopic()
    topic.publish(scoring.process([raw(0, factories.mention(1))]).scored)
    split = BrandStage(engine(), clock=FakeClock(NOW))
    items, _ = decode_scored(topic.partitions[topic.partition_of("acme")])
    written = split.process(items, no_state).states
    assert written["acme"].offsets_of == "mentions.scored"
    stored = {b: BrandRecord.from_changelog(s.to_changelog()) for b, s in written.items()}

    fused = Pipeline(Scorer(), engine(), clock=FakeClock(NOW))
    with pytest.raises(StateTopicMismatch, match=r"counts offsets of mentions\.scored"):
        fused.process([raw(5, factories.mention(2), by_brand=True)], stored.get)


def test_a_state_stored_before_the_topic_was_recorded_counts_raw_offsets() -> None:
    """States written by the single-stage worker (no ``offsets_of``) are raw offsets: the fused
    worker takes them over, the split brand stage refuses them."""
    fused = Pipeline(Scorer(), engine(), clock=FakeClock(NOW))
    states = fused.process([raw(0, factories.mention(1), by_brand=True)], no_state).states
    payload = json.loads(states["acme"].to_changelog())
    del payload["offsets_of"]
    old = BrandRecord.from_changelog(json.dumps(payload).encode())
    assert old.offsets_of == "mentions.raw"

    again = fused.process(
        [raw(0, factories.mention(1), by_brand=True), raw(1, factories.mention(2), by_brand=True)],
        {"acme": old}.get,
    )
    assert (again.replayed, again.duplicates) == (1, 0)
    assert again.states["acme"].applied_offset == 1


def test_the_fused_worker_dead_letters_a_raw_record_keyed_by_id() -> None:
    """Its tables are co-partitioned with mentions.raw by brand: a record keyed by mention id may
    be on another brand's partition, so it is parked (as on the single-stage worker)."""
    fused = Pipeline(Scorer(), engine(), clock=FakeClock(NOW))
    m = factories.mention(1)
    result = fused.process([raw(0, m), raw(1, factories.mention(2), by_brand=True)], no_state)
    assert [(d.offset, d.reason) for d in result.dead_letters] == [(0, "key_mismatch")]
    assert "not the mention's brand 'acme'" in result.dead_letters[0].detail
    assert [s.mention.id for s in result.scored] == ["test:2"]
