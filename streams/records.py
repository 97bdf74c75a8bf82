"""The Kafka contract: every record listenwell writes or reads, as frozen pydantic v2 models.

Records are serialised as JSON (``to_json``/``from_json``). Each carries ``schema_version`` so a
reader can refuse what it does not understand; unknown fields are rejected (``extra="forbid"``).

The models are the contract. On the hot path raw and scored mentions are decoded by a faster
parser that gives the same objects and the same errors (:func:`decode_mention`,
:func:`decode_scored_mention`, msgspec), and records are built
from values already valid for them without validating them again (:func:`trusted`); see "Fast
paths" at the end. Encoding stays pydantic's: its serializer (Rust) was faster than msgspec
reaching into pydantic models through a hook.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum, StrEnum
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Self, TypeVar, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1
MAX_TEXT_CHARS = 40_000
"""Longest mention text accepted; longer records go to the dead-letter topic as ``oversize``."""


def _require_aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone (UTC)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("datetime is out of range in UTC") from None


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

    def to_json(self) -> bytes:
        """Serialise to compact UTF-8 JSON: msgspec on the fields' values, the same bytes as
        pydantic's ``model_dump_json`` (``tests/streams/test_codec.py`` compares the two on the
        crisis scenario and on hostile mentions) in half the time; every mention is published
        once as this."""
        values = dict(self.__dict__)
        mention = values["mention"].__dict__.copy()
        mention["segment"] = mention["segment"].__dict__
        values["mention"] = mention
        values["sentiment"] = values["sentiment"].__dict__
        values["empathy"] = values["empathy"].__dict__
        values["churn"] = values["churn"].__dict__
        return _JSON_ENCODER.encode(values)


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


_CANONICAL_JSON = json.JSONEncoder(separators=(",", ":")).encode
"""``json.dumps(value, separators=(",", ":"))`` without building an encoder at every call."""


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted labels (as Alertmanager does)."""
    canonical = _CANONICAL_JSON(sorted(labels.items()))
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

    def to_json(self) -> bytes:
        """Serialise to compact UTF-8 JSON: msgspec on the fields' values, the same bytes as
        pydantic's ``model_dump_json`` (``tests/streams/test_codec.py`` compares the two on the
        crisis scenario) in ~60% of its time; the worker publishes one for every customer whose
        health changed in a batch."""
        values = self.__dict__
        if not plain_float(values["risk_score"]):
            return super().to_json()
        values = dict(values)
        values["last_mentions"] = [example.__dict__ for example in self.last_mentions]
        return _JSON_ENCODER.encode(values)


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


# --- Fast paths ----------------------------------------------------------------------------------
# The worker decodes every raw mention and builds several records per mention, so both are on the
# hot path. The models above stay the contract: msgspec decodes only what it validates exactly as
# pydantic does, value for value (tests/streams/test_codec.py compares the two on the crisis
# scenario and on hostile inputs), everything else goes through pydantic, which also words every
# error.

_Model = TypeVar("_Model", bound=BaseModel)
_JSON_ENCODER = msgspec.json.Encoder()
_EXPONENT_SIGN_FROM = 1e16
"""From this magnitude up pydantic writes a float's exponent with its sign (``1e+16``) and msgspec
without (``1e16``); below it they write the same digits (``tests/streams/test_codec.py``)."""


def plain_float(value: float) -> bool:
    """Whether msgspec writes ``value`` as pydantic does (not NaN, and below 1e16 in size)."""
    return -_EXPONENT_SIGN_FROM < value < _EXPONENT_SIGN_FROM


def encode_json(values: Any) -> bytes:
    """``values`` (plain data, datetimes and enums) as compact UTF-8 JSON, with msgspec: what a
    record's fast ``to_json`` gives after checking its values write as pydantic writes them."""
    return _JSON_ENCODER.encode(values)


_new_instance = object.__new__
# The setters of the slots every pydantic model has, taken from their descriptors: calling them
# skips the attribute-name lookup ``object.__setattr__`` makes (trusted runs ~5 times a mention).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def trusted(cls: type[_Model], values: dict[str, Any]) -> _Model:
    """An instance of ``cls`` holding ``values`` as given, without validating them.

    Only for values already valid for the model (taken from validated records, or checked by the
    caller): ``values`` names every field, in the model's field order, with the types validation
    would give (``float`` for a float field, an enum member for an enum field). A lighter
    ``model_construct`` (no defaults, no aliases) for models without private attributes. Every
    field counts as set (``model_fields_set``), in one set shared by the instances of ``cls``
    (pydantic only ever adds field names to it, or copies it), which keeps the garbage
    collector's work per instance down.
    """
    fields_set = _ALL_FIELDS.get(cls)
    if fields_set is None:
        fields_set = _ALL_FIELDS[cls] = set(cls.__pydantic_fields__)
    model = _new_instance(cls)
    _set_dict(model, values)
    _set_fields_set(model, fields_set)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def _field_values(model: BaseModel) -> dict[str, Any]:
    """A model's field values by name, in field order (its ``__dict__``)."""
    return {name: model.__dict__[name] for name in type(model).__pydantic_fields__}


# Decoding raw mentions. The wire struct is generated from Mention's fields so the constraints
# have one source. Timestamps are decoded as text and parsed only in the one shape whose parse is
# known to equal pydantic's (RFC 3339 with "T", up to 6 decimals, "Z" or a valid offset): msgspec
# would accept naive times and round a 7th decimal where pydantic refuses or truncates.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_MAX_CACHED_SEGMENTS = 1024


def _wire_type(annotation: Any, metadata: list[Any]) -> Any:
    """The msgspec type that accepts a subset of what pydantic accepts for one field."""
    if get_origin(annotation) is UnionType:
        members = [a for a in get_args(annotation) if a is not NoneType]
        if len(members) != 1 or len(get_args(annotation)) != 2:
            raise TypeError(f"no fast decoding for {annotation}")
        return _wire_type(members[0], metadata) | None
    if annotation is datetime:
        # Parsed by _utc_timestamp, which does what _require_aware_utc does (AwareDatetime).
        if [getattr(m, "func", None) for m in metadata] != [_require_aware_utc]:
            raise TypeError("no fast decoding for a datetime other than AwareDatetime")
        return str
    if get_origin(annotation) is tuple:
        if get_args(annotation) != (str, Ellipsis) or metadata:
            raise TypeError(f"no fast decoding for {annotation}")
        return tuple[str, ...]
    if get_origin(annotation) is Literal or (
        isinstance(annotation, type) and issubclass(annotation, Enum)
    ):
        if metadata:
            raise TypeError(f"no fast decoding for constraints on {annotation}")
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _wire_struct(annotation)
    constraints: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.MinLen):
            constraints["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            constraints["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge):
            constraints["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            constraints["le"] = item.le
        elif getattr(item, "pattern", None) is not None:
            # pydantic matches with Rust's regex, where "$" is the end of the text; Python's "$"
            # also matches before a final newline, so the anchors become \A and \Z.
            pattern: str = item.pattern
            if not (pattern.startswith("^") and pattern.endswith("$")):
                raise TypeError(f"no fast decoding for the unanchored pattern {pattern!r}")
            constraints["pattern"] = r"\A" + pattern[1:-1] + r"\Z"
        else:
            raise TypeError(f"no fast decoding for the constraint {item!r}")
    if annotation not in (str, int, float) or (
        annotation in (int, float) and not constraints.keys() <= {"ge", "le"}
    ):
        raise TypeError(f"no fast decoding for {annotation} with {constraints}")
    return Annotated[annotation, msgspec.Meta(**constraints)] if constraints else annotation


def _wire_struct(model: type[BaseModel]) -> type[msgspec.Struct]:
    """A msgspec struct with ``model``'s fields, defaults and constraints (no unknown fields)."""
    if model.model_config.get("extra") != "forbid":
        raise TypeError(f"{model.__name__} must forbid extra fields")
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        wire = _wire_type(info.annotation, info.metadata)
        if info.is_required():
            fields.append((name, wire, msgspec.NODEFAULT))
        elif isinstance(info.default, BaseModel):
            fields.append((name, wire, msgspec.convert(_field_values(info.default), wire)))
        elif info.default is None or isinstance(info.default, int | float | str):
            fields.append((name, wire, info.default))
        elif info.default == ():
            fields.append((name, wire, ()))
        else:
            raise TypeError(f"no fast decoding for the default of {model.__name__}.{name}")
    return msgspec.defstruct(
        f"{model.__name__}Wire", fields, forbid_unknown_fields=True, frozen=True, kw_only=True
    )


class _MentionDecoder:
    """Raw bytes → :class:`Mention`: msgspec for what it validates exactly as pydantic does,
    pydantic for everything else (and so for every error)."""

    def __init__(self) -> None:
        self._wire = _wire_struct(Mention)
        self._decoder = msgspec.json.Decoder(self._wire)
        self._segments: dict[Any, Segment] = {}

    def __call__(self, data: bytes) -> Mention:
        try:
            wire = self._decoder.decode(data)
        except msgspec.DecodeError:
            return Mention.from_json(data)
        mention = self.from_wire(wire)
        return Mention.from_json(data) if mention is None else mention

    def from_wire(self, wire: Any) -> Mention | None:
        """The mention a decoded wire struct holds; None if pydantic must decide (a timestamp
        in a shape not parsed here)."""
        values = msgspec.structs.asdict(wire)
        created_at = _utc_timestamp(values["created_at"])
        fetched_at = _utc_timestamp(values["fetched_at"])
        if created_at is None or fetched_at is None:
            return None
        values["created_at"] = created_at
        values["fetched_at"] = fetched_at
        values["segment"] = self._segment(values["segment"])
        return trusted(Mention, values)

    def _segment(self, wire: Any) -> Segment:
        # Segments are few (bounded sets from configuration) and frozen, so one object each.
        segment = self._segments.get(wire)
        if segment is None:
            segment = trusted(Segment, msgspec.structs.asdict(wire))
            if len(self._segments) < _MAX_CACHED_SEGMENTS:
                self._segments[wire] = segment
        return segment


def _utc_timestamp(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime if it has the one shape parsed here, else None."""
    if _TIMESTAMP.fullmatch(text) is None:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class _ScoredMentionDecoder:
    """``mentions.scored`` bytes → :class:`ScoredMention`, as :class:`_MentionDecoder` does for
    raw mentions: msgspec for what it validates exactly as pydantic does (floats within their
    bounds, string tuples, enums), pydantic for everything else (and so for every error)."""

    def __init__(self, mentions: _MentionDecoder) -> None:
        self._mentions = mentions
        self._decoder = msgspec.json.Decoder(_wire_struct(ScoredMention))
        # Empathy and churn are mostly empty, and frozen: one object per distinct value (bounded).
        self._empathy: dict[Any, Empathy] = {}
        self._churn: dict[Any, Churn] = {}
        # A batch's mentions share their scoring time: the last one parsed is kept.
        self._scored_at: tuple[str, datetime | None] = ("", None)

    def __call__(self, data: bytes) -> ScoredMention:
        try:
            wire: Any = self._decoder.decode(data)
        except msgspec.DecodeError:
            return ScoredMention.from_json(data)
        mention = self._mentions.from_wire(wire.mention)
        text = wire.scored_at
        last_text, scored_at = self._scored_at
        if text != last_text:
            scored_at = _utc_timestamp(text)
            self._scored_at = (text, scored_at)
        if mention is None or scored_at is None:
            return ScoredMention.from_json(data)
        return trusted(
            ScoredMention,
            {
                "schema_version": wire.schema_version,
                "mention": mention,
                "sentiment": trusted(Sentiment, msgspec.structs.asdict(wire.sentiment)),
                "empathy": _interned(self._empathy, Empathy, wire.empathy),
                "churn": _interned(self._churn, Churn, wire.churn),
                "pii_redacted": wire.pii_redacted,
                "scored_at": scored_at,
            },
        )


def _interned(cache: dict[Any, _Model], model: type[_Model], wire: Any) -> _Model:
    """The frozen record ``wire`` holds, one object per distinct value up to a bound."""
    record = cache.get(wire)
    if record is None:
        record = trusted(model, msgspec.structs.asdict(wire))
        if len(cache) < _MAX_CACHED_SEGMENTS:
            cache[wire] = record
    return record


_mention_decoder = _MentionDecoder()

decode_mention: Callable[[bytes], Mention] = _mention_decoder
"""Parse and validate a raw mention: ``Mention.from_json``, faster. Raises the same
``pydantic.ValidationError`` for bad input."""

decode_scored_mention: Callable[[bytes], ScoredMention] = _ScoredMentionDecoder(_mention_decoder)
"""Parse and validate a scored mention (the split deployment's brand stage reads them):
``ScoredMention.from_json``, faster. Raises the same ``pydantic.ValidationError`` for bad
input."""
