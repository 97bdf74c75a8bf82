"""The customer-service sentiment layer: complaints VADER misreads, sarcasm, negated service."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from streams.cs_sentiment import CsSentiment, features, rule_scores
from streams.scoring import Scorer

FIXTURE = Path(__file__).parents[1] / "data" / "cs_complaints.jsonl"
TWEETS = Path(__file__).parents[1] / "data" / "cs_tweets.jsonl"


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(sentiment_layer=CsSentiment.load())


@pytest.mark.parametrize(
    "text",
    [
        "thanks for losing my bag",
        "on hold for two hours",
        "still waiting for a refund",
        "package marked delivered but never arrived",
        "can't log in to my account for two days now",
        "great job, my luggage is lost again",
    ],
)
def test_complaints_vader_misreads_are_negative(scorer: Scorer, text: str) -> None:
    result = scorer.score_text(text)
    assert result.vader_compound > -0.05  # VADER: neutral or positive
    assert result.label.value == "negative"
    assert result.compound <= -0.05


def test_praise_stays_positive_and_questions_neutral(scorer: Scorer) -> None:
    assert scorer.score_text("The crew was lovely, thank you!").label.value == "positive"
    assert scorer.score_text("what time does the store open?").label.value == "neutral"


def test_rules_alone_explain_what_fired() -> None:
    hits = rule_scores("thanks for losing my bag", 0.4404)
    assert hits.sarcasm and hits.complaint < 0 and hits.compound < -0.5
    calm = rule_scores("my bag arrived, thanks", 0.4404)
    assert not calm.fired and calm.compound == pytest.approx(0.4404, abs=1e-3)


def test_vader_compound_is_untouched_by_the_layer(scorer: Scorer) -> None:
    plain = Scorer()
    for text in ["thanks for losing my bag", "I love it", "meh", "worst airline ever"]:
        assert scorer.score_text(text).vader_compound == plain.score_text(text).vader_compound


def test_label_follows_compound_thresholds(scorer: Scorer) -> None:
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        result = scorer.score_text(json.loads(line)["text"])
        if result.label.value == "positive":
            assert result.compound >= 0.05
        elif result.label.value == "negative":
            assert result.compound <= -0.05
        else:
            assert -0.05 < result.compound < 0.05


def test_clearly_better_than_vader_on_the_complaint_fixture(scorer: Scorer) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    ours = sum(scorer.score_text(r["text"]).label.value == r["label"] for r in rows)
    vader = sum(Scorer().score_text(r["text"]).label.value == r["label"] for r in rows)
    assert ours >= vader + 10


def test_brand_overrides_apply_on_top_of_the_layer() -> None:
    layered = Scorer({"red-eye": 2.0}, sentiment_layer=CsSentiment.load())
    base = Scorer(sentiment_layer=CsSentiment.load())
    text = "booked the red-eye to boston"
    assert layered.score_text(text).compound > base.score_text(text).compound


def test_verdict_scores_the_features_the_model_was_trained_on() -> None:
    """The fast scoring path and :func:`features` (what training sees) agree on every text."""
    layer = CsSentiment.load()
    plain = Scorer()
    texts = [
        "thanks for losing my bag",
        "Sooo happy with the new app!!! http://t.co/x",
        "Is the store open on Sunday?",
        "worst service ever, never again :(",
        "I changed my delivery address in the app",
        "the seats were fine but the crew was not helpful, not happy at all",
        "do you fly to lisbon? can't find it",
    ]
    for text in texts:
        vader = plain.vader(text)
        sums = [0.0, 0.0, 0.0]
        for name, value in features(text, vader).items():
            for k, w in enumerate(layer.weights.get(name, (0.0, 0.0, 0.0))):
                sums[k] += w * value
        top = max(sums)
        exps = [math.exp(s - top) for s in sums]
        expected = [e / sum(exps) for e in exps]
        assert layer.verdict(text, vader).probabilities == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "text",
    [
        "@skyjet can someone please explain why we've been sitting here for an hour",
        "@northwindair the hold time is 3 hours",
        "@shopmart package says delivered. it was not delivered.",
        "@northwindair nobody at the gate and the board says on time",
        "@telcoone your unlimited plan got throttled after 10GB",
        "@northwindair great, another delay",
        "@telcoone tech was supposed to come between 8 and 12",
        "@northwindair my bag didn't make it to boston",
    ],
)
def test_service_failures_without_sentiment_words_are_negative(scorer: Scorer, text: str) -> None:
    result = scorer.score_text(text)
    assert result.vader_compound > -0.05
    assert result.label.value == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "Just watched The Lorax for the 1st time",
        "I don't care what people say, I love it",
        "you can't help but smile at this film",
        "I've been a customer for 10 years",
    ],
)
def test_rules_leave_ordinary_phrases_alone(text: str) -> None:
    assert not rule_scores(text.lower(), 0.0).fired


@pytest.mark.parametrize(
    "text",
    [
        "@skyjet do you allow pets in the cabin on international flights?",
        "@shopmart do you ship to canada?",
        "@northwindair what's the baggage allowance for economy to lisbon?",
    ],
)
def test_questions_without_complaint_words_are_neutral(scorer: Scorer, text: str) -> None:
    assert scorer.score_text(text).label.value == "neutral"


def test_customer_tweets_beat_vader_on_the_check_set(scorer: Scorer) -> None:
    """The check half of cs_tweets.jsonl was written before the second round of rules and not
    read while building them."""
    rows = [json.loads(line) for line in TWEETS.read_text(encoding="utf-8").splitlines()]
    check = [r for r in rows if r["set"] == "check"]
    assert len(check) >= 50
    ours = sum(scorer.score_text(r["text"]).label.value == r["label"] for r in check)
    vader = sum(Scorer().score_text(r["text"]).label.value == r["label"] for r in check)
    assert ours >= vader + len(check) // 10
