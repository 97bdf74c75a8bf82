"""Rule unit tests (``*.test.yaml``, like ``promtool test rules``) and backtests on the engine.

A test file sits beside the rules it tests::

    rule_files: [default.yaml]          # relative to the test file (default: every rule file there)
    lateness: 2m                        # the engine's allowed lateness (default 0s)
    tests:
      - name: a crisis fires and resolves
        input:
          # compact: a per-minute series of one brand (shares are exact per minute on average)
          - {brand: acme, from: "2026-01-05T06:00Z", minutes: 240, per_minute: 10,
             negative_share: 0.1}
          # explicit: one mention, scored by the real scorer (with lexicon.yaml's overrides)
          - {brand: acme, at: "2026-01-05T10:01Z", text: "I am cancelling my account",
             customer_id: c1, rating: 1}
        until: "2026-01-05T12:00Z"       # watermark at the end (default: last input + 1h)
        expected_alerts:
          - {alertname: NegativeSentimentSpike, state: firing, at: "2026-01-05T10:13Z",
             labels: {brand: acme, severity: critical}}

``at`` of an expected alert is ``starts_at`` for ``firing`` and ``ends_at`` for ``resolved``.
Alerts are compared on (time, state, alertname, brand, customer); any other labels given must be
among the alert's labels. Every problem in a test file is a ``RuleFileError`` (``file:line:
reason``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.brand_scoring import scorer_for
from streams.engine import Engine
from streams.records import (
    Alert,
    AlertState,
    Churn,
    Empathy,
    Incident,
    Mention,
    MentionKind,
    ScoredMention,
    Segment,
    Sentiment,
    SentimentLabel,
)
from streams.rules import (
    RuleFileError,
    RuleGroup,
    RuleSet,
    load_rules,
    rule_files,
)
from streams.scoring import Scorer
from streams.yamlfile import Duration, load_located, read_text, validation_reason

__all__ = [
    "BacktestResult",
    "CaseResult",
    "RuleSummary",
    "backtest",
    "load_test_file",
    "run_test_file",
    "test_files",
    "timeline",
]

MINUTE = timedelta(minutes=1)


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"invalid time {value!r} (use ISO 8601, e.g. 2026-01-05T09:00Z)"
            ) from None
    else:
        raise ValueError(f"invalid time {value!r} (use ISO 8601, e.g. 2026-01-05T09:00Z)")
    if at.tzinfo is None:
        raise ValueError(f"time {value!r} needs a timezone (e.g. a trailing Z)")
    return at.astimezone(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeriesInput(_Model):
    """``per_minute`` mentions of ``brand`` for ``minutes`` minutes from ``from``."""

    brand: str
    from_: datetime = Field(alias="from")
    minutes: int = Field(ge=1, le=60 * 24 * 31)
    per_minute: int = Field(ge=0, le=10_000)
    negative_share: float = Field(default=0.0, ge=0.0, le=1.0)
    deficit_share: float = Field(default=0.0, ge=0.0, le=1.0)
    churn_share: float = Field(default=0.0, ge=0.0, le=1.0)
    source: str = "test"
    segment: Segment = Segment()

    _time = field_validator("from_", mode="before")(_parse_time)


class MentionInput(_Model):
    """One explicit mention, scored by the real scorer."""

    brand: str
    at: datetime
    text: str
    source: str = "test"
    customer_id: str | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    segment: Segment = Segment()

    _time = field_validator("at", mode="before")(_parse_time)


class ExpectedAlert(_Model):
    alertname: str
    state: Literal["firing", "resolved"]
    at: datetime
    labels: dict[str, str] = {}

    _time = field_validator("at", mode="before")(_parse_time)


class TestCase(_Model):
    name: str
    input: tuple[SeriesInput | MentionInput, ...]
    until: datetime | None = None
    expected_alerts: tuple[ExpectedAlert, ...] = ()

    _time = field_validator("until", mode="before")(lambda v: None if v is None else _parse_time(v))


class TestFile(_Model):
    rule_files: tuple[str, ...] | None = None
    lateness: Duration = timedelta(0)
    tests: tuple[TestCase, ...] = Field(min_length=1)


@dataclass
class LoadedTests:
    path: Path
    spec: TestFile
    rules: RuleSet
    scorer: Scorer
    lines: list[int]
    """Line of each test case."""


def test_files(path: Path) -> list[Path]:
    """``*.test.yaml`` at ``path`` (a test file itself, or a folder's)."""
    if not path.is_dir():
        return [path]
    return sorted(path.glob("*.test.yaml"))


def load_test_file(path: Path) -> LoadedTests:
    """Parse and validate a rule test file and load the rules it names."""
    file = str(path)
    text = read_text(path, RuleFileError, "test file")
    data, loc = load_located(text, file, RuleFileError, empty="empty test file (expected 'tests:')")
    if isinstance(data, dict):
        for i, case in enumerate(data.get("tests") or []):
            for j, item in enumerate(case.get("input") or [] if isinstance(case, dict) else []):
                if isinstance(item, dict):
                    # Tell the two input forms apart before validation, for clearer errors.
                    model: type[_Model] = MentionInput if "text" in item else SeriesInput
                    try:
                        case["input"][j] = model.model_validate(item)
                    except ValidationError as exc:
                        where, reason = validation_reason(exc)
                        line = loc.line_of(("tests", i, "input", j, *where))
                        raise RuleFileError(f"{file}:{line}: input {j + 1}: {reason}") from None
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        where, reason = validation_reason(exc)
        raise RuleFileError(f"{file}:{loc.line_of(where)}: {reason}") from None
    if spec.rule_files is None:
        files = rule_files(path.parent)
    else:
        files = [path.parent / name for name in spec.rule_files]
    groups: list[RuleGroup] = []
    for rule_file in files:
        groups.extend(load_rules(rule_file).groups)
    rules = RuleSet(groups=tuple(groups), source=file)
    lines = [loc.line_of(("tests", i)) for i in range(len(spec.tests))]
    return LoadedTests(path, spec, rules, scorer_for(path.parent), lines)


# --- inputs -------------------------------------------------------------------------------------

_NEGATIVE = Sentiment(compound=-0.6, pos=0.0, neu=0.5, neg=0.5, label=SentimentLabel.NEGATIVE)
_POSITIVE = Sentiment(compound=0.4, pos=0.4, neu=0.6, neg=0.0, label=SentimentLabel.POSITIVE)
_DEFICIT = Empathy(deficit=("no one cares",), score=-1.0)
_NO_EMPATHY = Empathy()
_CHURN = Churn(phrases=("switching to",))
_NO_CHURN = Churn()


def _spread(k: int, share: float) -> bool:
    """Whether the k-th item is one of a ``share`` spread evenly (exact on every prefix)."""
    return math.floor((k + 1) * share + 1e-9) > math.floor(k * share + 1e-9)


def series_mentions(series: SeriesInput, serial: int) -> list[ScoredMention]:
    """The series as scored mentions, spread evenly over each minute."""
    out: list[ScoredMention] = []
    k = 0
    for m in range(series.minutes):
        minute = series.from_ + m * MINUTE
        for j in range(series.per_minute):
            at = minute + timedelta(seconds=60 * j / series.per_minute)
            mention = Mention(
                id=f"test:{serial}-{k}",
                source=series.source,
                kind=MentionKind.POST,
                brand=series.brand,
                text="(series)",
                author="test",
                created_at=at,
                fetched_at=at,
                segment=series.segment,
            )
            out.append(
                ScoredMention(
                    mention=mention,
                    sentiment=_NEGATIVE if _spread(k, series.negative_share) else _POSITIVE,
                    empathy=_DEFICIT if _spread(k, series.deficit_share) else _NO_EMPATHY,
                    churn=_CHURN if _spread(k, series.churn_share) else _NO_CHURN,
                    pii_redacted=0,
                    scored_at=at,
                )
            )
            k += 1
    return out


def _explicit(item: MentionInput, serial: int, scorer: Scorer) -> ScoredMention:
    mention = Mention(
        id=f"test:{serial}",
        source=item.source,
        kind=MentionKind.REVIEW if item.rating is not None else MentionKind.POST,
        brand=item.brand,
        text=item.text,
        author="test",
        customer_id=item.customer_id,
        created_at=item.at,
        fetched_at=item.at,
        rating=item.rating,
        nps=item.nps,
        segment=item.segment,
    )
    return scorer.score(mention, scored_at=item.at)


def run_engine(
    engine: Engine, mentions: Iterable[ScoredMention], until: datetime | None
) -> tuple[list[Alert], list[Incident]]:
    """Feed mentions (sorted by event time per brand) and advance every brand to ``until``."""
    per_brand: dict[str, list[ScoredMention]] = {}
    for scored in mentions:
        per_brand.setdefault(scored.mention.brand, []).append(scored)
    alerts: list[Alert] = []
    incidents: dict[str, Incident] = {}
    for brand in sorted(per_brand):
        batch = sorted(per_brand[brand], key=lambda s: s.mention.created_at)
        state = engine.new_state(brand)
        outputs = [engine.process(state, batch[i : i + 500]) for i in range(0, len(batch), 500)]
        end = until if until is not None else batch[-1].mention.created_at + timedelta(hours=1)
        outputs.append(engine.advance(state, end))
        for out in outputs:
            alerts.extend(out.alerts)
            for incident in out.incidents:
                incidents[incident.id] = incident
    alerts.sort(key=lambda a: (_alert_time(a), a.alertname, a.state))
    return alerts, list(incidents.values())


def _alert_time(alert: Alert) -> datetime:
    if alert.state is AlertState.RESOLVED and alert.ends_at is not None:
        return alert.ends_at
    return alert.starts_at


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(at: datetime, state: str, alertname: str, labels: dict[str, str]) -> str:
    who = " ".join(f"{k}={labels[k]}" for k in ("brand", "customer") if k in labels)
    return f"{_iso(at)} {state:<8} {alertname} {who}".rstrip()


@dataclass
class CaseResult:
    name: str
    line: int
    passed: bool
    diff: list[str] = field(default_factory=list)


def run_test_file(loaded: LoadedTests) -> list[CaseResult]:
    """Run every case of a loaded test file."""
    results: list[CaseResult] = []
    for case, line in zip(loaded.spec.tests, loaded.lines, strict=True):
        engine = Engine(loaded.rules, allowed_lateness=loaded.spec.lateness)
        mentions: list[ScoredMention] = []
        for serial, item in enumerate(case.input):
            if isinstance(item, SeriesInput):
                mentions.extend(series_mentions(item, serial))
            else:
                mentions.append(_explicit(item, serial, loaded.scorer))
        alerts, _ = run_engine(engine, mentions, case.until)
        got = {_line(_alert_time(a), a.state, a.alertname, a.labels): a for a in alerts}
        want = {_line(e.at, e.state, e.alertname, e.labels): e for e in case.expected_alerts}
        got_lines = sorted(got)
        want_lines = sorted(want)
        diff = list(
            difflib.unified_diff(want_lines, got_lines, "expected", "got", lineterm="", n=99)
        )
        for key in sorted(set(got) & set(want)):
            actual = got[key].labels
            for name, value in want[key].labels.items():
                if actual.get(name) != value:
                    diff.append(f"  {key}: label {name}={actual.get(name)!r}, expected {value!r}")
        results.append(CaseResult(case.name, line, passed=not diff, diff=diff))
    return results


# --- backtest -----------------------------------------------------------------------------------


@dataclass
class RuleSummary:
    alertname: str
    alerts: int
    """Episodes that fired."""
    firing: timedelta
    """Total firing time (episodes still firing at the end count up to the end)."""
    spans: list[tuple[datetime, datetime]]


@dataclass
class BacktestResult:
    alerts: list[Alert]
    incidents: list[Incident]
    summaries: list[RuleSummary]
    start: datetime
    end: datetime


def backtest(
    rules: RuleSet,
    mentions: Sequence[Mention],
    scorer: Scorer,
    *,
    lateness: timedelta = timedelta(minutes=2),
    tail: timedelta = timedelta(hours=1),
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Score past mentions and run the rules over them, as the worker would have."""
    scored: list[ScoredMention] = []
    for i, mention in enumerate(mentions):
        scored.append(scorer.score(mention, scored_at=mention.created_at))
        if progress is not None and i % 10_000 == 0:
            progress(i)
    if not scored:
        now = datetime.now(UTC)
        return BacktestResult([], [], [], now, now)
    start = min(s.mention.created_at for s in scored)
    end = max(s.mention.created_at for s in scored) + tail
    engine = Engine(rules, allowed_lateness=lateness)
    alerts, incidents = run_engine(engine, scored, end)
    open_: dict[str, datetime] = {}
    spans: dict[str, list[tuple[datetime, datetime]]] = {r.alert: [] for r in rules.rules}
    for alert in alerts:
        if alert.state is AlertState.FIRING:
            open_[alert.fingerprint] = alert.starts_at
        elif alert.fingerprint in open_:
            began = open_.pop(alert.fingerprint)
            spans.setdefault(alert.alertname, []).append((began, alert.ends_at or end))
    names = {a.fingerprint: a.alertname for a in alerts}
    for fp, began in open_.items():
        spans.setdefault(names[fp], []).append((began, end))
    summaries = [
        RuleSummary(
            alertname=name,
            alerts=len(episodes),
            firing=sum((b - a for a, b in episodes), timedelta(0)),
            spans=sorted(episodes),
        )
        for name, episodes in spans.items()
    ]
    return BacktestResult(alerts, incidents, summaries, start, end)


def timeline(
    spans: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime, width: int = 60
) -> str:
    """A text bar from ``start`` to ``end``: ``█`` where an alert was firing, ``·`` elsewhere."""
    total = (end - start) / width
    cells = []
    for i in range(width):
        a, b = start + i * total, start + (i + 1) * total
        cells.append("█" if any(s < b and e > a for s, e in spans) else "·")
    return "".join(cells)
