"""Scoring core: PII redaction, VADER sentiment, empathy and churn-intent phrases.

Pure and deterministic: :class:`Scorer` holds no clock and no I/O; the caller passes ``scored_at``.

Cost stays linear in text length. vaderSentiment is quadratic in the number of words (a
16k-character text takes about 2 s), so texts longer than ``max_chunk_chars`` are cut at sentence or
whitespace boundaries into chunks of at most ``max_chunk_chars`` characters, each chunk is scored,
and the scores are combined as a length-weighted mean. Texts up to ``max_chunk_chars`` get exactly
vaderSentiment's ``polarity_scores`` (computed by :class:`streams.fastvader.FastVader`, a faster
reimplementation with identical results). Phrase matching is one compiled, trie-shaped regex per
lexicon over the lowercased text, run only when the text holds one of the lexicon's words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeAlias

from streams import lexicon, pii
from streams.fastvader import FastVader
from streams.records import (
    SCHEMA_VERSION,
    Churn,
    Empathy,
    Mention,
    ScoredMention,
    Sentiment,
    SentimentLabel,
    trusted,
)

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
_VADER_ALPHA = 15.0
_SENTENCE_END = (". ", "! ", "? ", ".\n", "!\n", "?\n", "\n")
_WHITESPACE = (" ", "\n", "\t", "\r")
_WORD = re.compile(r"\w+")
# ASCII characters that are not \w, mapped to spaces: splitting then gives the maximal \w runs.
_ASCII_NON_WORD = str.maketrans(
    {chr(code): " " for code in range(128) if not re.match(r"\w", chr(code))}
)
# Words too common to serve as a phrase's key (the key is what a text must contain for the phrase
# to be looked for), most common first: a phrase's key is its longest other word of 3+ letters,
# or, if it has none, its rarest word by this ranking.
# fmt: off
_COMMON_WORDS = (
    "the", "to", "a", "i", "and", "of", "is", "in", "it", "for", "my", "on", "this", "with",
    "was", "me", "not", "but", "be", "so", "at", "no", "all", "an", "am", "one", "get", "did",
    "got", "very", "really", "don", "never", "time", "back", "use", "using", "didn", "doesn",
    "last", "help", "again", "done", "kind", "care", "took", "hours", "customer",
)
# fmt: on
_COMMONNESS = {word: len(_COMMON_WORDS) - rank for rank, word in enumerate(_COMMON_WORDS)}


def _key_rank(word: str) -> tuple[int, int]:
    """Higher for a better phrase key: uncommon words, then rarer common ones, then fragments."""
    if word in _COMMONNESS:
        return (1, -_COMMONNESS[word])
    if len(word) >= 3:
        return (2, len(word))
    return (0, len(word))  # "t" of "don't", "m" of "i'm"


_NO_EMPATHY = Empathy()
_NO_CHURN = Churn()


@dataclass(frozen=True, slots=True)
class TextScore:
    """Scores of one (already redacted) text.

    ``vader_compound`` is VADER's compound (chunk-weighted for long texts); ``compound`` is the
    final compound after brand phrase overrides (equal to ``vader_compound`` when none matched);
    ``label`` follows ``compound``.
    """

    compound: float
    pos: float
    neu: float
    neg: float
    label: SentimentLabel
    empathy: Empathy
    churn: Churn
    vader_compound: float


def label_for(compound: float) -> SentimentLabel:
    """VADER's customary thresholds: >= 0.05 positive, <= -0.05 negative, neutral between."""
    if compound >= POSITIVE_THRESHOLD:
        return SentimentLabel.POSITIVE
    if compound <= NEGATIVE_THRESHOLD:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


def split_chunks(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into consecutive pieces of at most ``max_chars`` characters.

    Cuts after the last sentence end in the window if that keeps at least half of it, otherwise at
    the last whitespace, otherwise hard at ``max_chars``. Concatenating the pieces gives ``text``.
    Each window is searched once, so this is linear in ``len(text)``.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    chunks: list[str] = []
    start = 0
    length = len(text)
    while length - start > max_chars:
        end = start + max_chars
        half = start + max_chars // 2
        cut = max(text.rfind(mark, half, end) + len(mark) for mark in _SENTENCE_END)
        if cut <= half:
            cut = max(text.rfind(space, start + 1, end) + 1 for space in _WHITESPACE)
            if cut <= start + 1:
                cut = end
        chunks.append(text[start:cut])
        start = cut
    chunks.append(text[start:])
    return chunks


_Trie: TypeAlias = dict[str, "_Trie"]


def _trie_pattern(phrases: Iterable[str]) -> str:
    """A regex alternation shaped like a trie: shared prefixes are matched once, longest first."""
    trie: _Trie = {}
    for phrase in phrases:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: _Trie) -> str:
        ends = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return "(?:" + body + ")?" if len(branches) > 1 or len(body) > 1 else body + "?"
        return body

    return build(trie)


def _words(normalised_text: str) -> list[str]:
    """The maximal runs of word characters (regex ``\\w+``) of a text."""
    if normalised_text.isascii():
        return normalised_text.translate(_ASCII_NON_WORD).split()
    return _WORD.findall(normalised_text)


class PhraseMatcher:
    """Finds lexicon phrases in text: case-insensitive, whole words, linear in text length."""

    def __init__(self, phrases: Iterable[str]) -> None:
        cleaned = sorted({_normalise(p).strip() for p in phrases} - {""})
        self.phrases: tuple[str, ...] = tuple(cleaned)
        self._regex = (
            re.compile(r"(?<!\w)" + _trie_pattern(cleaned) + r"(?!\w)") if cleaned else None
        )
        # A phrase can only match where all its words stand as whole words of the text, so texts
        # without them skip the regex scan. ``keys`` holds one word per phrase: its longest word
        # that is not very common.
        self.needs: dict[str, list[frozenset[str]]] = {}
        for phrase in cleaned:
            words = _WORD.findall(phrase)
            key = max(words, key=_key_rank, default="")
            self.needs.setdefault(key, []).append(frozenset(words))
        self.keys: frozenset[str] = frozenset(self.needs)
        # A phrase without word characters (":)") cannot be found through its words.
        self.always_scan = "" in self.keys

    def may_match(self, words: set[str]) -> bool:
        """Whether some phrase has all its words in ``words``, the set of a text's ``\\w+`` runs."""
        if self.always_scan:
            return True
        needs = self.needs
        return any(need <= words for key in self.keys & words for need in needs[key])

    def find(self, normalised_text: str, words: set[str] | None = None) -> tuple[str, ...]:
        """Distinct phrases found in text already passed through :func:`_normalise`, in order.

        ``words``, if given, must be the set of :func:`_words` of the same text; it lets the
        matcher skip the scan when no phrase has all its words in the text.
        """
        if self._regex is None:
            return ()
        if words is not None and not self.may_match(words):
            return ()
        return tuple(dict.fromkeys(self._regex.findall(normalised_text)))


def _normalise(text: str) -> str:
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    return lowered.replace("\u2019", "'").replace("\u2018", "'")


def _inverse_normalize(compound: float) -> float:
    """Undo VADER's ``normalize``: the valence sum that gives this compound."""
    bounded = max(-0.9999, min(0.9999, compound))
    return bounded * math.sqrt(_VADER_ALPHA / (1.0 - bounded * bounded))


class SentimentLayer(Protocol):
    """Turns VADER's (compound, pos, neu, neg) of a text into listenwell's compound."""

    def compound(self, text: str, vader: tuple[float, float, float, float]) -> float: ...


class Scorer:
    """Scores mentions for sentiment (VADER), empathy and churn intent, after redacting PII.

    ``sentiment_layer`` (e.g. :class:`streams.cs_sentiment.CsSentiment`), if given, computes
    ``compound`` from the text and VADER's scores; ``vader_compound`` stays VADER's own.

    ``phrase_overrides`` maps brand phrases (matched case-insensitively on word boundaries) to a
    valence on VADER's -4..+4 scale; each matched phrase adds its valence to the text's valence sum
    before normalisation, so ``compound`` moves and ``vader_compound`` stays VADER's own.
    """

    def __init__(
        self,
        phrase_overrides: Mapping[str, float] | None = None,
        max_chunk_chars: int = 1000,
        sentiment_layer: SentimentLayer | None = None,
    ) -> None:
        if max_chunk_chars < 1:
            raise ValueError("max_chunk_chars must be at least 1")
        self.sentiment_layer = sentiment_layer
        self.max_chunk_chars = max_chunk_chars
        self._positive = PhraseMatcher(lexicon.POSITIVE_EMPATHY)
        self._deficit = PhraseMatcher(lexicon.EMPATHY_DEFICIT)
        self._churn = PhraseMatcher(lexicon.CHURN_INTENT)
        overrides = {_normalise(k).strip(): float(v) for k, v in (phrase_overrides or {}).items()}
        self._overrides = {k: v for k, v in overrides.items() if k}
        self._override_matcher = PhraseMatcher(self._overrides)
        self._matchers = (self._positive, self._deficit, self._churn, self._override_matcher)
        self._keys: frozenset[str] | None = frozenset().union(
            *(matcher.keys for matcher in self._matchers)
        )
        if any(matcher.always_scan for matcher in self._matchers):
            self._keys = None
        # key word -> (matcher, all the words one of its phrases needs)
        self._needs: dict[str, list[tuple[PhraseMatcher, frozenset[str]]]] = {}
        for matcher in self._matchers:
            for key, needs in matcher.needs.items():
                self._needs.setdefault(key, []).extend((matcher, need) for need in needs)
        # FastVader flags the texts that hold a phrase key word while it tokenises them, so the
        # many texts without one skip phrase matching altogether.
        self._vader = FastVader(flag_words=self._keys or ())

    def vader(self, text: str) -> tuple[float, float, float, float]:
        """(compound, pos, neu, neg): VADER's scores, chunk-weighted for long texts.

        Up to ``max_chunk_chars`` characters these equal vaderSentiment's ``polarity_scores``.
        """
        if len(text) <= self.max_chunk_chars:
            return self._vader.scores(text)
        compound = pos = neu = neg = 0.0
        for chunk in split_chunks(text, self.max_chunk_chars):
            chunk_compound, chunk_pos, chunk_neu, chunk_neg = self._vader.scores(chunk)
            weight = len(chunk)
            compound += chunk_compound * weight
            pos += chunk_pos * weight
            neu += chunk_neu * weight
            neg += chunk_neg * weight
        total = len(text)
        return (
            round(compound / total, 4),
            round(pos / total, 3),
            round(neu / total, 3),
            round(neg / total, 3),
        )

    def score_text(self, text: str) -> TextScore:
        """Score one text (redact it first if it may hold PII; :meth:`score` does)."""
        if len(text) <= self.max_chunk_chars:
            scores, flagged = self._vader.scores_and_flag(text)
        else:
            scores = self.vader(text)
            flagged = True
        vader_compound, pos, neu, neg = scores
        compound = vader_compound
        if self.sentiment_layer is not None:
            compound = self.sentiment_layer.compound(text, scores)
        # TextScore's fields are passed by position below: by keyword the call costs about 1 µs
        # more (of the ~45 a text costs the worker)
        if not flagged and self._keys is not None:
            return TextScore(
                compound,
                pos,
                neu,
                neg,
                label_for(compound),
                _NO_EMPATHY,
                _NO_CHURN,
                vader_compound,
            )
        normalised = _normalise(text)
        distinct = set(_words(normalised))
        if self._keys is None:
            active = set(self._matchers)
        else:
            needs = self._needs
            active = {
                matcher
                for key in self._keys.intersection(distinct)
                for matcher, need in needs[key]
                if need <= distinct
            }
        positive = self._positive.find(normalised) if self._positive in active else ()
        deficit = self._deficit.find(normalised) if self._deficit in active else ()
        churn = self._churn.find(normalised) if self._churn in active else ()
        matched = (
            self._override_matcher.find(normalised) if self._override_matcher in active else ()
        )
        if matched:
            total = _inverse_normalize(compound) + sum(self._overrides[m] for m in matched)
            compound = round(
                max(-1.0, min(1.0, total / math.sqrt(total * total + _VADER_ALPHA))), 4
            )
        signals = len(positive) + len(deficit)
        # The records are built without validation (their values are valid by construction: tuples
        # of phrases, a score in [-1, 1]); pydantic's validation cost ~1 µs each.
        empathy = _NO_EMPATHY
        if signals:
            score = (len(positive) - len(deficit)) / signals
            empathy = trusted(Empathy, {"positive": positive, "deficit": deficit, "score": score})
        return TextScore(
            compound,
            pos,
            neu,
            neg,
            label_for(compound),
            empathy,
            trusted(Churn, {"phrases": churn}) if churn else _NO_CHURN,
            vader_compound,
        )

    def score(self, mention: Mention, *, scored_at: datetime) -> ScoredMention:
        """Redact PII from the mention, then score the redacted text."""
        redacted, redactions = pii.redact(mention.text)
        clean = mention.model_copy(update={"text": redacted}) if redactions else mention
        result = self.score_text(redacted)
        compound, pos, neu, neg = (
            float(result.compound),
            float(result.pos),
            float(result.neu),
            float(result.neg),
        )
        if (
            -1.0 <= compound <= 1.0
            and 0.0 <= pos <= 1.0
            and 0.0 <= neu <= 1.0
            and 0.0 <= neg <= 1.0
            and scored_at.tzinfo is UTC
        ):
            # Every value is known valid (the mention and the empathy and churn records were
            # validated when built; the bounds are checked just above), so the records are built
            # without validating them again: that cost more than scoring the text.
            sentiment = trusted(
                Sentiment,
                {"compound": compound, "pos": pos, "neu": neu, "neg": neg, "label": result.label},
            )
            return trusted(
                ScoredMention,
                {
                    "schema_version": SCHEMA_VERSION,
                    "mention": clean,
                    "sentiment": sentiment,
                    "empathy": result.empathy,
                    "churn": result.churn,
                    "pii_redacted": redactions,
                    "scored_at": scored_at,
                },
            )
        return ScoredMention(  # out of bounds: pydantic raises, with its message
            mention=clean,
            sentiment=Sentiment(
                compound=result.compound,
                pos=result.pos,
                neu=result.neu,
                neg=result.neg,
                label=result.label,
            ),
            empathy=result.empathy,
            churn=result.churn,
            pii_redacted=redactions,
            scored_at=scored_at,
        )
