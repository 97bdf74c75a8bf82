"""The hot path's fast decoding and record building against the contract's own (pydantic).

Consumers and tests read the JSON the worker writes, and dead letters quote pydantic's errors, so
decoding raw mentions with msgspec and building records without validation must change nothing:
the same objects from the same raw bytes, the same errors for bad ones, and the same bytes out.
Checked on the crisis scenario end to end (every raw mention, every published record) and on
generated hostile inputs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.simulate import generate
from streams.clock import FakeClock
from streams.customer_risk import CustomerMention
from streams.engine import Engine
from streams.pipeline import BrandRecord, Pipeline, RawRecord
from streams.records import (
    CustomerHealth,
    CustomerTier,
    Example,
    Mention,
    MentionKind,
    ScoredMention,
    SentimentLabel,
    decode_mention,
    decode_scored_mention,
    plain_float,
    trusted,
)
from streams.rules import load_rules
from streams.scoring import Scorer
from streams.state import CustomerState

RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def outcome(decode: Callable[[bytes], Any], raw: bytes) -> Any:
    """The record, or the error: pydantic's error list (what dead letters quote), or any other
    exception's type and text."""
    try:
        return decode(raw)
    except ValidationError as exc:
        return exc.errors(include_url=False, include_context=False)
    except Exception as exc:
        return (type(exc), str(exc))


def field_types(record: Any) -> dict[str, type]:
    return {k: type(v) for k, v in record.__dict__.items()}


@dataclass(frozen=True)
class Decoders:
    """A record type of the contract (its pydantic ``from_json``) and its fast decoder."""

    contract: type[Mention] | type[ScoredMention]
    fast: Callable[[bytes], Any]
    parts: tuple[str, ...]  # nested records whose field types must match too
    utc_times: tuple[str, ...]

    def assert_same_decoding(self, raw: bytes) -> None:
        """Both decoders give the same record (same bytes out, same field types, UTC times) or the
        same errors."""
        expected = outcome(self.contract.from_json, raw)
        actual = outcome(self.fast, raw)
        assert actual == expected
        if isinstance(expected, self.contract):
            assert isinstance(actual, self.contract)
            assert actual.to_json() == expected.model_dump_json().encode()
            # Same types too (a UTC tzinfo, enum members), not merely equal values.
            for part in self.parts:
                assert field_types(getattr(actual, part)) == field_types(getattr(expected, part))
            assert field_types(actual) == field_types(expected)
            for name in self.utc_times:
                assert getattr(actual, name).tzinfo is UTC


MENTIONS = Decoders(Mention, decode_mention, (), ("created_at", "fetched_at"))
SCORED_MENTIONS = Decoders(
    ScoredMention,
    decode_scored_mention,
    ("mention", "sentiment", "empathy", "churn"),
    ("scored_at",),
)
# The names the tests call (hypothesis derives its derandomized examples from the test's source).
assert_same_decoding = MENTIONS.assert_same_decoding
assert_same_scored_decoding = SCORED_MENTIONS.assert_same_decoding


def assert_same_as_validated(record: Any) -> None:
    """A record built without validation equals, and is written as, the validated one."""
    validated = type(record).model_validate(record.model_dump())
    assert record == validated
    assert record.model_dump_json() == validated.model_dump_json()
    assert type(record).model_validate_json(record.model_dump_json()) == record


# --- the crisis scenario, end to end -------------------------------------------------------------


def test_the_crisis_scenario_decodes_and_builds_records_as_pydantic_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = Pipeline(
        Scorer(),
        Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2)),
        clock=FakeClock(datetime(2026, 1, 6, tzinfo=UTC)),
    )
    mentions = generate("crisis", seed=7, rate_scale=0.5)
    raws = [m.to_json() for m in mentions]
    assert raws == [m.model_dump_json().encode() for m in mentions]
    brands: dict[str, BrandRecord] = {}
    published = healths = stored = 0
    for start in range(0, len(raws), 500):
        records = [
            RawRecord("mentions.raw", 0, start + i, None, raw)
            for i, raw in enumerate(raws[start : start + 500])
        ]
        for raw in raws[start : start + 500]:
            assert_same_decoding(raw)
        with monkeypatch.context() as patch:
            # Good mentions never need pydantic's parser: the fast path is the one taken.
            patch.setattr(Mention, "from_json", None)
            result = pipeline.process(records, brands.get)
        assert len(result.scored) == len(records)
        outputs = [*result.scored, *result.alerts, *result.customers, *result.incidents]
        for record in outputs:
            assert_same_as_validated(record)
            # The fast encoders (scored mentions, customer health) write pydantic's bytes.
            assert record.to_json() == record.model_dump_json().encode()
        for changes in result.customer_changes.values():
            for customer in changes.upserts.values():
                assert customer.to_json() == customer.model_dump_json().encode()
                stored += 1
        healths += len(result.customers)
        published += len(outputs)
        for brand, state in result.states.items():
            assert_same_as_validated(state.engine)  # buckets, examples, baselines, customers
            brands[brand] = state
    assert published > len(raws)
    assert healths > 1000 and stored > 1000


# --- hostile raw mentions ------------------------------------------------------------------------


def good_doc(n: int = 1) -> dict[str, Any]:
    at = T0 + timedelta(seconds=n)
    mention = Mention(
        id=f"good:{n}",
        source="test",
        kind=MentionKind.REVIEW,
        brand="acme",
        text="Refund still missing.",
        author="a1",
        customer_id="c1",
        created_at=at,
        fetched_at=at,
        rating=2,
        nps=3,
    )
    doc: dict[str, Any] = json.loads(mention.to_json())
    return doc


# Timestamps of every shape near the one parsed fast: offsets, separators, decimals, bad dates.
DATES = ["2026-01-05", "2024-02-29", "2026-02-29", "0001-01-01", "9999-12-31", "2026-1-05"]
TIMES = ["00:00:00", "23:59:59", "23:59:60", "24:00:00", "12:30", "9:30:00", "12:60:00"]
FRACTIONS = ["", ".", ".1", ".123", ".123456", ".1234567", ".123456789", ",5"]
ZONES = [
    "",
    "Z",
    "z",
    "+00:00",
    "-00:00",
    "+05:30",
    "-12:00",
    "+23:59",
    "+24:00",
    "+0530",
    "+00:60",
]
TIMESTAMPS = [
    date + sep + time + fraction + zone
    for date, sep, time, fraction, zone in itertools.product(
        DATES, ["T", "t", " "], TIMES, FRACTIONS, ZONES
    )
]


def test_timestamps_of_every_shape_parse_as_pydantic_parses_them() -> None:
    accepted = 0
    for stamp in TIMESTAMPS:
        doc = good_doc()
        doc["created_at"] = stamp
        assert_same_decoding(json.dumps(doc).encode())
        accepted += isinstance(outcome(Mention.from_json, json.dumps(doc).encode()), Mention)
    assert 0 < accepted < len(TIMESTAMPS)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "post",
            "POST",
            "acme\n",
            "acme",
            "a:b",
            "a:b\n",
            "A:b",
            "x" * 201,
            "é",
            "2026-01-05T09:00:00Z",
            "2026-01-05T09:00:00",
            "1",
            "1.0",
            "",
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["product", "region", "channel", "x"]), st.text(max_size=3)),
    st.sampled_from(TIMESTAMPS),
)


def mutate(
    draw: st.DrawFn, doc: dict[str, Any], field: str, values: st.SearchStrategy[Any]
) -> None:
    """Replace ``doc``'s ``field`` with a drawn value, remove it, or add a field of a drawn name."""
    action = draw(st.integers(0, 2))
    if action == 0:
        doc[field] = draw(values)
    elif action == 1:
        doc.pop(field, None)
    else:
        doc[draw(st.text(min_size=1, max_size=8))] = draw(values)


# Each hostile-input test: 3,000 examples, the same ones every run.
HOSTILE_EXAMPLES = settings(
    max_examples=3000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def hostile_mention(draw: st.DrawFn) -> bytes:
    """A good mention with some fields replaced, removed or added, some JSON twists."""
    doc = good_doc(draw(st.integers(0, 10**6)))
    for field in draw(st.lists(st.sampled_from(sorted(doc)), max_size=3)):
        mutate(draw, doc, field, VALUES)
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    twist = draw(st.integers(0, 5))
    if twist == 0:  # a duplicate key: the last one wins in both
        raw = raw[:-1] + b', "brand": ' + json.dumps(draw(VALUES)).encode() + b"}"
    elif twist == 1:  # an escaped surrogate, paired or not
        raw = raw.replace(b'"Refund', draw(st.sampled_from([b'"\\ud83d\\ude00', b'"\\ud800'])))
    elif twist == 2:  # numbers written other ways
        raw = raw.replace(
            b'"rating": 2', draw(st.sampled_from([b'"rating": 2.0', b'"rating": 2e0']))
        )
    return raw


@HOSTILE_EXAMPLES
@given(hostile_mention())
def test_hostile_mentions_decode_to_the_same_mention_or_the_same_errors(raw: bytes) -> None:
    assert_same_decoding(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b"\xef\xbb\xbf{}",
        b'{"id": "\xc3\x28"}',
        b"[" * 100_000,
        b'{"a":' * 15_000 + b"1" + b"}" * 15_000,
    ],
    ids=["empty", "array", "null", "bom", "bad-utf8", "deep-array", "deep-object"],
)
def test_malformed_json_gives_pydantics_errors(raw: bytes) -> None:
    assert_same_decoding(raw)


# --- records built without validation ------------------------------------------------------------


def test_a_trusted_record_equals_the_validated_one() -> None:
    mention = Mention.model_validate(good_doc())
    scored = Scorer().score(mention, scored_at=T0)
    validated = ScoredMention.model_validate(scored.model_dump())
    assert scored == validated
    assert scored.to_json() == validated.to_json()
    copy = scored.model_copy(update={"pii_redacted": 2})
    assert copy.pii_redacted == 2 and scored.pii_redacted == 0
    assert trusted(Example, {"id": "x:1", "text": "t"}) == Example(id="x:1", text="t")


class OutOfRange:
    """A sentiment layer with a bug: a compound outside -1..1."""

    def compound(self, text: str, vader: tuple[float, float, float, float]) -> float:
        return 1.5


def test_a_scoring_bug_out_of_bounds_still_fails_validation() -> None:
    mention = Mention.model_validate(good_doc())
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Scorer(sentiment_layer=OutOfRange()).score(mention, scored_at=T0)


# --- scored mentions (the split deployment's brand stage decodes them) ----------------------------


def test_the_crisis_scenarios_scored_mentions_decode_as_pydantic_decodes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scorer = Scorer()
    mentions = generate("crisis", seed=7, rate_scale=0.3)
    raws = []
    for n, mention in enumerate(mentions):
        # A few scoring times, as batches would have them, some with microseconds.
        scored_at = T0 + timedelta(seconds=n // 500, microseconds=(n // 500) * 12_345)
        raws.append(scorer.score(mention, scored_at=scored_at).to_json())
    assert len(raws) > 1000
    for raw in raws:
        assert_same_scored_decoding(raw)
    with monkeypatch.context() as patch:
        # Good scored mentions never need pydantic's parser: the fast path is the one taken.
        patch.setattr(ScoredMention, "from_json", None)
        patch.setattr(Mention, "from_json", None)
        decoded = [decode_scored_mention(raw) for raw in raws]
    assert [d.to_json() for d in decoded] == raws


def good_scored_doc(n: int = 1) -> dict[str, Any]:
    mention = Mention.model_validate(good_doc(n))
    scored = Scorer().score(
        mention.model_copy(update={"text": "Nobody cares, I'm done, cancel my account."}),
        scored_at=T0 + timedelta(seconds=n),
    )
    doc: dict[str, Any] = json.loads(scored.to_json())
    return doc


SCORED_VALUES = st.one_of(
    VALUES,
    st.floats(-2.0, 2.0),
    st.sampled_from([0, 1, -1, -0.0, 1.0000000000000002, 1e-320, "0.5", True, "negative", "NEG"]),
    st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3),
)


@st.composite
def hostile_scored(draw: st.DrawFn) -> bytes:
    """A good scored mention with fields of it, or of its parts, replaced, removed or added."""
    doc = good_scored_doc(draw(st.integers(0, 10**6)))
    for _ in range(draw(st.integers(1, 3))):
        part = draw(st.sampled_from([None, "mention", "sentiment", "empathy", "churn"]))
        target = doc if part is None or not isinstance(doc.get(part), dict) else doc[part]
        field = draw(st.sampled_from(sorted(target) or ["x"]))
        mutate(draw, target, field, SCORED_VALUES)
    raw = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    if draw(st.booleans()):  # a duplicate key: the last one wins in both
        raw = raw[:-1] + b', "pii_redacted": ' + json.dumps(draw(SCORED_VALUES)).encode() + b"}"
    return raw


@HOSTILE_EXAMPLES
@given(hostile_scored())
def test_hostile_scored_mentions_decode_to_the_same_record_or_the_same_errors(raw: bytes) -> None:
    assert_same_scored_decoding(raw)


@pytest.mark.parametrize("raw", [b"", b"[]", b"null", b"{}", b'{"mention": {}}'])
def test_malformed_scored_json_gives_pydantics_errors(raw: bytes) -> None:
    assert_same_scored_decoding(raw)


# --- encoding scored mentions ---------------------------------------------------------------------

_SCORER = Scorer()


def pydantic_json(record: ScoredMention) -> bytes:
    return record.model_dump_json().encode()


def same_encoding(record: ScoredMention) -> None:
    """``ScoredMention.to_json`` gives pydantic's bytes, or fails where pydantic fails."""
    try:
        expected: Any = pydantic_json(record)
    except Exception as error:  # the failure itself is compared
        expected = type(error)
    try:
        actual: Any = record.to_json()
    except Exception as error:
        actual = type(error)
    if isinstance(expected, bytes) or isinstance(actual, bytes):
        assert actual == expected  # both failing (a lone surrogate in the text) is the same


def test_the_crisis_scenarios_scored_mentions_encode_as_pydantic_encodes_them() -> None:
    scorer = Scorer()
    mentions = generate("crisis", seed=7, rate_scale=0.3)
    for n, mention in enumerate(mentions):
        scored_at = T0 + timedelta(seconds=n // 500, microseconds=(n // 500) * 12_345)
        same_encoding(scorer.score(mention, scored_at=scored_at))
    assert len(mentions) > 1000


@HOSTILE_EXAMPLES
@given(hostile_mention(), st.integers(0, 10**6))
def test_hostile_mentions_once_scored_encode_as_pydantic_encodes_them(
    raw: bytes, microseconds: int
) -> None:
    try:
        mention = Mention.from_json(raw)
    except ValidationError:
        return
    scored_at = T0 + timedelta(microseconds=microseconds)
    same_encoding(_SCORER.score(mention, scored_at=scored_at))


def test_scored_mentions_with_timestamps_of_every_accepted_shape_encode_as_pydantic_does() -> None:
    encoded = 0
    for stamp in TIMESTAMPS:
        doc = good_doc()
        doc["created_at"] = doc["fetched_at"] = stamp
        try:
            mention = Mention.from_json(json.dumps(doc).encode())
        except ValidationError:
            continue
        for scored_at in (T0, T0 + timedelta(microseconds=120), mention.created_at):
            same_encoding(_SCORER.score(mention, scored_at=scored_at))
        encoded += 1
    assert encoded > 5


def test_customer_records_with_floats_msgspec_writes_otherwise_are_written_by_pydantic() -> None:
    """From 1e16 up pydantic writes ``1e+16`` and msgspec ``1e16``: the fast encoders of customer
    health and customer state leave such a record to pydantic (the worker's scores stay within
    0-100 and compounds within -1..1, so this never happens on the hot path)."""
    at = T0
    health = CustomerHealth.model_construct(
        brand="acme",
        customer_id="c1",
        risk_score=1e16,
        tier=CustomerTier.AT_RISK,
        updated_at=at,
    )
    assert health.to_json() == health.model_dump_json().encode()
    assert b'"risk_score":1e+16' in health.to_json()
    mention = CustomerMention(
        at=at, id="m:1", text="no refund", label=SentimentLabel.NEGATIVE, compound=-0.5
    )
    for score, compound in ((-2e17, -0.5), (50.0, 3e18), (float("nan"), -0.5)):
        state = CustomerState(last_mention_at=at, risk_score=score)
        state.mentions.append(mention.model_copy(update={"compound": compound}))
        assert state.to_json() == state.model_dump_json().encode()
    assert plain_float(99.9) and plain_float(-1.0) and not plain_float(1e16)
