"""FastVader must give exactly vaderSentiment's scores, on development texts and hostile ones."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from streams import fastvader
from streams.fastvader import FastVader
from streams.scoring import Scorer

DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "sentiment-dev"

_TRICKY = (
    "no not never without doubt least at very so this kind of sort just enough but BUT But the "
    "shit bomb bad ass badass bus stop yeah right kiss death to die for beating heart good GOOD "
    "great bad BAD terrible love hate really REALLY extremely barely kinda or nor isn't don't cant "
    ", . ! ? !! ??? :) :( :D 😀 😡 💘 happy sad okay fine cool wow ok lol the a and I it was "
    "helpful useless refund waiting"
)
TRICKY_WORDS = tuple(_TRICKY.split(" "))


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@pytest.fixture(scope="module")
def fast() -> FastVader:
    return FastVader()


def _dev_texts() -> list[str]:
    texts: list[str] = []
    for path in sorted((DEV_DATA / "vader").glob("*_GroundTruth.txt")):
        for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                texts.append(parts[2])
    texts += (DEV_DATA / "tweeteval" / "sentiment" / "val_text.txt").read_text().splitlines()
    return texts


@pytest.mark.skipif(not DEV_DATA.is_dir(), reason="development data ../shared/data not present")
def test_identical_to_vader_on_development_texts(
    vader: SentimentIntensityAnalyzer, fast: FastVader
) -> None:
    texts = _dev_texts()[::5]  # every fifth: tweets, reviews, movie and editorial snippets
    assert len(texts) > 5000
    mismatches = [t for t in texts if fast.polarity_scores(t) != vader.polarity_scores(t)]
    assert mismatches == []
    scorer = Scorer()  # what the worker and `listenwell score` use
    for text in texts:
        expected = vader.polarity_scores(text)
        result = scorer.score_text(text)
        assert result.vader_compound == expected["compound"], text
        assert (result.pos, result.neu, result.neg) == (
            expected["pos"],
            expected["neu"],
            expected["neg"],
        ), text


def _random_text(rng: random.Random, words: int) -> str:
    separators = (" ", " ", " ", "  ", "", "!", ",", "\n")
    return "".join(rng.choice(TRICKY_WORDS) + rng.choice(separators) for _ in range(words))


def test_identical_to_vader_on_rule_heavy_random_texts(
    vader: SentimentIntensityAnalyzer, fast: FastVader
) -> None:
    rng = random.Random(2024)
    texts = [_random_text(rng, rng.randint(0, 25)) for _ in range(20_000)]
    texts += [_random_text(rng, rng.randint(50, 300)) for _ in range(300)]
    mismatches = [t for t in texts if fast.polarity_scores(t) != vader.polarity_scores(t)]
    assert mismatches == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "VADER is VERY SMART, handsome, and FUNNY!!!",
        "The book was only kind of good.",
        "At least it isn't a horrible book.",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "Sentiment analysis has never been this good!",
        "Without a doubt, an excellent idea.",
        "Today only kinda sux! But I'll get by, lol",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "no no good at all",
        "this is the shit",
        "Thanks for losing my bag!!",
        "On hold for two hours??? Still waiting for a refund.",
        "GREAT SERVICE!!!",
        "VERY GOOD, NOT BAD",
        "The food was GOOD but the staff were VERY rude",
        "I LOVE IT",
        "kind of",
        "no",
        "not least good",
    ],
)
def test_identical_to_vader_on_documented_quirks(
    vader: SentimentIntensityAnalyzer, fast: FastVader, text: str
) -> None:
    assert fast.polarity_scores(text) == vader.polarity_scores(text)
    compound, pos, neu, neg = fast.scores(text)
    assert (compound, pos, neu, neg) == tuple(
        vader.polarity_scores(text)[key] for key in ("compound", "pos", "neu", "neg")
    )


def _vader_but_check(values: list[float], but_index: int) -> list[float]:
    # vaderSentiment's _but_check, on a list holding only the non-zero sentiments' positions.
    sentiments = list(values)
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < but_index:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 0.5)
        elif si > but_index:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 1.5)
    return sentiments


@pytest.mark.parametrize("size", [5, 40, 200])
def test_but_replay_matches_vaders_list_index_walk(size: int) -> None:
    rng = random.Random(size)
    for _ in range(300):
        # Few distinct values, so rescaled values collide with later ones (2.0 * 0.5 == 1.0).
        values = [rng.choice((1.0, 2.0, 4.0, -1.0, -2.0, 0.5, 1.5, 3.0)) for _ in range(size)]
        but_index = rng.randrange(size)
        replayed = list(values)
        fastvader._but_replay(replayed, list(range(size)), but_index)
        assert replayed == _vader_but_check(values, but_index)


def test_long_text_finishes(fast: FastVader) -> None:
    rng = random.Random(5)
    text = _random_text(rng, 40_000)
    assert len(text) > 150_000
    compound, pos, neu, neg = fast.scores(text)
    assert -1.0 <= compound <= 1.0
    assert abs(pos + neu + neg - 1.0) < 0.01


def test_flag_marks_every_text_holding_a_flag_word(vader: SentimentIntensityAnalyzer) -> None:
    flagged_fast = FastVader(flag_words={"ignored", "refund", "care"})
    cases = {
        "They IGNORED me.": True,
        "still no refund😡": True,
        "😡refund😡": True,
        "don't care": True,
        "Nobody cared at all": False,
        "refunds pending": False,
        "": False,
    }
    for text, expected in cases.items():
        scores, flagged = flagged_fast.scores_and_flag(text)
        assert flagged is expected, text
        assert scores == flagged_fast.scores(text)
        polarity = vader.polarity_scores(text)
        assert scores == (polarity["compound"], polarity["pos"], polarity["neu"], polarity["neg"])
