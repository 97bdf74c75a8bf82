"""The Kafka contract: every record listenwell writes or reads, as frozen pydantic v2 models.

Records are serialised as JSON (``to_json``/``from_json``). Each carries ``schema_version`` so a
reader can refuse what it does not understand; unknown fields are rejected (``extra="forbid"``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1
MAX_TEXT_CHARS = 40_000
"""Longest mention text accepted; longer records go to the dead-letter topic as ``oversize``."""


def _require_aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone (UTC)")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware_utc)]


class Record(BaseModel):
    """Base of every record: frozen, strict about unknown fields, JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1

    def to_json(self) -> bytes:
        """Serialise to compact UTF-8 JSON."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Parse and validate JSON; raises ``pydantic.ValidationError`` on bad input."""
        return cls.model_validate_json(data)


class MentionKind(StrEnum):
    POST = "post"
    COMMENT = "comment"
    REVIEW = "review"
    SURVEY = "survey"
    REPLY = "reply"


class Segment(BaseModel):
    """Bounded segment labels (values come from configuration, never free text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product: str | None = None
    region: str | None = None
    channel: str | None = None


class Mention(Record):
    """One thing somebody said about a brand, as a connector saw it."""

    id: str = Field(min_length=3, max_length=200, pattern=r"^[a-z0-9_]+:.+$")
    source: str = Field(min_length=1, max_length=40)
    kind: MentionKind
    brand: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str = Field(max_length=MAX_TEXT_CHARS)
    author: str = Field(min_length=1, max_length=200)
    customer_id: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    created_at: AwareDatetime
    fetched_at: AwareDatetime
    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    segment: Segment = Segment()
    lang: str | None = Field(default=None, max_length=16)


class SentimentLabel(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Sentiment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    compound: float = Field(ge=-1.0, le=1.0)
    pos: float = Field(ge=0.0, le=1.0)
    neu: float = Field(ge=0.0, le=1.0)
    neg: float = Field(ge=0.0, le=1.0)
    label: SentimentLabel


class Empathy(BaseModel):
    """Positive-empathy terms and empathy-deficit phrases found in the text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    positive: tuple[str, ...] = ()
    deficit: tuple[str, ...] = ()
    score: float = Field(default=0.0, ge=-1.0, le=1.0)


class Churn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phrases: tuple[str, ...] = ()

    @property
    def intent(self) -> bool:
        return bool(self.phrases)


class ScoredMention(Record):
    """A mention with PII redacted and its sentiment, empathy and churn scores."""

    mention: Mention
    sentiment: Sentiment
    empathy: Empathy
    churn: Churn
    pii_redacted: int = Field(ge=0)
    scored_at: AwareDatetime


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted labels (as Alertmanager does)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Example(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    text: str


class Alert(Record):
    """One alert transition, in the Prometheus/Alertmanager model plus the evidence behind it."""

    labels: dict[str, str]
    annotations: dict[str, str] = {}
    state: AlertState
    value: float
    baseline: float | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    fingerprint: str
    examples: tuple[Example, ...] = ()

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def transition_id(self) -> str:
        """Identity of this transition: the same firing or resolve is the same notification."""
        return f"{self.fingerprint}:{self.state}:{self.starts_at.isoformat()}"


class CustomerTier(StrEnum):
    HEALTHY = "healthy"
    WATCH = "watch"
    AT_RISK = "at_risk"


class CustomerHealth(Record):
    """Risk of losing one customer of one brand, with the reasons behind the score."""

    brand: str
    customer_id: str
    risk_score: float = Field(ge=0.0, le=100.0)
    tier: CustomerTier
    reasons: tuple[str, ...] = ()
    last_mentions: tuple[Example, ...] = ()
    updated_at: AwareDatetime


class IncidentPoint(BaseModel):
    """One closed minute of an incident: the rule's metric and its baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minute: AwareDatetime
    value: float
    baseline: float | None = None


class IncidentStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    """The alert resolved; the metric is not yet back inside its baseline band for long enough."""
    RECOVERED = "recovered"
    UNRECOVERED = "unrecovered"
    """Tracking gave up (a day after resolving) without a sustained return to the baseline."""


class Incident(Record):
    """One firing episode of a brand-level alert, followed from onset through to recovery.

    ``id`` is the alert fingerprint and the onset; ``onset`` is when the condition first held
    (the start of pending), ``firing_at`` the alert's ``starts_at``. ``recovered_at`` is the end of
    the first period of the rule's ``recovery`` length (default 30 minutes), after the resolve, in
    which the metric stayed inside its baseline band; ``time_to_recover_s`` runs from onset to it.
    ``series`` holds one point per closed minute since onset (bounded; ``series_truncated`` says
    when later minutes were left out).
    """

    id: str
    fingerprint: str
    brand: str
    alertname: str
    labels: dict[str, str] = {}
    status: IncidentStatus
    onset: AwareDatetime
    firing_at: AwareDatetime
    firings: int = Field(default=1, ge=1)
    """Firings folded into this incident (a re-fire before recovery continues it)."""
    peak_value: float
    peak_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    recovered_at: AwareDatetime | None = None
    time_to_recover_s: float | None = None
    updated_at: AwareDatetime
    series: tuple[IncidentPoint, ...] = ()
    series_truncated: bool = False


class DeadLetter(Record):
    """A raw record that could not be processed, kept byte-for-byte with the reason."""

    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    raw_base64: str = Field(description="the original bytes, base64-encoded so every byte survives")
    received_at: AwareDatetime

    @classmethod
    def of(
        cls, raw: bytes, *, reason: str, detail: str, topic: str, partition: int, offset: int
    ) -> DeadLetter:
        return cls(
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
            detail=detail[:2000],
            raw_base64=base64.b64encode(raw).decode("ascii"),
            received_at=datetime.now(UTC),
        )

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.raw_base64)


def json_default(value: Any) -> Any:
    """``json.dumps`` default for datetimes in non-record payloads."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


ERASURE_KEY = b"@erasure"
"""Message key of an :class:`ErasureCommand` on ``mentions.raw`` (never a valid brand)."""

MAX_ERASURE_IDS = 1000
"""Mention ids per :class:`ErasureCommand`; a longer list is split over several commands."""


class ErasureCommand(Record):
    """A right-to-erasure request for the worker, written by ``listenwell forget``.

    It travels on ``mentions.raw``, one copy per partition, so each partition's worker applies it
    in order with the mentions it has already folded into its state: every copy of the listed
    mentions (examples, a customer's recent mentions) and the customer named leave the worker's
    tables. ``brand`` narrows it to one brand.
    """

    request_id: str = Field(min_length=1, max_length=64)
    mention_ids: tuple[str, ...] = Field(default=(), max_length=MAX_ERASURE_IDS)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    brand: str | None = Field(default=None, min_length=1, max_length=80)
