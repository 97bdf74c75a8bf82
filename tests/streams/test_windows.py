"""Minute buckets, sliding-window sums, the exponentially weighted baseline and customer risk."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from streams.customer_risk import CustomerMention, risk_score
from streams.records import (
    SentimentLabel,
)
from streams.windows import Baseline, MinuteBucket, floor_minute, window_stats
from tests import factories

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
WEEK = timedelta(days=7)


scored = partial(factories.scored, at=T0, author="a", text="some text")


def test_floor_minute() -> None:
    assert floor_minute(T0 + timedelta(seconds=59, microseconds=9)) == T0


def test_bucket_counts_signals_and_keeps_the_three_most_negative_examples() -> None:
    bucket = MinuteBucket(minute=T0)
    bucket.add(scored("1", -0.2, text="meh"))
    bucket.add(scored("2", -0.9, text="terrible", deficit=("nobody cares",)))
    bucket.add(scored("3", 0.6, positive=("listened",)))
    bucket.add(scored("4", -0.5, churn=("switching to",)))
    bucket.add(scored("5", -0.7, text="awful " * 100))
    assert (bucket.count, bucket.negative) == (5, 4)
    assert (bucket.deficit, bucket.churn, bucket.empathy_positive) == (1, 1, 1)
    assert bucket.compound_sum == pytest.approx(-1.7)
    assert [e.id for e in bucket.examples] == ["test:2", "test:5", "test:4"]
    assert all(len(e.text) <= 280 for e in bucket.examples)


def test_a_buckets_examples_are_the_most_negative_whatever_the_order_ties_included() -> None:
    """Ties on the compound are broken by id, and the same id twice keeps both copies: each
    mention's arrival leaves the examples a sort of everything seen would give."""
    rng = random.Random(5)
    for _ in range(300):
        bucket = MinuteBucket(minute=T0)
        seen: list[tuple[float, str]] = []
        for _ in range(rng.randint(1, 12)):
            compound = rng.choice([-0.9, -0.5, -0.5, -0.3, -0.3, -0.1])
            n = str(rng.randint(1, 6))
            bucket.add(scored(n, compound))
            seen.append((compound, f"test:{n}"))
        assert [(e.compound, e.id) for e in bucket.examples] == sorted(seen)[:3]


def test_window_covers_exactly_the_minutes_before_its_end() -> None:
    buckets = []
    for m in range(10):
        bucket = MinuteBucket(minute=T0 + m * MIN)
        bucket.add(scored(f"{m}", -0.5 if m >= 7 else 0.5))
        buckets.append(bucket)
    stats = window_stats(buckets, end=T0 + 10 * MIN, minutes=5)
    assert stats.count == 5  # minutes 5..9
    assert stats.negative_share == pytest.approx(3 / 5)
    assert stats.mean_compound == pytest.approx((-1.5 + 1.0) / 5)
    assert {e.id for e in stats.examples} == {"test:7", "test:8", "test:9"}
    empty = window_stats(buckets, end=T0, minutes=5)
    assert (empty.count, empty.negative_share, empty.examples) == (0, 0.0, ())


def test_baseline_follows_a_constant_share_and_forgets_the_old_one() -> None:
    baseline = Baseline()
    assert baseline.negative_share is None
    tau = timedelta(hours=1)
    old = MinuteBucket(minute=T0, count=10, negative=5)
    new = MinuteBucket(minute=T0, count=10, negative=1)
    baseline.feed(old, tau, times=1)
    for _ in range(600):
        baseline.feed(old, tau)
    assert baseline.negative_share == pytest.approx(0.5)
    for _ in range(60):  # one time constant later, about 63% of the way to the new share
        baseline.feed(new, tau)
    assert baseline.negative_share == pytest.approx(0.5 - 0.4 * (1 - 2.718281828**-1), abs=0.01)
    for _ in range(600):
        baseline.feed(new, tau)
    assert baseline.negative_share == pytest.approx(0.1, abs=0.001)
    assert (baseline.minutes, baseline.volume) == (1261, 12610)


def test_empty_minutes_age_the_baseline_without_changing_its_share() -> None:
    baseline = Baseline()
    tau = timedelta(hours=6)
    baseline.feed(MinuteBucket(minute=T0, count=4, negative=1), tau)
    baseline.feed(None, tau, times=600)
    assert baseline.negative_share == pytest.approx(0.25)
    assert baseline.count == pytest.approx(4 * 2.718281828 ** (-600 / 360))
    assert baseline.minutes == 601


def cm(
    hours_ago: float,
    *,
    compound: float = -0.6,
    churn: str | None = None,
    deficit: str | None = None,
    rating: int | None = None,
    nps: int | None = None,
    n: int = 0,
) -> CustomerMention:
    return CustomerMention(
        at=T0 - timedelta(hours=hours_ago),
        id=f"test:{hours_ago}:{n}",
        text="x",
        label=SentimentLabel.NEGATIVE if compound <= -0.05 else SentimentLabel.POSITIVE,
        compound=compound,
        churn=churn,
        deficit=deficit,
        rating=rating,
        nps=nps,
    )


def test_risk_counts_the_signals_and_says_why() -> None:
    risk = risk_score(
        [
            cm(30, deficit="on hold for hours"),
            cm(20, rating=1),
            cm(10, nps=2),
            cm(1, churn="cancel my subscription"),
        ],
        at=T0,
        lookback=WEEK,
    )
    assert risk.score == 100
    assert risk.mentions == 4
    assert risk.reasons == (
        "churn intent: 'cancel my subscription'",
        "4 negative mentions in 7d",
        "rating 1/5",
        "NPS 2 (detractor)",
        "empathy deficit: 'on hold for hours'",
    )


def test_churn_intent_weighs_more_than_a_complaint() -> None:
    complaint = risk_score([cm(0)], at=T0, lookback=WEEK).score
    churn = risk_score([cm(0, churn="never again")], at=T0, lookback=WEEK).score
    assert 0 < complaint < churn
    assert churn - complaint >= 30


def test_rating_and_nps_do_not_double_count_the_same_dissatisfaction() -> None:
    text_only = risk_score([cm(0, compound=-0.8)], at=T0, lookback=WEEK).score
    with_rating = risk_score([cm(0, compound=-0.8, rating=1, nps=0)], at=T0, lookback=WEEK).score
    assert with_rating <= 25
    assert with_rating - text_only <= 10


def test_risk_decays_with_age_and_forgets_outside_the_lookback() -> None:
    mentions = [cm(0, churn="switching to", n=1), cm(0, n=2)]
    fresh = risk_score(mentions, at=T0, lookback=WEEK).score
    half = risk_score(mentions, at=T0 + WEEK / 2, lookback=WEEK).score
    assert half == pytest.approx(fresh / 2, abs=1)
    gone = risk_score(mentions, at=T0 + WEEK + MIN, lookback=WEEK)
    assert (gone.score, gone.reasons, gone.mentions) == (0, (), 0)


def test_positive_customer_scores_zero() -> None:
    risk = risk_score(
        [cm(1, compound=0.8), cm(2, compound=0.5, rating=5, nps=10)], at=T0, lookback=WEEK
    )
    assert (risk.score, risk.reasons) == (0, ())
