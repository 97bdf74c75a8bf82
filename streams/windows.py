"""Event-time windows: per-brand minute buckets, an O(1) baseline, and customer risk scores.

Pure functions and JSON-serialisable state only; time is always passed in, never read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from streams.records import AwareDatetime, Example, ScoredMention, SentimentLabel

MINUTE = timedelta(minutes=1)
EXAMPLES_PER_BUCKET = 3
TEXT_CHARS = 280


def floor_minute(at: datetime) -> datetime:
    """Start of the minute that contains ``at``."""
    return at.replace(second=0, microsecond=0)


class ExampleMention(BaseModel):
    """A mention kept as evidence: id, truncated text and how negative it was."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    compound: float

    def example(self) -> Example:
        return Example(id=self.id, text=self.text)


def _most_negative(examples: Iterable[ExampleMention], limit: int) -> list[ExampleMention]:
    # Ties broken by id so the choice never depends on arrival order.
    return sorted(examples, key=lambda e: (e.compound, e.id))[:limit]


class MinuteBucket(BaseModel):
    """Counts for one brand and one event-time minute."""

    model_config = ConfigDict(extra="forbid")

    minute: AwareDatetime
    count: int = 0
    negative: int = 0
    compound_sum: float = 0.0
    deficit: int = 0
    churn: int = 0
    empathy_positive: int = 0
    examples: list[ExampleMention] = []
    """The most negative mentions of the minute (at most ``EXAMPLES_PER_BUCKET``)."""

    def add(self, scored: ScoredMention) -> None:
        """Count one mention into this bucket."""
        self.count += 1
        self.compound_sum += scored.sentiment.compound
        if scored.sentiment.label is SentimentLabel.NEGATIVE:
            self.negative += 1
            candidate = ExampleMention(
                id=scored.mention.id,
                text=scored.mention.text[:TEXT_CHARS],
                compound=scored.sentiment.compound,
            )
            self.examples = _most_negative([*self.examples, candidate], EXAMPLES_PER_BUCKET)
        if scored.empathy.deficit:
            self.deficit += 1
        if scored.churn.intent:
            self.churn += 1
        if scored.empathy.positive:
            self.empathy_positive += 1


class WindowStats(BaseModel):
    """Sums over a sliding window of closed minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int
    negative: int
    compound_sum: float
    deficit: int
    churn: int
    empathy_positive: int
    examples: tuple[Example, ...]

    @property
    def negative_share(self) -> float:
        return self.negative / self.count if self.count else 0.0

    @property
    def mean_compound(self) -> float:
        return self.compound_sum / self.count if self.count else 0.0

    @property
    def deficit_share(self) -> float:
        return self.deficit / self.count if self.count else 0.0

    @property
    def churn_share(self) -> float:
        return self.churn / self.count if self.count else 0.0


def window_stats(
    buckets: Sequence[MinuteBucket], *, end: datetime, minutes: int, examples: int = 3
) -> WindowStats:
    """Aggregate the buckets of the ``minutes`` minutes before ``end`` (exclusive)."""
    start = end - minutes * MINUTE
    inside = [b for b in buckets if start <= b.minute < end]
    picked = _most_negative((e for b in inside for e in b.examples), examples) if examples else []
    # One pass instead of six sums (this runs for every rule at every closed minute). The float
    # sum adds in the same order as ``sum`` did (from 0), so the result is bit-for-bit the same.
    count = negative = deficit = churn = empathy_positive = 0
    compound_sum = 0.0
    for b in inside:
        count += b.count
        negative += b.negative
        compound_sum += b.compound_sum
        deficit += b.deficit
        churn += b.churn
        empathy_positive += b.empathy_positive
    return WindowStats(
        count=count,
        negative=negative,
        compound_sum=compound_sum,
        deficit=deficit,
        churn=churn,
        empathy_positive=empathy_positive,
        examples=tuple(e.example() for e in picked),
    )


class Baseline(BaseModel):
    """Exponentially weighted per-minute sums: a brand's normal, in constant memory.

    Each closed minute multiplies every sum by ``exp(-1 minute / time_constant)`` and adds the
    minute's counts, so the ratios (negative share, mean compound) follow the recent past with that
    time constant. ``minutes`` and ``volume`` count what was fed, for the warm-up guard.
    """

    model_config = ConfigDict(extra="forbid")

    count: float = 0.0
    negative: float = 0.0
    compound_sum: float = 0.0
    deficit: float = 0.0
    churn: float = 0.0
    weight: float = 0.0
    """Sum of the decayed minute weights: ``count / weight`` is the mean count per minute."""
    minutes: int = 0
    volume: int = 0

    def feed(
        self, bucket: MinuteBucket | None, time_constant: timedelta, *, times: int = 1
    ) -> None:
        """Fold ``times`` closed minutes holding ``bucket`` (``None``: no mentions) into sums."""
        if times <= 0:
            return
        step = math.exp(-MINUTE / time_constant)
        decay = step**times
        self.weight = self.weight * decay + (times if step >= 1.0 else (1.0 - decay) / (1.0 - step))
        self.count *= decay
        self.negative *= decay
        self.compound_sum *= decay
        self.deficit *= decay
        self.churn *= decay
        self.minutes += times
        if bucket is not None:
            self.count += bucket.count
            self.negative += bucket.negative
            self.compound_sum += bucket.compound_sum
            self.deficit += bucket.deficit
            self.churn += bucket.churn
            self.volume += bucket.count

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.count if self.count > 0.0 else None

    @property
    def deficit_share(self) -> float | None:
        return self.deficit / self.count if self.count > 0.0 else None

    @property
    def churn_share(self) -> float | None:
        return self.churn / self.count if self.count > 0.0 else None

    @property
    def mean_compound(self) -> float | None:
        return self.compound_sum / self.count if self.count > 0.0 else None

    @property
    def count_per_minute(self) -> float | None:
        return self.count / self.weight if self.weight > 0.0 else None


# --- customers ----------------------------------------------------------------------------------


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
        mention = scored.mention
        return cls(
            at=mention.created_at,
            id=mention.id,
            text=mention.text[:TEXT_CHARS],
            label=scored.sentiment.label,
            compound=scored.sentiment.compound,
            churn=scored.churn.phrases[0] if scored.churn.phrases else None,
            deficit=scored.empathy.deficit[0] if scored.empathy.deficit else None,
            rating=mention.rating,
            nps=mention.nps,
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
    # Every customer is re-scored each hour (see streams/engine.py), so this loop is hot: the age
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
    return RiskScore(score=score, reasons=tuple(reasons), mentions=recent)
