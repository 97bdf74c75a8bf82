"""Records for the room's tests, built as the worker writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import (
    Alert,
    AlertState,
    Churn,
    CustomerHealth,
    CustomerTier,
    Empathy,
    Example,
    Incident,
    IncidentPoint,
    IncidentStatus,
    Mention,
    MentionKind,
    ScoredMention,
    Sentiment,
    SentimentLabel,
    fingerprint,
)

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def scored(
    n: int,
    *,
    brand: str = "acme",
    at: datetime | None = None,
    label: SentimentLabel = SentimentLabel.NEUTRAL,
    text: str | None = None,
    deficit: tuple[str, ...] = (),
    churn: tuple[str, ...] = (),
    author: str | None = None,
    customer: str | None = None,
    url: str | None = None,
    mention_id: str | None = None,
) -> ScoredMention:
    created = at or T0 + timedelta(minutes=n)
    compound = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[label.value]
    return ScoredMention(
        mention=Mention(
            id=mention_id or f"test:{brand}-{n}",
            source="test",
            kind=MentionKind.POST,
            brand=brand,
            text=text if text is not None else f"mention {n} of {brand}",
            author=author or f"author-{n}",
            customer_id=customer,
            url=url,
            created_at=created,
            fetched_at=created,
        ),
        sentiment=Sentiment(compound=compound, pos=0.0, neu=1.0, neg=0.0, label=label),
        empathy=Empathy(deficit=deficit),
        churn=Churn(phrases=churn),
        pii_redacted=0,
        scored_at=created + timedelta(seconds=5),
    )


def alert(
    brand: str = "acme",
    state: AlertState = AlertState.FIRING,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    **labels: str,
) -> Alert:
    all_labels = {"alertname": "NegativeSentimentSpike", "brand": brand, "severity": "critical"}
    all_labels.update(labels)
    return Alert(
        labels=all_labels,
        state=state,
        value=0.6,
        baseline=0.15,
        starts_at=starts_at or T0 + timedelta(hours=10),
        ends_at=ends_at,
        fingerprint=fingerprint(all_labels),
    )


def incident(
    brand: str = "acme",
    status: IncidentStatus = IncidentStatus.RECOVERED,
    onset: datetime | None = None,
    minutes: int = 120,
) -> Incident:
    labels = {"alertname": "NegativeSentimentSpike", "brand": brand, "severity": "critical"}
    onset = onset or T0 + timedelta(hours=9, minutes=54)
    series = tuple(
        IncidentPoint(
            minute=onset + timedelta(minutes=i),
            value=0.15 + 0.5 * (1 - abs(i - minutes / 2) / (minutes / 2)),
            baseline=0.15,
        )
        for i in range(minutes)
    )
    recovered = onset + timedelta(minutes=minutes) if status is IncidentStatus.RECOVERED else None
    resolved = onset + timedelta(minutes=minutes - 30) if recovered else None
    return Incident(
        id=f"{fingerprint(labels)}:{onset:%Y%m%dT%H%MZ}",
        fingerprint=fingerprint(labels),
        brand=brand,
        alertname="NegativeSentimentSpike",
        labels=labels,
        status=status,
        onset=onset,
        firing_at=onset + timedelta(minutes=11),
        peak_value=0.65,
        peak_at=onset + timedelta(minutes=minutes // 2),
        resolved_at=resolved,
        recovered_at=recovered,
        time_to_recover_s=None if recovered is None else (recovered - onset).total_seconds(),
        updated_at=onset + timedelta(minutes=minutes),
        series=series,
    )


def health(
    customer: str,
    tier: CustomerTier,
    risk: float,
    *,
    brand: str = "acme",
    at: datetime | None = None,
    mentions: tuple[tuple[str, str], ...] = (),
) -> CustomerHealth:
    return CustomerHealth(
        brand=brand,
        customer_id=customer,
        risk_score=risk,
        tier=tier,
        reasons=("churn intent: cancel my account",) if tier is not CustomerTier.HEALTHY else (),
        last_mentions=tuple(Example(id=i, text=t) for i, t in mentions),
        updated_at=at or T0 + timedelta(hours=12),
    )
