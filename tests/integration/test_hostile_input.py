"""2,000 hostile raw records and 200 good ones through a real worker on a real broker: every bad
record lands in ``mentions.dlq`` with a reason, every good one in ``mentions.scored``, and the
worker is still running afterwards."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.producer import MentionProducer
from streams import topics
from streams.pipeline import MAX_RAW_BYTES
from streams.records import Mention, MentionKind
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BAD, GOOD = 2_000, 200


def good(n: int) -> Mention:
    at = T0 + timedelta(seconds=n)
    return Mention(
        id=f"hostile:good-{n}",
        source="test",
        kind=MentionKind.POST,
        brand="acme",
        text="the refund never arrived, support ignores me",
        author=f"a{n}",
        created_at=at,
        fetched_at=at,
    )


def bad(rng: random.Random, n: int) -> tuple[bytes, bytes]:
    """(key, value) of the n-th hostile record; eight kinds in turn."""
    doc = json.loads(good(100_000 + n).to_json())
    kind = n % 8
    if kind == 0:
        return b"acme", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) + b"\xff"
    if kind == 1:
        raw = json.dumps(doc).encode()
        return b"acme", raw[: rng.randrange(1, len(raw) - 1)]
    if kind == 2:
        del doc[rng.choice(["id", "source", "kind", "brand", "text", "created_at"])]
    elif kind == 3:
        doc["unexpected"] = [1, {"a": None}]
    elif kind == 4:
        doc[rng.choice(["created_at", "fetched_at"])] = "2026-01-05T09:00:00"  # naive
    elif kind == 5:
        return b"someone-else", json.dumps(doc).encode()
    elif kind == 6:
        return b"acme", b"[" * rng.randrange(1_000, 100_000)
    elif n % 80 == 7:
        return b"acme", b"x" * (MAX_RAW_BYTES + 1)
    else:
        doc["rating"] = rng.choice([0, 6, "five", [5]])
    return b"acme", json.dumps(doc).encode()


def test_hostile_raw_records_are_parked_and_good_ones_scored(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("hostile")
    worker = run.start_worker()
    rng = random.Random(9)
    raw_topic = run.topic(topics.MENTIONS_RAW)
    goods = [good(n) for n in range(GOOD)]
    with MentionProducer(run.bootstrap) as producer:
        for n in range(BAD):
            key, value = bad(rng, n)
            producer.send_raw(raw_topic, key=key, value=value)
            if n % 10 == 0:
                producer.send(goods[n // 10], topic=raw_topic)

    def all_parked() -> bool:
        return len(run.dead_letters()) >= BAD

    wait_for(all_parked, what=f"{BAD} dead letters")
    wait_for(
        lambda: {m.id for m in goods} <= {s.mention.id for s in run.scored()},
        what=f"{GOOD} scored mentions",
    )
    letters = run.dead_letters()
    assert len(letters) == BAD
    assert len({(d.partition, d.offset) for d in letters}) == BAD
    reasons = Counter(d.reason for d in letters)
    assert set(reasons) <= {"oversize", "invalid_json", "invalid_record", "key_mismatch"}
    assert all(d.detail for d in letters)
    assert reasons["key_mismatch"] == BAD // 8
    scored_ids = [s.mention.id for s in run.scored()]
    assert len(scored_ids) == GOOD and set(scored_ids) == {m.id for m in goods}
    assert worker.process.poll() is None  # still running
