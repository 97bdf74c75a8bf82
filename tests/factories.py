"""Records for tests: mentions, scored mentions and alerts with sensible defaults.

Every test module builds its records here instead of defining its own copy; a module that needs
other defaults binds them with ``functools.partial`` (keywords given at the call still win).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import (
    Alert,
    AlertState,
    Churn,
    Empathy,
    Example,
    Mention,
    MentionKind,
    ScoredMention,
    Sentiment,
    SentimentLabel,
    fingerprint,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""When mentions are written by default (a Monday morning)."""

ALERT_T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
"""When alerts start by default."""


def mention(
    n: int | str = 1,
    seconds: float = 0.0,
    *,
    at: datetime = T0,
    minutes: float = 0.0,
    brand: str = "acme",
    text: str | None = None,
    author: str | None = None,
    source: str = "test",
    kind: MentionKind = MentionKind.POST,
    customer: str | None = None,
    rating: int | None = None,
    nps: int | None = None,
) -> Mention:
    """Mention ``<source>:<n>`` written ``seconds`` and ``minutes`` after ``at`` (and fetched
    then); its text defaults to ``mention <n>``, its author to ``a<n>``."""
    when = at + timedelta(seconds=seconds, minutes=minutes)
    return Mention(
        id=f"{source}:{n}",
        source=source,
        kind=kind,
        brand=brand,
        text=f"mention {n}" if text is None else text,
        author=f"a{n}" if author is None else author,
        customer_id=customer,
        created_at=when,
        fetched_at=when,
        rating=rating,
        nps=nps,
    )


def sentiment(compound: float) -> Sentiment:
    """VADER-like scores for ``compound``: its positive and negative parts, and the label by
    VADER's ±0.05 thresholds."""
    if compound <= -0.05:
        label = SentimentLabel.NEGATIVE
    elif compound >= 0.05:
        label = SentimentLabel.POSITIVE
    else:
        label = SentimentLabel.NEUTRAL
    return Sentiment(
        compound=compound,
        pos=max(0.0, compound),
        neu=1.0 - abs(compound),
        neg=max(0.0, -compound),
        label=label,
    )


def scored(
    n: int | str = 1,
    compound: float = 0.4,
    *,
    at: datetime = T0,
    deficit: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    churn: tuple[str, ...] = (),
    **fields: object,
) -> ScoredMention:
    """``mention(n, at=at, **fields)`` scored ``compound`` with these empathy and churn phrases,
    at the time it was written."""
    written = mention(n, at=at, **fields)  # type: ignore[arg-type]
    return ScoredMention(
        mention=written,
        sentiment=sentiment(compound),
        empathy=Empathy(deficit=deficit, positive=positive),
        churn=Churn(phrases=churn),
        pii_redacted=0,
        scored_at=written.created_at,
    )


def alert(
    name: str = "NegativeSentimentSpike",
    state: AlertState = AlertState.FIRING,
    starts: datetime = ALERT_T0,
    *,
    value: float = 0.6,
    baseline: float | None = 0.2,
    severity: str | None = "critical",
    annotations: dict[str, str] | None = None,
    examples: tuple[Example, ...] = (),
    **labels: str,
) -> Alert:
    """Alert ``name`` with ``labels`` (and ``severity``) in ``state``; a resolved one ended 20
    minutes after it started."""
    all_labels = {"alertname": name, **({"severity": severity} if severity else {}), **labels}
    return Alert(
        labels=all_labels,
        annotations=annotations or {},
        state=state,
        value=value,
        baseline=baseline,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=20) if state == AlertState.RESOLVED else None,
        fingerprint=fingerprint(all_labels),
        examples=examples,
    )
