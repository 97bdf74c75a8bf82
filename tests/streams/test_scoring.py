"""Scoring: VADER sentiment (exact for short texts, linear for long ones), empathy, churn, PII."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from streams import lexicon
from streams.records import Churn, Empathy, Mention, MentionKind, SentimentLabel
from streams.scoring import PhraseMatcher, Scorer, label_for, split_chunks
from tests.factories import mention

COMPLAINTS = [
    "I've been on hold for hours and nobody cares. Cancelling my subscription tomorrow.",
    "Talking to a robot again?! Still waiting for my refund, 3 weeks now.",
    "Useless support. They hung up on me TWICE. Switching to @OtherBank, never again.",
    "Flight delayed again. No response from the app, no one cares about economy passengers.",
    "The delivery guy ignored my instructions and the parcel got soaked :(",
    "Not great, not terrible. But honestly I'm done with this company.",
    "Closing my account and taking my business elsewhere 😡😡",
]
PRAISE = [
    "The agent was so patient and understanding, she really listened. Thank you for listening!",
    "Support went above and beyond, super helpful and caring 💖",
    "Sarah apologized, fixed it in minutes and even followed up. Best service ever!!!",
    "Love the new update, it is kind of amazing :)",
]
NEUTRAL = ["Where is the nearest store?", "Order 12 shipped today.", "", "   ", "!!!"]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer()


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@pytest.mark.parametrize("text", COMPLAINTS + PRAISE + NEUTRAL)
def test_short_texts_get_exactly_vaders_scores(
    scorer: Scorer, vader: SentimentIntensityAnalyzer, text: str
) -> None:
    expected = vader.polarity_scores(text)
    result = scorer.score_text(text)
    assert result.vader_compound == expected["compound"]
    assert result.compound == expected["compound"]
    assert (result.pos, result.neu, result.neg) == (
        expected["pos"],
        expected["neu"],
        expected["neg"],
    )
    assert result.label == label_for(expected["compound"])


def test_text_of_exactly_max_chunk_chars_is_not_chunked(vader: SentimentIntensityAnalyzer) -> None:
    text = ("Great product but awful support, never again! " * 30)[:1000]
    assert Scorer().score_text(text).compound == vader.polarity_scores(text)["compound"]


def test_labels_follow_vader_thresholds(scorer: Scorer) -> None:
    assert all(scorer.score_text(t).label is SentimentLabel.NEGATIVE for t in COMPLAINTS[3:6])
    assert all(scorer.score_text(t).label is SentimentLabel.POSITIVE for t in PRAISE)
    assert scorer.score_text("Where is the nearest store?").label is SentimentLabel.NEUTRAL
    assert label_for(0.05) is SentimentLabel.POSITIVE
    assert label_for(-0.05) is SentimentLabel.NEGATIVE
    assert label_for(0.0499) is SentimentLabel.NEUTRAL


def test_empathy_deficit_and_churn_are_found(scorer: Scorer) -> None:
    result = scorer.score_text(COMPLAINTS[0])
    assert result.empathy.deficit == ("on hold for hours", "nobody cares")
    assert result.empathy.positive == ()
    assert result.empathy.score == -1.0
    assert result.churn.phrases == ("cancelling my subscription",)
    assert result.churn.intent


def test_positive_empathy_is_found_case_insensitively(scorer: Scorer) -> None:
    result = scorer.score_text("The agent LISTENED, was so Patient. THANK YOU FOR LISTENING")
    assert result.empathy.positive == ("listened", "patient", "thank you for listening")
    assert result.empathy.score == 1.0
    assert not result.churn.intent


def test_mixed_empathy_score_is_balanced(scorer: Scorer) -> None:
    result = scorer.score_text("She was helpful, but I was still waiting and then ignored.")
    assert result.empathy.positive == ("helpful",)
    assert result.empathy.deficit == ("still waiting", "ignored")
    assert result.empathy.score == pytest.approx(-1 / 3)


def test_empathy_and_churn_records_equal_validated_ones(scorer: Scorer) -> None:
    """score_text builds its empathy and churn records without pydantic's validation; they equal
    the validated records, field for field, in their set fields and in their JSON."""
    texts = [*COMPLAINTS, *PRAISE, "She was helpful, but I was still waiting and then ignored."]
    for text in texts:
        result = scorer.score_text(text)
        empathy, churn = result.empathy, result.churn
        validated = (
            Empathy(positive=empathy.positive, deficit=empathy.deficit, score=empathy.score)
            if empathy.positive or empathy.deficit
            else Empathy(),
            Churn(phrases=churn.phrases) if churn.phrases else Churn(),
        )
        for ours, theirs in zip((empathy, churn), validated, strict=True):
            assert ours == theirs, text
            assert ours.model_fields_set == theirs.model_fields_set, text
            assert ours.model_dump_json() == theirs.model_dump_json(), text
            assert list(ours.__dict__) == list(type(ours).model_fields), text
    assert any(scorer.score_text(text).churn.phrases for text in texts)
    assert any(scorer.score_text(text).empathy.positive for text in texts)
    assert any(scorer.score_text(text).empathy.deficit for text in texts)


def test_phrases_match_whole_words_only(scorer: Scorer) -> None:
    result = scorer.score_text("Unhelpfulness and impatient staff; the cancellingXYZ plugin.")
    assert result.empathy.positive == ()
    assert result.churn.phrases == ()


def test_curly_apostrophes_match(scorer: Scorer) -> None:
    assert scorer.score_text("They don\u2019t care at all").empathy.deficit == ("don't care",)


def test_phrase_overrides_move_compound_not_vader_compound(
    vader: SentimentIntensityAnalyzer,
) -> None:
    text = "Thanks for losing my bag"
    scorer = Scorer(phrase_overrides={"Thanks for losing": -3.0})
    result = scorer.score_text(text)
    assert result.vader_compound == vader.polarity_scores(text)["compound"] > 0
    assert result.compound < -0.05
    assert result.label is SentimentLabel.NEGATIVE
    assert (
        Scorer(phrase_overrides={"Thanks for losing": -3.0})
        .score_text("Thanks for the help")
        .compound
        == vader.polarity_scores("Thanks for the help")["compound"]
    )


def test_split_chunks_respects_limit_and_boundaries() -> None:
    text = "This is a sentence that ends here. " * 200 + "x" * 2500 + " tail words"
    chunks = split_chunks(text, 1000)
    assert "".join(chunks) == text
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)
    assert chunks[0].endswith(". ")
    assert split_chunks("short", 1000) == ["short"]


def test_long_text_is_scored_by_weighted_chunks(vader: SentimentIntensityAnalyzer) -> None:
    happy = "I love this, wonderful and friendly staff. " * 50
    angry = "Terrible, awful, horrible service and rude agents. " * 50
    scorer = Scorer(max_chunk_chars=500)
    mixed = scorer.score_text(happy + angry)
    assert scorer.score_text(happy).compound > 0.9
    assert scorer.score_text(angry).compound < -0.9
    assert abs(mixed.compound) < 0.2
    assert abs(mixed.pos + mixed.neu + mixed.neg - 1.0) < 0.01


def test_two_hundred_thousand_characters_finish(scorer: Scorer) -> None:
    text = " ".join(COMPLAINTS + PRAISE) * 300
    assert len(text) > 200_000
    result = scorer.score_text(text)
    assert -1.0 <= result.compound <= 1.0
    assert "nobody cares" in result.empathy.deficit
    assert "went above and beyond" in result.empathy.positive


def _mention(text: str) -> Mention:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return mention(
        "t1_abc", at=at, source="reddit", kind=MentionKind.COMMENT, text=text, author="u1"
    )


def test_score_redacts_before_scoring_and_storing(scorer: Scorer) -> None:
    mention = _mention(
        "Still waiting!! Email me at jane@example.com or call +44 20 7946 0958, "
        "I'm cancelling my subscription."
    )
    scored_at = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    scored = scorer.score(mention, scored_at=scored_at)
    assert scored.mention.text == (
        "Still waiting!! Email me at [email] or call [phone], I'm cancelling my subscription."
    )
    assert "jane@example.com" not in scored.to_json().decode()
    assert scored.pii_redacted == 2
    assert scored.mention.id == mention.id
    assert scored.scored_at == scored_at
    assert scored.churn.phrases == ("cancelling my subscription",)
    assert scored.empathy.deficit == ("still waiting",)
    assert scored.sentiment.compound == scorer.score_text(scored.mention.text).compound


def test_score_keeps_text_without_pii(scorer: Scorer) -> None:
    mention = _mention("Order #123456 arrived in 2024, great job")
    scored = scorer.score(mention, scored_at=datetime(2024, 5, 1, tzinfo=UTC))
    assert scored.mention == mention
    assert scored.pii_redacted == 0
    assert scored.sentiment.label is SentimentLabel.POSITIVE


def _phrase_soup(rng: random.Random) -> str:
    phrases = lexicon.POSITIVE_EMPATHY + lexicon.EMPATHY_DEFICIT + lexicon.CHURN_INTENT
    fillers = ("the", "agent", "was", "x", "😡", "💖", "!!", "(", ")", "...", "2024", "café")
    parts: list[str] = []
    for _ in range(rng.randint(1, 12)):
        part = rng.choice(phrases) if rng.random() < 0.4 else rng.choice(fillers)
        style = rng.random()
        if style < 0.2:
            part = part.upper()
        elif style < 0.3:
            part = part.title()
        elif style < 0.4:
            part = part.replace("'", "\u2019")
        parts.append(part)
        parts.append(rng.choice((" ", " ", "", ", ", "!", "\n", "😡", "-")))
    return "".join(parts)


def test_phrase_prefilter_never_hides_a_match() -> None:
    """The fast path must find exactly what a full regex scan of every text finds."""
    scorer = Scorer(phrase_overrides={"thanks for losing": -3.0, "yeah right": -2.0})
    positive = PhraseMatcher(lexicon.POSITIVE_EMPATHY)
    deficit = PhraseMatcher(lexicon.EMPATHY_DEFICIT)
    churn = PhraseMatcher(lexicon.CHURN_INTENT)
    rng = random.Random(11)
    texts = COMPLAINTS + PRAISE + NEUTRAL + [_phrase_soup(rng) for _ in range(3000)]
    found_any = 0
    for text in texts:
        result = scorer.score_text(text)
        normalised = text.lower().replace("\u2019", "'").replace("\u2018", "'")
        assert result.empathy.positive == positive.find(normalised), text
        assert result.empathy.deficit == deficit.find(normalised), text
        assert result.churn.phrases == churn.find(normalised), text
        found_any += bool(result.empathy.positive or result.empathy.deficit or result.churn.intent)
    assert found_any > 500


def test_override_without_word_characters_is_still_found() -> None:
    scorer = Scorer(phrase_overrides={":-/": -2.0})
    assert (
        scorer.score_text("great service :-/").compound
        < scorer.score_text("great service").compound
    )


def test_the_worker_s_scorer_reads_complaints_and_each_brand_s_own_words() -> None:
    """``worker_scorer`` is what the worker (and the benchmarks standing for it) score with: the
    customer-service layer and the brand phrase overrides beside the rules."""
    from streams.brand_scoring import worker_scorer

    scorer = worker_scorer(Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml")
    sarcastic = scorer.score_text("thanks for losing my bag")
    assert sarcastic.vader_compound > 0  # VADER reads "thanks" as praise
    assert sarcastic.compound < 0
    now = datetime(2026, 1, 6, tzinfo=UTC)
    slogan = "killer fares this week"
    own = scorer.score(mention(text=slogan, brand="northwind-air"), scored_at=now)
    other = scorer.score(mention(text=slogan, brand="globex"), scored_at=now)
    assert own.sentiment.compound > other.sentiment.compound
