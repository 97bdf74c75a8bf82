"""Per-brand phrase overrides: a :class:`Scorer` that scores each brand with its own words.

``alert_rules/lexicon.yaml`` maps brand → phrase → valence (VADER's -4..+4 scale), e.g. an airline
whose "red-eye" flights are a product, not a complaint. Each brand with overrides gets its own
scorer (built once); every other brand is scored with the plain lexicon.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from streams.cs_sentiment import CsSentiment
from streams.records import Mention, ScoredMention
from streams.rules import lexicon_path, load_lexicon
from streams.scoring import Scorer, SentimentLayer

__all__ = ["BrandScorer", "scorer_for", "worker_scorer"]


class BrandScorer(Scorer):
    """A scorer that applies ``overrides[mention.brand]`` as ``phrase_overrides``."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]],
        max_chunk_chars: int = 1000,
        sentiment_layer: SentimentLayer | None = None,
    ) -> None:
        super().__init__(max_chunk_chars=max_chunk_chars, sentiment_layer=sentiment_layer)
        self._by_brand = {
            brand: Scorer(phrases, max_chunk_chars=max_chunk_chars, sentiment_layer=sentiment_layer)
            for brand, phrases in overrides.items()
            if phrases
        }

    def score(self, mention: Mention, *, scored_at: datetime) -> ScoredMention:
        scorer = self._by_brand.get(mention.brand)
        if scorer is None:
            return super().score(mention, scored_at=scored_at)
        return scorer.score(mention, scored_at=scored_at)


def scorer_for(rules_path: Path, *, sentiment_layer: SentimentLayer | None = None) -> Scorer:
    """A scorer with the brand phrase overrides of the ``lexicon.yaml`` beside the rules.

    ``sentiment_layer`` (the worker and ``listenwell score`` pass the customer-service layer)
    computes ``compound`` beside VADER's own ``vader_compound``. Raises ``RuleFileError``
    (``file:line: reason``) for an invalid lexicon.
    """
    return BrandScorer(load_lexicon(lexicon_path(rules_path)), sentiment_layer=sentiment_layer)


def worker_scorer(rules_path: Path) -> Scorer:
    """The scorer the worker runs (and ``rules backtest``, and the benchmarks that stand for the
    worker): the brand phrase overrides beside the rules and the customer-service layer with its
    committed weights."""
    return scorer_for(rules_path, sentiment_layer=CsSentiment.load())
