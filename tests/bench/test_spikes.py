"""The spike benchmark's parts: real texts, streams, the old rules' copy, adapter and oracle."""

from __future__ import annotations

import pytest

from bench.spikes import (
    DATA,
    HEADLINE,
    Burst,
    BurstConfig,
    Pool,
    Stream,
    StreamSpec,
    copy_firings,
    engine_firings,
    generate,
    load_pool,
    new_rules,
    old_rules,
    oracle_power,
    production_scorer,
    run_rules,
    shipped_rules,
)
from streams.rules import RuleGroup, RuleSet
from streams.scoring import Scorer


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return production_scorer()


@pytest.fixture(scope="module")
def pool(scorer: Scorer) -> Pool:
    if not (DATA / "test_text.txt").is_file():
        pytest.skip(f"TweetEval sentiment test split not found at {DATA}")
    return load_pool(DATA, scorer)


def test_the_pool_holds_real_texts_with_the_scorer_s_own_labels(pool: Pool) -> None:
    assert len(pool.negative) > 3000 and len(pool.other) > 7000
    # The Scorer misses some human-negative texts and calls some others negative: the streams'
    # observed shares are diluted, which is why the oracle is given both ways.
    assert 0.5 < pool.rate(pool.negative) < 0.9
    assert 0.05 < pool.rate(pool.other) < 0.35
    assert len(pool.deficit) == pool.natural_deficit + pool.appended_deficit > 200
    assert all(pool.scored_deficit[i] for i in pool.deficit)
    assert not any(pool.scored_deficit[i] for i in pool.negative + pool.other)


def test_a_burst_raises_the_observed_share_at_the_same_volume(pool: Pool) -> None:
    burst = Burst(BurstConfig("negative", 3.0, 600), start=1440)
    spec = StreamSpec(600.0, 0.25, 2 * 1440, (burst,), seed=3, warmup_minutes=1440)
    stream = generate(spec, pool)
    assert generate(spec, pool).counts == stream.counts  # seeded: the same stream again

    def share(lo: int, hi: int) -> float:
        return sum(stream.negatives[lo:hi]) / sum(stream.counts[lo:hi])

    calm, during = share(1440 - 600, 1440), share(1440, 2040)
    assert 0.3 < calm < 0.45 and during > calm + 0.2
    # Same volume (the daily cycle aside): the burst changes what is said, not how much.
    hours = sum(stream.counts[1440:2040]) / 10
    assert 300 < hours < 1100


def _minutes(spec: StreamSpec, counts: list[tuple[int, int]]) -> Stream:
    return Stream(spec, [n for n, _ in counts], [k for _, k in counts], [0] * len(counts))


def test_the_old_rules_copy_gives_the_old_shipped_rule_test_times() -> None:
    # The old default.test.yaml case: 10 a minute, 10% negative for 4 hours from 06:00, 80% for
    # 40 minutes from 10:00, then 10% again: fired at 10:17 and resolved at 10:59 in the engine.
    counts = [(10, 1)] * 240 + [(10, 8)] * 40 + [(10, 1)] * 120
    spec = StreamSpec(600.0, 0.1, len(counts), (), seed=0)
    rules = old_rules()
    run_rules(_minutes(spec, counts), dict(rules))
    assert rules["negative"].machine.firings == [240 + 17]
    assert rules["negative"].machine.resolutions == [240 + 59]
    assert rules["deficit"].machine.firings == []


def test_the_adapter_gives_the_engine_s_alerts(pool: Pool, scorer: Scorer) -> None:
    shipped, retention = shipped_rules()
    bursts = (
        Burst(HEADLINE, start=1440 + 200),
        Burst(BurstConfig("deficit", 8.0, 120), start=1440 + 900),
    )
    spec = StreamSpec(200.0, 0.3, 3 * 1440, bursts, seed=5, warmup_minutes=1440)
    stream = generate(spec, pool, keep_texts=True)
    adapter = new_rules(shipped, retention)
    run_rules(stream, dict(adapter))
    ruleset = RuleSet(groups=(RuleGroup(name="shares", rules=tuple(shipped.values())),))
    real = engine_firings(stream, pool, scorer, ruleset)
    assert real == copy_firings(dict(adapter))
    assert {"NegativeSentimentSpike", "EmpathyDeficit"} <= set(real)


def test_the_oracle_bound_grows_with_volume_and_is_the_false_alarm_rate_without_a_burst() -> None:
    powers = [oracle_power(rate, 0.35, 0.5) for rate in (5, 30, 100)]
    assert powers == sorted(powers) and powers[-1] > 0.9
    alpha = 120 / (7 * 1440)
    assert oracle_power(30, 0.35, 0.35) <= alpha
