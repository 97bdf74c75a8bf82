"""The fast customer-service layer gives exactly, bit for bit, what its reference gives.

The reference (``cs_sentiment_reference.py``) is the layer's scoring before it was made cheaper.
Every float is compared by its exact bits (``float.hex``: a sum added in another order changes the
last bit, and -0.0 is not 0.0), on the crisis scenario the worker benchmarks run, on every text of
the development sentiment sets, on the customer-service fixtures and on generated texts that are
dense in trigger words, negators, contrast and question words and lexicon words.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.cs_sentiment
import tests.streams.cs_sentiment_reference
from bench.scoring import DATA, load_texts, verdict_bits
from connectors.simulate import generate
from streams.cs_sentiment import (
    _ASKING,
    _CONTRAST,
    _NEGATORS,
    COMPLAINTS,
    NEGATED_SERVICE,
    SARCASM,
    SERVICE_FAILURES,
    CsSentiment,
    RuleHits,
    rule_scores,
    tokens,
)
from streams.scoring import Scorer
from tests.streams.cs_sentiment_reference import (
    ReferenceCsSentiment,
    Rule,
    reference_rule_scores,
    reference_tokens,
)

FIXTURES = Path(__file__).parents[1] / "data"

Vader = tuple[float, float, float, float]


def _bits(hits: RuleHits) -> tuple[object, ...]:
    return (hits.complaint.hex(), hits.sarcasm, hits.compound.hex())


@pytest.fixture(scope="module")
def layer() -> CsSentiment:
    return CsSentiment.load()


@pytest.fixture(scope="module")
def reference() -> ReferenceCsSentiment:
    return ReferenceCsSentiment()


def _differences(
    layer: CsSentiment, reference: ReferenceCsSentiment, texts: list[str]
) -> list[str]:
    vader = Scorer().vader
    out: list[str] = []
    for text in texts:
        scores = vader(text)
        ours = layer.verdict(text, scores)
        same = verdict_bits(ours) == verdict_bits(reference.verdict(text, scores))
        if not same or layer.compound(text, scores).hex() != ours.compound.hex():
            out.append(text)
    return out


def test_identical_on_the_crisis_scenario_and_the_customer_service_fixtures(
    layer: CsSentiment, reference: ReferenceCsSentiment
) -> None:
    texts = [m.text for m in generate("crisis", seed=7)]
    for name in ("cs_complaints.jsonl", "cs_tweets.jsonl"):
        lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines]
    assert len(texts) > 10_000
    assert _differences(layer, reference, texts) == []


@pytest.mark.skipif(not DATA.is_dir(), reason="development data ../shared/data not present")
def test_identical_on_every_development_text(
    layer: CsSentiment, reference: ReferenceCsSentiment
) -> None:
    texts = load_texts()
    assert len(texts) > 40_000
    assert _differences(layer, reference, texts) == []


def test_tokens_identical_on_the_crisis_scenario_and_every_development_text() -> None:
    """The token regex is written to start with a character class (so the regex engine skips the
    characters that cannot start a token); it finds the same tokens as the plain alternation."""
    texts = [m.text for m in generate("crisis", seed=7)]
    if DATA.is_dir():
        texts += load_texts()
    differing = [
        text
        for text in texts
        for lowered in (text.lower(), text)
        if tokens(lowered) != reference_tokens(lowered)
    ]
    assert differing == []


_MORE_WORDS = (
    "good great love lovely thanks thank happy fine ok okay bad worst hate terrible awful "
    "horrible sad angry helpful useful no not never nobody none nothing very really so "
    "extremely kind sort of the a my our for on at in to is was has been me us you it i "
    "hours hrs minutes days weeks two 3 10 3rd 5th 12th time again calling called delay "
    "bag bags luggage refund order package delivery flight train response reply answer "
    "help work arrive fix log in job service support airline experience tarmac gate phone "
    "connection meeting there working listening home paying going on supposed told "
    "promised joke surprise shock needed wanted right yeah #not #sarcasm /s @skyjet "
    "http://t.co/x www.x.io :) :( :-) ;p <3 😀 😡 ☀ ! !! ? ??? ?! , . ' n't didnt dont "
    "cant wont isnt wasnt GREAT Thanks NOT"
)


_PHRASES = [
    "on hold for two hours",
    "on hold forever",
    "still waiting for a refund",
    "thanks for losing my bag",
    "thank you so much for nothing",
    "great job, my luggage is lost again",
    "love how it is delayed again",
    "yeah, right",
    "just what i needed",
    "so much for that",
    "what a joke",
    "not helpful at all",
    "didn't even help but",
    "can't help but smile",
    "nobody answers",
    "haven't heard back",
    "hung up on me",
    "double-charged",
    "charged me twice",
    "for the 3rd time",
    "fifth time calling",
    "wasted my time",
    "never arrived",
    "worst service",
    "out for hours",
    "stuck on the tarmac",
    "missed my connection",
    "sitting here for an hour",
    "hold times are now 2 hours",
    "another 40 minutes",
    "second delay",
    "how many times",
    "is anyone there",
    "i was told",
    "no response",
    "not a single update",
    "delayed by 3 hours",
    "flight was cancelled",
    "bags were damaged",
    "lost my package",
]
"""Phrases that make the rules fire."""


def _vocabulary() -> list[str]:
    """Words and phrases that steer every branch: rule triggers and phrases that fire, service
    failure words, negators, contrast and question words, lexicon words of every valence,
    emoticons, emoji, links, users, ``!``/``?`` runs, digits and apostrophe-less spellings."""
    words: set[str] = set()
    for triggers, _, _ in (*COMPLAINTS, *NEGATED_SERVICE):
        words.update(triggers.split())
    for triggers, _ in SARCASM:
        words.update(triggers.split())
    words.update(SERVICE_FAILURES, _NEGATORS, _CONTRAST, _ASKING)
    words.update(_MORE_WORDS.split())
    return sorted(words) + _PHRASES


_WORDS = _vocabulary()
_SEPARATORS = (" ", " ", " ", "", ",", ".", "!", "?", "\n", "'", " but ", "  ")
_texts = st.lists(
    st.tuples(st.sampled_from(_WORDS), st.sampled_from(_SEPARATORS)), max_size=40
).map(lambda parts: "".join(word + sep for word, sep in parts))
_any_text = st.one_of(_texts, _texts.map(str.upper), _texts.map(str.title), st.text(max_size=80))
_unit = st.floats(min_value=0.0, max_value=1.0)
_vader = st.tuples(
    st.one_of(st.just(0.0), st.floats(min_value=-1.0, max_value=1.0)), _unit, _unit, _unit
)
_settings = settings(
    max_examples=1500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@_settings
@given(text=_any_text, vader=_vader)
def test_identical_on_generated_texts(text: str, vader: Vader) -> None:
    layer, reference, rules_only_layer, rules_only_reference = _LAYERS
    assert verdict_bits(layer.verdict(text, vader)) == verdict_bits(reference.verdict(text, vader))
    assert layer.compound(text, vader).hex() == layer.verdict(text, vader).compound.hex()
    assert verdict_bits(rules_only_layer.verdict(text, vader)) == verdict_bits(
        rules_only_reference.verdict(text, vader)
    )


@_settings
@given(text=_any_text, compound=_vader.map(lambda v: v[0]))
def test_rule_scores_and_tokens_identical_on_generated_texts(text: str, compound: float) -> None:
    lowered = text.lower()
    assert tokens(lowered) == reference_tokens(lowered)
    assert _bits(rule_scores(lowered, compound)) == _bits(reference_rule_scores(lowered, compound))
    words = set(tokens(lowered))
    assert _bits(rule_scores(lowered, compound, words)) == _bits(
        reference_rule_scores(lowered, compound, words)
    )


def test_matched_rule_valences_are_summed_in_table_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables' valences are multiples of 0.5, whose sums are exact in any order; a rule with
    another valence must not change a text's complaint sum by being added in another order. With
    valences whose sums depend on the order, the rules still give the reference's bits on texts
    where many rules match."""

    def inexact(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        return tuple((t, p, -math.sqrt(i + 2) / 3) for i, (t, p, _) in enumerate(rules))

    fast, reference = streams.cs_sentiment, tests.streams.cs_sentiment_reference
    monkeypatch.setattr(fast, "_RULES", inexact(fast._RULES))
    monkeypatch.setattr(reference, "_RULES", inexact(reference._RULES))
    rng = random.Random(15)
    texts = [" and ".join(rng.sample(_PHRASES, rng.randint(2, 8))) for _ in range(3000)]
    # one trigger word, three rules (the sum of three can change with their order)
    texts += [
        "on hold for two hours, on hold forever, hold times are now 2 hours",
        "never arrived, never delivered, never work",
    ]
    several = 0
    for text in texts:
        lowered = text.lower()
        ours = rule_scores(lowered, 0.3)
        assert _bits(ours) == _bits(reference_rule_scores(lowered, 0.3)), text
        several += ours.complaint < -0.5
    assert several > 1000  # most texts match several rules


_LAYERS = (CsSentiment.load(), ReferenceCsSentiment(), CsSentiment({}), ReferenceCsSentiment({}))
