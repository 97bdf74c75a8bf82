"""The seeded scenario simulator: deterministic, realistic, shaped like the scenario it names."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connectors.base import Source
from connectors.simulate import DEFAULT_START, SCENARIOS, SimulateSource, generate
from streams.records import Mention, MentionKind

CRISIS_BRAND = "northwind-air"
CHURN = ("cancel my subscription", "switching to", "never again", "closing my account")
KINDS_BY_SOURCE = {
    "reddit": {MentionKind.POST, MentionKind.COMMENT, MentionKind.REPLY},
    "mastodon": {MentionKind.POST, MentionKind.REPLY},
    "bluesky": {MentionKind.POST, MentionKind.REPLY},
    "hackernews": {MentionKind.COMMENT},
    "appstore": {MentionKind.REVIEW},
    "survey": {MentionKind.SURVEY},
}


@pytest.fixture(scope="module")
def crisis() -> list[Mention]:
    return generate("crisis", seed=7)


@pytest.fixture(scope="module")
def calm() -> list[Mention]:
    return generate("calm", seed=7)


def _hour(m: Mention) -> float:
    return (m.created_at - DEFAULT_START).total_seconds() / 3600.0


def _negative_share(mentions: list[Mention], brand: str, lo: float, hi: float) -> float:
    analyzer = SentimentIntensityAnalyzer()
    window = [m for m in mentions if m.brand == brand and lo <= _hour(m) < hi]
    assert len(window) >= 50, f"too few mentions of {brand} in {lo}-{hi}h to judge"
    negative: int = sum(analyzer.polarity_scores(m.text)["compound"] <= -0.05 for m in window)
    return negative / len(window)


def test_same_seed_gives_identical_output(crisis: list[Mention]) -> None:
    again = generate("crisis", seed=7)
    assert [m.to_json() for m in again] == [m.to_json() for m in crisis]


def test_different_seeds_give_different_output(crisis: list[Mention]) -> None:
    other = generate("crisis", seed=8)
    assert [m.text for m in other[:200]] != [m.text for m in crisis[:200]]
    assert len(other) != len(crisis) or other != crisis


def test_every_mention_is_valid_unique_sorted_and_stamped(crisis: list[Mention]) -> None:
    assert 10_000 <= len(crisis) <= 20_000
    ids = [m.id for m in crisis]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"simulate:[a-z-]+:\d+", i) for i in ids)
    keys = [(m.created_at, m.id) for m in crisis]
    assert keys == sorted(keys)
    end = DEFAULT_START + timedelta(days=1)
    for m in crisis:
        assert Mention.from_json(m.to_json()) == m
        assert m.id.split(":")[1] == m.brand
        assert m.fetched_at == m.created_at
        assert DEFAULT_START <= m.created_at < end
        assert m.kind in KINDS_BY_SOURCE[m.source]
        assert (m.rating is not None) == (m.kind is MentionKind.REVIEW)
        assert (m.nps is not None) == (m.kind is MentionKind.SURVEY)
        assert m.segment.product and m.segment.region and m.segment.channel


def test_calm_has_several_brands_and_sources_with_mixed_sentiment(calm: list[Mention]) -> None:
    brands = Counter(m.brand for m in calm)
    assert set(brands) >= {CRISIS_BRAND, "globex-bank", "initech-mobile", "umbrella-foods"}
    assert set(Counter(m.source for m in calm)) == set(KINDS_BY_SOURCE)
    ratings = Counter(m.rating for m in calm if m.rating is not None)
    assert set(ratings) == {1, 2, 3, 4, 5}
    assert {n for m in calm if (n := m.nps) is not None} >= {0, 5, 8, 10}
    for brand in brands:
        share = _negative_share(calm, brand, 0.0, 24.0)
        assert 0.05 < share < 0.35, f"{brand}: {share:.2f} negative on a calm day"


def test_texts_are_varied_and_carry_the_phrases_scoring_looks_for(calm: list[Mention]) -> None:
    texts = [m.text.lower() for m in calm]
    assert len(set(texts)) > len(texts) // 3
    for phrase in (
        "the agent really listened",
        "caring and understanding",
        "nobody cares",
        "on hold for hours",
        "talking to a robot",
        "still waiting",
        *CHURN,
    ):
        assert any(phrase in t for t in texts), phrase
    assert any(re.search(r"[\w.]+@example\.com", t) for t in texts)
    assert any(re.search(r"\+1 415 555 \d{4}", t) for t in texts)
    assert any("4111 1111 1111 1111" in t for t in texts)
    assert sum("@example.com" in t or "555" in t for t in texts) < len(texts) * 0.1


def test_volume_follows_the_time_of_day(calm: list[Mention]) -> None:
    night = sum(1 for m in calm if 2.0 <= _hour(m) < 5.0)
    afternoon = sum(1 for m in calm if 13.0 <= _hour(m) < 16.0)
    assert afternoon > 3 * night
    per_minute = len(calm) / len({m.brand for m in calm}) / (24 * 60)
    assert 1.0 < per_minute < 5.0


def test_crisis_brand_collapses_and_recovers(crisis: list[Mention]) -> None:
    before = _negative_share(crisis, CRISIS_BRAND, 0.0, 8.0)
    peak = _negative_share(crisis, CRISIS_BRAND, 10.0, 13.0)
    after = _negative_share(crisis, CRISIS_BRAND, 17.0, 24.0)
    assert before < 0.3
    assert peak > 0.5
    assert peak > before + 0.3
    assert after < 0.3


def test_crisis_volume_surges_only_for_the_crisis_brand(
    crisis: list[Mention], calm: list[Mention]
) -> None:
    def count(mentions: list[Mention], brand: str) -> int:
        return sum(1 for m in mentions if m.brand == brand and 11.0 <= _hour(m) < 13.0)

    assert 2.5 < count(crisis, CRISIS_BRAND) / count(calm, CRISIS_BRAND) < 5.0
    for brand in ("globex-bank", "initech-mobile", "umbrella-foods"):
        assert 0.7 < count(crisis, brand) / count(calm, brand) < 1.4


def test_other_brands_stay_flat_during_the_crisis(crisis: list[Mention]) -> None:
    for brand in ("globex-bank", "initech-mobile", "umbrella-foods"):
        before = _negative_share(crisis, brand, 0.0, 8.0)
        during = _negative_share(crisis, brand, 10.0, 13.0)
        assert abs(during - before) < 0.12, f"{brand}: {before:.2f} → {during:.2f}"


def test_crisis_customers_show_churn_intent_over_several_mentions(
    crisis: list[Mention],
) -> None:
    by_customer: dict[str, list[Mention]] = defaultdict(list)
    for m in crisis:
        if m.brand == CRISIS_BRAND and m.customer_id:
            by_customer[m.customer_id].append(m)
    churners = [
        c
        for c, ms in by_customer.items()
        if len(ms) >= 3
        and any(p in m.text.lower() for m in ms for p in CHURN)
        and all(9.0 <= _hour(m) <= 16.0 for m in ms)
    ]
    assert len(churners) >= 3
    assert all(re.fullmatch(r"cust-\d{6}", c) for c in churners)


def test_calm_day_has_customers_with_repeated_complaints(calm: list[Mention]) -> None:
    analyzer = SentimentIntensityAnalyzer()
    complaints = Counter(
        m.customer_id
        for m in calm
        if m.customer_id and analyzer.polarity_scores(m.text)["compound"] <= -0.05
    )
    assert sum(1 for n in complaints.values() if n >= 3) >= 3


def test_start_hours_and_rate_scale_are_honoured() -> None:
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    short = generate("crisis", seed=3, start=start, hours=2.0)
    assert short
    assert all(start <= m.created_at < start + timedelta(hours=2) for m in short)
    scaled = generate("calm", seed=3, hours=6.0, rate_scale=3.0)
    base = generate("calm", seed=3, hours=6.0)
    assert 2.5 < len(scaled) / len(base) < 3.5


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(KeyError, match="calm, crisis"):
        generate("nope")
    with pytest.raises(ValueError, match="timezone"):
        generate("calm", start=datetime(2026, 1, 5))
    with pytest.raises(ValueError, match="rate_scale"):
        generate("calm", rate_scale=0.0)


def test_scenarios_are_named() -> None:
    assert {"calm", "crisis"} <= set(SCENARIOS)
    crisis = SCENARIOS["crisis"].crisis
    assert crisis is not None
    assert crisis.brand == CRISIS_BRAND


def test_source_pages_through_the_scenario(crisis: list[Mention]) -> None:
    source = SimulateSource("crisis", seed=7, page_size=4000)
    assert isinstance(source, Source)
    assert source.check() == []
    pages: list[list[Mention]] = []
    cursor: str | None = None
    while True:
        page, cursor = source.fetch(cursor)
        pages.append(page)
        if cursor is None:
            break
    assert all(0 < len(p) <= 4000 for p in pages)
    assert [m for p in pages for m in p] == crisis
    assert source.fetch(str(len(crisis))) == ([], None)
    # Resuming from a cursor continues exactly where the earlier page ended.
    assert source.fetch("4000")[0][0] == crisis[4000]


def test_source_reports_bad_configuration_and_cursor() -> None:
    source = SimulateSource("nope", page_size=0, rate_scale=-1.0)
    problems = source.check()
    assert any("unknown scenario 'nope'" in p for p in problems)
    assert any("page_size" in p for p in problems)
    assert any("rate_scale" in p for p in problems)
    with pytest.raises(ValueError, match="cursor"):
        SimulateSource("calm", hours=0.1).fetch("abc")
