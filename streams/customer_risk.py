"""A customer's risk score (0-100) from their recent mentions, with the reasons that make it up.

Pure functions and JSON-serialisable records only; the time to score at is always passed in.
:class:`streams.customers.CustomerTracker` decides when to score whom, and what an alert is.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from streams.records import AwareDatetime, ScoredMention, SentimentLabel, trusted
from streams.windows import TEXT_CHARS

__all__ = ["CustomerMention", "RiskScore", "risk_score", "scores_nothing"]


class CustomerMention(BaseModel):
    """What the risk score needs to remember about one mention of a customer."""

    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    id: str
    text: str
    label: SentimentLabel
    compound: float
    churn: str | None = None
    deficit: str | None = None
    rating: int | None = None
    nps: int | None = None

    @classmethod
    def of(cls, scored: ScoredMention) -> CustomerMention:
        """What to remember of ``scored`` (built from its validated values, not validated again:
        this runs for every mention of a known customer)."""
        mention = scored.mention
        sentiment = scored.sentiment
        churn = scored.churn.phrases
        deficit = scored.empathy.deficit
        return trusted(
            cls,
            {
                "at": mention.created_at,
                "id": mention.id,
                "text": mention.text[:TEXT_CHARS],
                "label": sentiment.label,
                "compound": sentiment.compound,
                "churn": churn[0] if churn else None,
                "deficit": deficit[0] if deficit else None,
                "rating": mention.rating,
                "nps": mention.nps,
            },
        )


@dataclass(frozen=True, slots=True)
class RiskScore:
    """A customer's risk (0-100) at one moment, with the reasons that make it up.

    A plain dataclass, not a pydantic model: every customer is re-scored hourly and it is never
    serialised, so validating it (or even ``model_construct``) cost more than the scoring.
    """

    score: float
    """0 to 100, a whole number."""
    reasons: tuple[str, ...]
    mentions: int
    """Mentions inside the lookback."""
    total: float = 0.0
    """The decayed points before capping and rounding: ``score`` is ``round(min(100, total))``."""


# Points one fresh mention contributes; older ones count less (half-life = lookback / 2).
# Text, rating and NPS are three views of one dissatisfaction, so a mention scores the strongest of
# them, not their sum; churn intent and empathy deficits add to it.
NEGATIVE_POINTS = 12.0
NEGATIVE_INTENSITY_POINTS = 8.0
LOW_RATING_POINTS = {1: 20.0, 2: 15.0}
DETRACTOR_POINTS = 8.0
DETRACTOR_STEP_POINTS = 2.0
CHURN_POINTS = 35.0
DEFICIT_POINTS = 8.0


@functools.cache
def _span(lookback: timedelta) -> str:
    if lookback % timedelta(days=1) == timedelta(0):
        return f"{lookback.days}d"
    if lookback % timedelta(hours=1) == timedelta(0):
        return f"{int(lookback.total_seconds() // 3600)}h"
    return f"{int(lookback.total_seconds() // 60)}m"


def scores_nothing(mention: CustomerMention) -> bool:
    """True if ``mention`` adds neither points nor a reason to :func:`risk_score`, at any age."""
    return (
        mention.label is not SentimentLabel.NEGATIVE
        and mention.churn is None
        and mention.deficit is None
        and (mention.rating is None or mention.rating not in LOW_RATING_POINTS)
        and (mention.nps is None or mention.nps > 6)
    )


def risk_score(
    mentions: Sequence[CustomerMention], *, at: datetime, lookback: timedelta
) -> RiskScore:
    """Score (a whole number 0-100) a customer's mentions within ``lookback`` before ``at``.

    Each mention scores its dissatisfaction (the strongest of: negative text, a rating of 1-2, an
    NPS detractor score 0-6) plus churn intent (the strongest signal) and empathy-deficit phrases;
    its points halve every ``lookback / 2``. The sum is capped at 100.
    """
    half_life = lookback / 2
    zero = timedelta(0)
    recent = 0
    total = 0.0
    negatives = 0
    churn: list[str] = []
    ratings: list[int] = []
    nps: list[int] = []
    deficits: list[str] = []
    # Every customer is re-scored each hour (see streams/customers.py), so this loop is hot: the age
    # is computed once, and the decay weight only for mentions that score points (adding
    # 0.0 * weight to a non-negative total changes nothing).
    for m in mentions:
        age = at - m.at
        if not zero <= age <= lookback:
            continue
        recent += 1
        dissatisfaction = 0.0
        if m.label is SentimentLabel.NEGATIVE:
            negatives += 1
            dissatisfaction = NEGATIVE_POINTS + NEGATIVE_INTENSITY_POINTS * max(0.0, -m.compound)
        if m.rating is not None and m.rating in LOW_RATING_POINTS:
            ratings.append(m.rating)
            dissatisfaction = max(dissatisfaction, LOW_RATING_POINTS[m.rating])
        if m.nps is not None and m.nps <= 6:
            nps.append(m.nps)
            detractor = DETRACTOR_POINTS + DETRACTOR_STEP_POINTS * (6 - m.nps)
            dissatisfaction = max(dissatisfaction, detractor)
        points = dissatisfaction
        if m.churn is not None:
            churn.append(m.churn)
            points += CHURN_POINTS
        if m.deficit is not None:
            deficits.append(m.deficit)
            points += DEFICIT_POINTS
        if points:
            total += 0.5 ** (age / half_life) * points
    reasons: list[str] = []
    if churn:
        reasons.append(f"churn intent: '{churn[-1]}'")
    if negatives:
        plural = "mention" if negatives == 1 else "mentions"
        reasons.append(f"{negatives} negative {plural} in {_span(lookback)}")
    if ratings:
        reasons.append(f"rating {min(ratings)}/5")
    if nps:
        reasons.append(f"NPS {min(nps)} (detractor)")
    if deficits:
        reasons.append(f"empathy deficit: '{deficits[-1]}'")
    score = float(round(min(100.0, total)))
    return RiskScore(score=score, reasons=tuple(reasons), mentions=recent, total=total)
