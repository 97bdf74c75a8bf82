"""Spike benchmark: negative and empathy-deficit bursts in streams of real labelled texts.

For each base volume (5 to 5,000 mentions an hour) it builds brand streams from the TweetEval
sentiment *test* split (``../shared/data/sentiment-dev/tweeteval/sentiment``; the validation split
and the VADER tweets are the sentiment model's training data, so its labels on them would be
optimistic). Human labels build the streams; detection sees the labels of the real
``streams.scoring.Scorer`` with the customer-service layer, as the worker scores them (each distinct
text scored once). A stream has:

- Poisson arrivals with a daily cycle (``DAILY_AMPLITUDE``: from 0.4x the mean rate at night to
  1.6x in the afternoon, UTC);
- a human negative share drawn per stream from ``BASE_NEGATIVE`` that wobbles by
  ``SHARE_WOBBLE`` (relative) over the day: calm streams are not perfectly stationary;
- ``DEFICIT_SHARE`` of texts the Scorer flags with an empathy-deficit phrase. The test split holds
  only a few dozen such texts, so the deficit pool is those plus human-negative test texts with a
  customer-care complaint from ``DEFICIT_SUFFIXES`` appended, all scored by the Scorer (only texts
  it flags are kept); the report says how many of each;
- in burst streams, one burst every ``SLOT_HOURS`` after a calm warm-up, its configuration drawn
  without replacement from ``NEGATIVE_BURSTS`` and ``DEFICIT_BURSTS``: for its duration the human
  negative share (or the deficit share) is multiplied by its factor, at the same volume;
- calm streams: no burst at all.

Two rule sets run on every stream, in one run:

- **old**: the ``NegativeSentimentSpike`` and ``EmpathyDeficit`` rules shipped before issue 13
  (:func:`old_rules`: min_volume 40, fixed shares and increases over the engine's 6-hour
  baseline, ``for``/``keep_firing_for``/``cooldown``), as a faithful per-minute copy of the
  engine's old condition and state machine (:class:`OldRule`). Those keys no longer load; while
  they did (the first commit of this benchmark), the copy's alerts were identical to the real
  ``Engine``'s on 12 streams of 5 to 1,000 mentions an hour (706,280 mentions, 28 alert
  transitions).
- **new**: the same two rules of the shipped ``alert_rules/default.yaml`` (the ``sentiment_spike``
  and ``empathy_deficit`` kinds, i.e. :mod:`streams.share_spike`) through a small per-minute
  adapter (:class:`NewShareRule`: minute buckets → the test, with the engine's guards). The real
  ``streams.engine.Engine`` runs the shipped rules on the streams up to ``--engine-max-rate`` and
  its alerts are checked to be identical to the adapter's.

A burst is detected when its rule starts firing after the burst begins and at most ``GRACE``
after it ends; the delay is from the burst's start. False alarms are firings per brand-week of calm
streams after the warm-up (and, separately, firings outside every burst window of burst streams).
An **oracle** bound sits beside them: the detection rate of the best fixed test that *knows* when
each 2-hour burst starts and ends, at one false alarm a week, with the Scorer's labels and with
perfect labels. No method that has to find the burst can beat it.

``--silence none,release:20,decay:20,...`` also runs ways of ending a share alarm when the brand
falls silent (:func:`silence_candidate`) on the same streams and chooses one by leave-one-volume-out
cross-validation (:func:`report_silence`).

Usage: ``.venv/bin/python bench/spikes.py [--full] [--seed N] [--volumes 10,100] [--silence ...]``.
Figures go to ``bench/results/spikes.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams.cs_sentiment import CsSentiment  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.records import (  # noqa: E402
    AlertState,
    Mention,
    MentionKind,
    ScoredMention,
    SentimentLabel,
)
from streams.rule_kinds import BrandRule  # noqa: E402
from streams.rule_kinds.shares import ShareSpikeRule  # noqa: E402
from streams.rules import RuleGroup, RuleSet, load_rules  # noqa: E402
from streams.scoring import Scorer  # noqa: E402
from streams.share_spike import (  # noqa: E402
    Reference,
    ShareSpikeParams,
    ShareSpikeTest,
    ShareVerdict,
    reference_time_constant,
)
from streams.windows import Baseline, MinuteBucket  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev" / "tweeteval" / "sentiment"
RESULTS = REPO / "bench" / "results" / "spikes.json"
T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
BRAND = "bench-brand"

VOLUMES = (5, 10, 30, 100, 300, 1000, 5000)
"""Mean mentions an hour."""
DAILY_AMPLITUDE = 0.6
SHARE_WOBBLE = 0.1
BASE_NEGATIVE = (0.25, 0.40)
"""Human negative share of a calm stream: uniform in this range, drawn per stream."""
DEFICIT_SHARE = 0.02
WARMUP_DAYS = 3
CALM_DAYS = 7
SLOT_HOURS = 12
GRACE = 30
"""Minutes after a burst's end within which a firing still counts as its detection."""

Kind = Literal["negative", "deficit"]


@dataclass(frozen=True)
class BurstConfig:
    kind: Kind
    factor: float
    minutes: int

    @property
    def name(self) -> str:
        length = f"{self.minutes // 60}h" if self.minutes >= 60 else f"{self.minutes}m"
        return f"{self.kind} x{self.factor:g} {length}"


NEGATIVE_BURSTS = tuple(
    BurstConfig("negative", factor, minutes)
    for factor in (1.5, 2.0, 3.0)
    for minutes in (30, 120, 360)
)
DEFICIT_BURSTS = tuple(
    BurstConfig("deficit", factor, minutes) for factor in (4.0, 8.0) for minutes in (120, 360)
)
HEADLINE = BurstConfig("negative", 2.0, 120)
"""The goal's burst: it appears ``HEADLINE_COPIES`` times per burst stream, the others once."""
HEADLINE_COPIES = 3
MAX_SHARE = 0.95

DEFICIT_SUFFIXES = (
    " Still waiting for a reply.",
    " Nobody cares.",
    " On hold for hours again.",
    " No response from support.",
    " I was ignored.",
    " Your support hung up on me.",
    " Never heard back.",
    " No one cares about customers.",
)

OLD_RETENTION = 30
"""Minutes a closed minute stays in the windows before the baselines get it: the longest window
of the old shipped brand rules (EmpathyDeficit's 30m)."""
BASELINE_TIME_CONSTANT = timedelta(hours=6)
"""The engine's default ``baseline_time_constant``."""


SHIPPED_RULES = REPO / "alert_rules" / "default.yaml"
SHARE_ALERTS: dict[Kind, str] = {"negative": "NegativeSentimentSpike", "deficit": "EmpathyDeficit"}


def shipped_rules(path: Path = SHIPPED_RULES) -> tuple[dict[Kind, ShareSpikeRule], int]:
    """The shipped share rules by what they watch, and the engine's window retention (minutes)
    for the shipped rule set."""
    ruleset = load_rules(path)
    found: dict[Kind, ShareSpikeRule] = {}
    for rule in ruleset.rules:
        for kind, name in SHARE_ALERTS.items():
            if rule.alert == name and isinstance(rule, ShareSpikeRule):
                found[kind] = rule
    if set(found) != set(SHARE_ALERTS):
        raise SystemExit(f"{path}: expected the share rules {sorted(SHARE_ALERTS.values())}")
    retention = max(r.window_minutes for r in ruleset.rules if isinstance(r, BrandRule))
    return found, retention


# --- texts ---


@dataclass
class Pool:
    """Texts by stream category, with the Scorer's verdicts (index-aligned lists)."""

    texts: list[str]
    human: list[str]
    negative: list[int]
    """Human-negative texts without a deficit phrase."""
    other: list[int]
    """Human neutral or positive texts without a deficit phrase."""
    deficit: list[int]
    """Texts the Scorer flags with an empathy-deficit phrase."""
    scored_negative: list[bool]
    scored_deficit: list[bool]
    natural_deficit: int
    appended_deficit: int

    def rate(self, indices: Sequence[int]) -> float:
        """Share of ``indices`` the Scorer calls negative."""
        return sum(self.scored_negative[i] for i in indices) / len(indices)


def production_scorer() -> Scorer:
    """The worker's scorer: VADER with the customer-service layer (no brand overrides)."""
    return Scorer(sentiment_layer=CsSentiment.load())


def load_pool(data: Path = DATA, scorer: Scorer | None = None, seed: int = 13) -> Pool:
    """TweetEval sentiment test texts scored once each, plus the deficit pool."""
    texts = (data / "test_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (data / "test_labels.txt").read_text(encoding="utf-8").splitlines()
    if len(texts) != len(labels) or not texts:
        raise SystemExit(f"{data}: test_text.txt and test_labels.txt do not match")
    names = {"0": "negative", "1": "neutral", "2": "positive"}
    human = [names[label.strip()] for label in labels]
    scorer = scorer or production_scorer()
    cache: dict[str, tuple[bool, bool]] = {}

    def score(text: str) -> tuple[bool, bool]:
        verdict = cache.get(text)
        if verdict is None:
            mention = _mention(text, "pool:0", T0)
            scored = scorer.score(mention, scored_at=T0)
            verdict = (
                scored.sentiment.label is SentimentLabel.NEGATIVE,
                bool(scored.empathy.deficit),
            )
            cache[text] = verdict
        return verdict

    all_texts = list(texts)
    all_human = list(human)
    verdicts = [score(t) for t in texts]
    natural = [i for i, (_, deficit) in enumerate(verdicts) if deficit]
    rng = random.Random(seed)
    candidates = [i for i, (h, (_, d)) in enumerate(zip(human, verdicts, strict=True)) if not d]
    candidates = [i for i in candidates if human[i] == "negative"]
    appended: list[int] = []
    for i in rng.sample(candidates, min(len(candidates), 800)):
        text = texts[i].rstrip() + rng.choice(DEFICIT_SUFFIXES)
        verdict = score(text)
        if verdict[1]:
            appended.append(len(all_texts))
            all_texts.append(text)
            all_human.append("negative")
            verdicts.append(verdict)
    deficit_set = set(natural) | set(appended)
    return Pool(
        texts=all_texts,
        human=all_human,
        negative=[i for i in range(len(texts)) if human[i] == "negative" and i not in deficit_set],
        other=[i for i in range(len(texts)) if human[i] != "negative" and i not in deficit_set],
        deficit=sorted(deficit_set),
        scored_negative=[v[0] for v in verdicts],
        scored_deficit=[v[1] for v in verdicts],
        natural_deficit=len(natural),
        appended_deficit=len(appended),
    )


def _mention(text: str, mention_id: str, at: datetime) -> Mention:
    return Mention(
        id=mention_id,
        source="bench",
        kind=MentionKind.POST,
        brand=BRAND,
        text=text,
        author="bench-author",
        created_at=at,
        fetched_at=at,
    )


# --- streams ---


@dataclass(frozen=True)
class Burst:
    config: BurstConfig
    start: int
    """Minute index (from the stream's start) of the burst's first minute."""

    @property
    def end(self) -> int:
        return self.start + self.config.minutes


@dataclass(frozen=True)
class StreamSpec:
    rate_per_hour: float
    negative_share: float
    minutes: int
    bursts: tuple[Burst, ...]
    seed: int
    warmup_minutes: int = WARMUP_DAYS * 1440


@dataclass
class Stream:
    """Per-minute counts: mentions, Scorer-negative, Scorer-deficit (and the texts, if kept)."""

    spec: StreamSpec
    counts: list[int]
    negatives: list[int]
    deficits: list[int]
    texts: list[list[int]] | None = None


def _poisson(rng: random.Random, lam: float) -> int:
    total = 0
    while lam > 0.0:
        part = min(lam, 20.0)  # Knuth's method per part; a sum of Poissons is Poisson
        limit = math.exp(-part)
        product = rng.random()
        while product > limit:
            total += 1
            product *= rng.random()
        lam -= part
    return total


def daily_factor(minute: int) -> float:
    """Volume multiplier over the UTC day: 0.4 at 03:00, 1.6 at 15:00."""
    return 1.0 - DAILY_AMPLITUDE * math.cos(2.0 * math.pi * ((minute % 1440) - 180) / 1440.0)


def share_factor(minute: int) -> float:
    """Negative-share multiplier over the day (a calm stream's own wobble)."""
    return 1.0 + SHARE_WOBBLE * math.sin(2.0 * math.pi * (minute % 1440) / 1440.0)


def generate(spec: StreamSpec, pool: Pool, *, keep_texts: bool = False) -> Stream:
    """Draw a stream: Poisson counts per minute, each mention a text drawn from its category."""
    rng = random.Random(spec.seed)
    negative_factor = [1.0] * spec.minutes
    deficit_factor = [1.0] * spec.minutes
    for burst in spec.bursts:
        target = negative_factor if burst.config.kind == "negative" else deficit_factor
        for m in range(burst.start, min(burst.end, spec.minutes)):
            target[m] = burst.config.factor
    neg_flags = [pool.scored_negative[i] for i in pool.negative]
    other_flags = [pool.scored_negative[i] for i in pool.other]
    deficit_flags = [pool.scored_negative[i] for i in pool.deficit]
    n_neg, n_other, n_def = len(neg_flags), len(other_flags), len(deficit_flags)
    counts: list[int] = []
    negatives: list[int] = []
    deficits: list[int] = []
    texts: list[list[int]] | None = [] if keep_texts else None
    mean = spec.rate_per_hour / 60.0
    for m in range(spec.minutes):
        n = _poisson(rng, mean * daily_factor(m))
        p_def = min(MAX_SHARE, DEFICIT_SHARE * deficit_factor[m])
        p_neg = min(MAX_SHARE, spec.negative_share * share_factor(m) * negative_factor[m])
        cut_neg = p_def + (1.0 - p_def) * p_neg
        k = d = 0
        drawn: list[int] = []
        for _ in range(n):
            u = rng.random()
            v = rng.random()
            if u < p_def:
                j = int(v * n_def)
                d += 1
                k += deficit_flags[j]
                if texts is not None:
                    drawn.append(pool.deficit[j])
            elif u < cut_neg:
                j = int(v * n_neg)
                k += neg_flags[j]
                if texts is not None:
                    drawn.append(pool.negative[j])
            else:
                j = int(v * n_other)
                k += other_flags[j]
                if texts is not None:
                    drawn.append(pool.other[j])
        counts.append(n)
        negatives.append(k)
        deficits.append(d)
        if texts is not None:
            texts.append(drawn)
    return Stream(spec, counts, negatives, deficits, texts)


def calm_spec(rate: float, seed: int) -> StreamSpec:
    share = random.Random(seed * 7919 + 1).uniform(*BASE_NEGATIVE)
    return StreamSpec(rate, share, (WARMUP_DAYS + CALM_DAYS) * 1440, (), seed)


def burst_spec(rate: float, seed: int) -> StreamSpec:
    """A stream with one burst per ``SLOT_HOURS`` slot after the warm-up, every configuration
    once (the headline one ``HEADLINE_COPIES`` times) in random order, at random times."""
    rng = random.Random(seed * 7919 + 2)
    share = rng.uniform(*BASE_NEGATIVE)
    configs = [*NEGATIVE_BURSTS, *DEFICIT_BURSTS, *[HEADLINE] * (HEADLINE_COPIES - 1)]
    rng.shuffle(configs)
    slot = SLOT_HOURS * 60
    bursts = []
    for i, config in enumerate(configs):
        start = WARMUP_DAYS * 1440 + i * slot
        latest = slot - config.minutes - GRACE - 60
        bursts.append(Burst(config, start + rng.randrange(max(1, latest))))
    minutes = WARMUP_DAYS * 1440 + len(configs) * slot
    return StreamSpec(rate, share, minutes, tuple(bursts), seed)


# --- rules on minute counts ---


class RuleMachine:
    """The engine's state machine for a brand rule: inactive → pending → firing → resolved,
    with ``for``, ``keep_firing_for`` and ``cooldown`` (a copy of ``Engine._step_rule``)."""

    def __init__(self, for_: int, keep_firing_for: int, cooldown: int) -> None:
        self.for_, self.keep, self.cooldown = for_, keep_firing_for, cooldown
        self.state = "inactive"
        self.pending_since = 0
        self.clear_since: int | None = None
        self.last_resolved: int | None = None
        self.firings: list[int] = []
        self.resolutions: list[int] = []

    def step(self, end: int, condition: bool) -> None:
        """Evaluate at the end of a minute (``end``: minute index of that end)."""
        if self.state == "inactive" and condition:
            cooling = self.last_resolved is not None and end < self.last_resolved + self.cooldown
            if not cooling:
                self.state, self.pending_since = "pending", end
        if self.state == "pending":
            if not condition:
                self.state = "inactive"
            elif end - self.pending_since >= self.for_:
                self.state, self.clear_since = "firing", None
                self.firings.append(end)
        elif self.state == "firing":
            if condition:
                self.clear_since = None
            else:
                if self.clear_since is None:
                    self.clear_since = end
                if end - self.clear_since >= self.keep:
                    self.state, self.last_resolved = "inactive", end
                    self.resolutions.append(end)


class MinuteRule:
    """A share rule fed one closed minute at a time; its baseline gets the minutes that leave the
    windows (``retention`` minutes later) while the rule is inactive, as in the engine."""

    def __init__(self, hits: Kind, machine: RuleMachine, retention: int) -> None:
        self.hits = hits
        self.machine = machine
        self.retention = retention
        self.baseline = Baseline()
        self.history: deque[MinuteBucket | None] = deque()

    def time_constant(self, leaving: MinuteBucket | None) -> timedelta:
        return BASELINE_TIME_CONSTANT

    def condition(self, end: int, count: int, hits: int) -> bool:
        raise NotImplementedError

    def step(self, end: int, bucket: MinuteBucket | None) -> None:
        count = 0 if bucket is None else bucket.count
        hits = (
            0
            if bucket is None
            else (bucket.negative if self.hits == "negative" else bucket.deficit)
        )
        self.machine.step(end, self.condition(end, count, hits))
        self.history.append(bucket)
        if len(self.history) > self.retention:
            leaving = self.history.popleft()
            if self.machine.state == "inactive":
                self.baseline.feed(leaving, self.time_constant(leaving))


class OldRule(MinuteRule):
    """The old ``sentiment_spike``/``empathy_deficit`` condition (a copy of the engine's)."""

    def __init__(
        self,
        hits: Kind,
        *,
        window: int,
        min_volume: int,
        min_share: float,
        min_increase: float,
        for_: int,
        keep_firing_for: int,
        cooldown: int,
        warmup: int = 120,
        warmup_volume: int = 100,
    ) -> None:
        super().__init__(hits, RuleMachine(for_, keep_firing_for, cooldown), OLD_RETENTION)
        self.window = window
        self.min_volume, self.min_share, self.min_increase = min_volume, min_share, min_increase
        self.warmup, self.warmup_volume = warmup, warmup_volume
        self.recent: deque[tuple[int, int]] = deque()
        self.count = self.hit_count = 0

    def condition(self, end: int, count: int, hits: int) -> bool:
        self.recent.append((count, hits))
        self.count += count
        self.hit_count += hits
        if len(self.recent) > self.window:
            old_count, old_hits = self.recent.popleft()
            self.count -= old_count
            self.hit_count -= old_hits
        b = self.baseline
        warm = b.minutes >= self.warmup and b.volume >= self.warmup_volume
        base = b.negative_share if self.hits == "negative" else b.deficit_share
        value = self.hit_count / self.count if self.count else 0.0
        return (
            warm
            and base is not None
            and self.count >= self.min_volume
            and value >= self.min_share
            and value - base >= self.min_increase
        )


def old_rules() -> dict[Kind, OldRule]:
    """The share rules of ``alert_rules/default.yaml`` before issue 13, as per-minute copies::

    - alert: NegativeSentimentSpike         - alert: EmpathyDeficit
      kind: sentiment_spike                   kind: empathy_deficit
      window: 15m                             window: 30m
      min_volume: 40                          min_volume: 40
      min_negative_share: 0.40                min_share: 0.12
      min_increase: 0.20                      min_increase: 0.10
      warmup: 2h                              warmup: 2h
      warmup_volume: 100                      warmup_volume: 100
      for: 10m                                for: 15m
      keep_firing_for: 10m                    keep_firing_for: 15m
      cooldown: 30m                           cooldown: 1h
    """
    return {
        "negative": OldRule(
            "negative",
            window=15,
            min_volume=40,
            min_share=0.40,
            min_increase=0.20,
            for_=10,
            keep_firing_for=10,
            cooldown=30,
        ),
        "deficit": OldRule(
            "deficit",
            window=30,
            min_volume=40,
            min_share=0.12,
            min_increase=0.10,
            for_=15,
            keep_firing_for=15,
            cooldown=60,
        ),
    }


class NewShareRule(MinuteRule):
    """The adapter: minute buckets → :class:`streams.share_spike.ShareSpikeTest`, with the guards
    the engine gives a ``sentiment_spike``/``empathy_deficit`` rule (a flat baseline that forgets
    by mentions, fed as the windows release minutes while the rule is inactive; ``warmup`` and
    ``warmup_volume``; ``for``, ``keep_firing_for``, ``cooldown``)."""

    def __init__(self, hits: Kind, rule: ShareSpikeRule, retention: int) -> None:
        if rule.baseline.seasonality != "flat":
            raise SystemExit(f"{rule.alert}: the adapter follows flat baselines only")
        machine = RuleMachine(
            _minutes(rule.for_), _minutes(rule.keep_firing_for), _minutes(rule.cooldown)
        )
        super().__init__(hits, machine, retention)
        self.rule = rule
        self.test = ShareSpikeTest(rule.params)

    def time_constant(self, leaving: MinuteBucket | None) -> timedelta:
        return reference_time_constant(
            0 if leaving is None else leaving.count,
            base=BASELINE_TIME_CONSTANT,
            min_mentions=self.rule.params.baseline_mentions,
        )

    def condition(self, end: int, count: int, hits: int) -> bool:
        b = self.baseline
        base_hits = b.negative if self.hits == "negative" else b.deficit
        reference = Reference.from_sums(base_hits, b.count, b.weight)
        if b.minutes * MINUTE < self.rule.warmup or b.volume < self.rule.warmup_volume:
            return False
        return self.test.step(T0 + end * MINUTE, count, hits, reference).condition


class DecayingShareTest(ShareSpikeTest):
    """Candidate (b) for a silence (``--silence``): every minute without mentions multiplies the
    evidence by ``2^(-r / half_life)`` (``r``: the usual mentions a minute), so it halves over a
    silence in which ``half_life`` mentions were expected; an alarm ends when that brings it to
    the release level, as calm mentions would."""

    def __init__(self, params: ShareSpikeParams, half_life: float) -> None:
        super().__init__(params)
        self.half_life = half_life

    def step(self, end: datetime, count: int, hits: int, reference: Reference) -> ShareVerdict:
        if not count and self.evidence > 0.0:
            self.evidence *= 0.5 ** (reference.rate_per_minute / self.half_life)
        return super().step(end, count, hits, reference)


def silence_candidate(
    name: str, shipped: dict[Kind, ShareSpikeRule], retention: int
) -> dict[Kind, MinuteRule]:
    """The shipped share rules with a candidate way of ending an alarm in a silence: ``none``
    (only calm mentions end it), ``release:N`` (silent for as long as the usual rate expects N
    mentions in: :attr:`ShareSpikeParams.silence_release`), ``decay:M``
    (:class:`DecayingShareTest`, half-life M expected mentions)."""
    method, _, value = name.partition(":")
    rules: dict[Kind, MinuteRule] = {}
    for kind, rule in shipped.items():
        release = float(value) if method == "release" else None
        params = rule.params.model_copy(update={"silence_release": release})
        adapter = NewShareRule(kind, rule.model_copy(update={"params": params}), retention)
        if method == "decay":
            adapter.test = DecayingShareTest(params, float(value))
        elif method not in ("none", "release"):
            raise SystemExit(f"--silence: unknown candidate {name!r} (none, release:N, decay:M)")
        rules[kind] = adapter
    return rules


def _minutes(span: timedelta) -> int:
    return int(span / MINUTE)


def new_rules(shipped: dict[Kind, ShareSpikeRule], retention: int) -> dict[Kind, NewShareRule]:
    return {kind: NewShareRule(kind, rule, retention) for kind, rule in shipped.items()}


def run_rules(stream: Stream, rules: dict[Kind, MinuteRule]) -> None:
    """Feed every minute of ``stream`` to ``rules``; the engine starts at the first mention."""
    first = next((m for m, c in enumerate(stream.counts) if c), len(stream.counts))
    for m in range(first, len(stream.counts)):
        count = stream.counts[m]
        bucket = (
            MinuteBucket.model_construct(
                minute=T0 + m * MINUTE,
                count=count,
                negative=stream.negatives[m],
                deficit=stream.deficits[m],
                compound_sum=0.0,
                churn=0,
                empathy_positive=0,
                examples=[],
            )
            if count
            else None
        )
        for rule in rules.values():
            rule.step(m + 1, bucket)


# --- the real engine (old rules) ---


def engine_firings(
    stream: Stream, pool: Pool, scorer: Scorer, rules: RuleSet
) -> dict[str, list[tuple[str, int]]]:
    """Run ``rules`` through the real ``Engine``: alertname → [(state, minute end)]."""
    assert stream.texts is not None
    engine = Engine(rules, allowed_lateness=timedelta(0))
    state = engine.new_state(BRAND)
    templates: dict[int, ScoredMention] = {}
    rng = random.Random(stream.spec.seed + 1)
    out: dict[str, list[tuple[str, int]]] = {}
    serial = 0
    batch: list[ScoredMention] = []

    def collect(alerts: Sequence[Any]) -> None:
        for alert in alerts:
            at = alert.starts_at if alert.state is AlertState.FIRING else alert.ends_at
            minute = int((at - T0) / MINUTE)
            out.setdefault(alert.labels["alertname"], []).append((alert.state.value, minute))

    for m, drawn in enumerate(stream.texts):
        seconds = sorted(rng.random() * 60.0 for _ in drawn)
        for index, second in zip(drawn, seconds, strict=True):
            template = templates.get(index)
            if template is None:
                text = pool.texts[index]
                template = scorer.score(_mention(text, "bench:t", T0), scored_at=T0)
                templates[index] = template
            serial += 1
            at = T0 + m * MINUTE + timedelta(seconds=second)
            mention = template.mention.model_copy(
                update={"id": f"bench:{serial}", "created_at": at, "fetched_at": at}
            )
            batch.append(template.model_copy(update={"mention": mention}))
        if len(batch) >= 500:
            collect(engine.process(state, batch).alerts)
            batch = []
    collect(engine.process(state, batch).alerts)
    collect(engine.advance(state, T0 + len(stream.texts) * MINUTE).alerts)
    return out


def copy_firings(rules: dict[Kind, MinuteRule]) -> dict[str, list[tuple[str, int]]]:
    names = SHARE_ALERTS
    out: dict[str, list[tuple[str, int]]] = {}
    for kind, rule in rules.items():
        events = [("firing", e) for e in rule.machine.firings]
        events += [("resolved", e) for e in rule.machine.resolutions]
        if events:
            out[names[kind]] = sorted(events, key=lambda e: (e[1], e[0] == "firing"))
    return out


# --- scoring ---


@dataclass
class Tally:
    """Detections of one burst configuration at one volume, by one rule set."""

    bursts: int = 0
    delays: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bursts": self.bursts,
            "detected": len(self.delays),
            "detected_share": round(len(self.delays) / self.bursts, 4) if self.bursts else None,
            "median_delay_min": statistics.median(self.delays) if self.delays else None,
        }


@dataclass
class VolumeResult:
    calm_weeks: float = 0.0
    calm_false_alarms: dict[str, dict[Kind, int]] = field(default_factory=dict)
    burst_weeks: float = 0.0
    outside_false_alarms: dict[str, int] = field(default_factory=dict)
    tallies: dict[str, dict[str, Tally]] = field(default_factory=dict)
    engine_checks: list[dict[str, Any]] = field(default_factory=list)


def score_bursts(spec: StreamSpec, rules: dict[Kind, MinuteRule], tallies: dict[str, Tally]) -> int:
    """Add each burst's detection to ``tallies``; return firings outside every burst window."""
    for burst in spec.bursts:
        kind = burst.config.kind
        tally = tallies.setdefault(burst.config.name, Tally())
        tally.bursts += 1
        hits = [e for e in rules[kind].machine.firings if burst.start < e <= burst.end + GRACE]
        if hits:
            tally.delays.append(hits[0] - burst.start)
    outside = 0
    for rule in rules.values():
        for e in rule.machine.firings:
            if e <= spec.warmup_minutes:
                continue
            inside = any(b.start < e <= b.end + GRACE for b in spec.bursts)
            outside += not inside
    return outside


# --- the oracle bound ---


def _binomial_tail(k: int, n: int, p: float) -> float:
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    return sum(
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        for i in range(k, n + 1)
    )


def oracle_power(rate: float, p0: float, p1: float, minutes: int = 120) -> float:
    """Detection rate of the most powerful fixed test on a burst whose start and length are known:
    hits among the burst's mentions against a binomial tail at ``1/windows`` (one false alarm a
    week over the week's disjoint windows of the burst's length)."""
    alpha = minutes / (7 * 1440.0)
    lam = rate * minutes / 60.0
    if lam > 400.0:  # normal approximation; the power is 1 to many digits there anyway
        z = 3.0
        mean0, sd0 = lam * p0, math.sqrt(lam * p0 * (1 - p0))
        mean1, sd1 = lam * p1, math.sqrt(lam * p1 * (1 - p1))
        return 0.5 * math.erfc(((mean0 + z * sd0) - mean1) / sd1 / math.sqrt(2.0))
    power = 0.0
    for n in range(int(lam + 10 * math.sqrt(lam) + 20)):
        weight = math.exp(-lam + n * math.log(lam) - math.lgamma(n + 1)) if lam > 0 else 0.0
        k = next((k for k in range(n + 2) if _binomial_tail(k, n, p0) <= alpha), n + 1)
        power += weight * _binomial_tail(k, n, p1)
    return power


def oracle_rows(pool: Pool, rates: Sequence[float]) -> dict[str, dict[str, float]]:
    """Oracle detection rates of the headline burst per volume, averaged over the base shares."""
    q_neg, q_other = pool.rate(pool.negative), pool.rate(pool.other)
    shares = [
        BASE_NEGATIVE[0] + (BASE_NEGATIVE[1] - BASE_NEGATIVE[0]) * (i + 0.5) / 6 for i in range(6)
    ]
    out: dict[str, dict[str, float]] = {}
    for rate in rates:
        scorer_power = human_power = 0.0
        for share in shares:
            high = min(MAX_SHARE, share * HEADLINE.factor)
            p0 = share * q_neg + (1 - share) * q_other
            p1 = high * q_neg + (1 - high) * q_other
            scorer_power += oracle_power(rate, p0, p1, HEADLINE.minutes) / len(shares)
            human_power += oracle_power(rate, share, high, HEADLINE.minutes) / len(shares)
        out[str(rate)] = {
            "scorer_labels": round(scorer_power, 3),
            "human_labels": round(human_power, 3),
        }
    return out


# --- the run ---


@dataclass(frozen=True)
class Plan:
    calm_streams: int
    burst_streams: int
    engine_streams: int


def plan_for(rate: float, full: bool, engine_max_rate: float) -> Plan:
    if full:
        calm, bursts = (40, 12) if rate <= 1000 else (20, 8)
    elif rate <= 300:
        calm, bursts = 12, 6
    elif rate <= 1000:
        calm, bursts = 6, 4
    else:
        calm, bursts = 3, 2
    return Plan(calm, bursts, 1 if rate <= engine_max_rate else 0)


def run_volume(
    rate: float,
    pool: Pool,
    plan: Plan,
    seed: int,
    scorer: Scorer,
    shipped: tuple[dict[Kind, ShareSpikeRule], int],
    log: Callable[[str], None],
    silence: Sequence[str] = (),
) -> VolumeResult:
    names = ("old", "new", *silence)
    result = VolumeResult()
    result.calm_false_alarms = {name: {"negative": 0, "deficit": 0} for name in names}
    result.outside_false_alarms = dict.fromkeys(names, 0)
    result.tallies = {name: {} for name in names}
    specs: list[tuple[str, StreamSpec]] = [
        ("calm", calm_spec(rate, seed * 100_000 + int(rate) * 100 + i))
        for i in range(plan.calm_streams)
    ]
    specs += [
        ("bursts", burst_spec(rate, seed * 100_000 + int(rate) * 100 + 50 + i))
        for i in range(plan.burst_streams)
    ]
    engine_left = {"calm": plan.engine_streams, "bursts": plan.engine_streams}
    share_rules, retention = shipped
    engine_rules = RuleSet(groups=(RuleGroup(name="shares", rules=tuple(share_rules.values())),))
    for what, spec in specs:
        check = engine_left[what] > 0
        stream = generate(spec, pool, keep_texts=check)
        rule_sets: dict[str, dict[Kind, MinuteRule]] = {
            "old": dict(old_rules()),
            "new": dict(new_rules(share_rules, retention)),
        }
        for name in silence:
            rule_sets[name] = silence_candidate(name, share_rules, retention)
        for rules in rule_sets.values():
            run_rules(stream, rules)
        if check:
            engine_left[what] -= 1
            real = engine_firings(stream, pool, scorer, engine_rules)
            copy = copy_firings(rule_sets["new"])
            result.engine_checks.append(
                {
                    "stream": what,
                    "mentions": sum(stream.counts),
                    "transitions": sum(len(v) for v in real.values()),
                    "identical": real == copy,
                }
            )
            if real != copy:
                log(f"  ! the adapter differs from the Engine at {rate}/h: {real} vs {copy}")
        if what == "calm":
            result.calm_weeks += (spec.minutes - spec.warmup_minutes) / (7 * 1440)
            for name, rules in rule_sets.items():
                for kind, rule in rules.items():
                    result.calm_false_alarms[name][kind] += sum(
                        1 for e in rule.machine.firings if e > spec.warmup_minutes
                    )
        else:
            result.burst_weeks += (spec.minutes - spec.warmup_minutes) / (7 * 1440)
            for name, rules in rule_sets.items():
                result.outside_false_alarms[name] += score_bursts(spec, rules, result.tallies[name])
    return result


def _pct(tally: Tally | None) -> str:
    if tally is None or not tally.bursts:
        return "-"
    return f"{len(tally.delays) / tally.bursts:.0%}"


def _delay(tally: Tally | None) -> str:
    if tally is None or not tally.delays:
        return "-"
    return f"{statistics.median(tally.delays):.0f}m"


def _merge(tallies: dict[str, Tally], kind: Kind) -> Tally:
    merged = Tally()
    for name, tally in tallies.items():
        if name.startswith(kind):
            merged.bursts += tally.bursts
            merged.delays += tally.delays
    return merged


@dataclass
class SilenceFigures:
    """One candidate's figures at one volume: every burst kind together, calm and outside false
    alarms apart."""

    bursts: int
    delays: list[int]
    calm_false: int
    calm_weeks: float
    outside_false: int
    burst_weeks: float

    @classmethod
    def of(cls, res: VolumeResult, name: str) -> SilenceFigures:
        tallies = res.tallies[name].values()
        return cls(
            bursts=sum(t.bursts for t in tallies),
            delays=[d for t in tallies for d in t.delays],
            calm_false=sum(res.calm_false_alarms[name].values()),
            calm_weeks=res.calm_weeks,
            outside_false=res.outside_false_alarms[name],
            burst_weeks=res.burst_weeks,
        )

    @staticmethod
    def total(rows: Sequence[SilenceFigures]) -> SilenceFigures:
        return SilenceFigures(
            bursts=sum(r.bursts for r in rows),
            delays=[d for r in rows for d in r.delays],
            calm_false=sum(r.calm_false for r in rows),
            calm_weeks=sum(r.calm_weeks for r in rows),
            outside_false=sum(r.outside_false for r in rows),
            burst_weeks=sum(r.burst_weeks for r in rows),
        )

    @property
    def score(self) -> int:
        """What the choice maximises: bursts found minus false alarms (a false alarm costs as
        much as a missed burst)."""
        return len(self.delays) - self.calm_false - self.outside_false

    def as_dict(self) -> dict[str, Any]:
        return {
            **Tally(self.bursts, self.delays).as_dict(),
            "false_alarms_per_brand_week": round(self.calm_false / self.calm_weeks, 3),
            "false_alarms_outside_bursts_per_week": round(self.outside_false / self.burst_weeks, 3),
        }

    def cells(self) -> str:
        d = self.as_dict()
        delay = "-" if d["median_delay_min"] is None else f"{d['median_delay_min']:.0f}m"
        calm, outside = (
            d["false_alarms_per_brand_week"],
            d["false_alarms_outside_bursts_per_week"],
        )
        return f"{len(self.delays):>4}/{self.bursts:<4} {delay:>6} {calm:>6.2f} {outside:>6.2f}"


def _aggressiveness(name: str) -> float:
    """Ties go to the candidate that ends a silent alarm soonest (smallest N or M)."""
    _, _, value = name.partition(":")
    return float(value) if value else math.inf


def report_silence(
    rows: dict[float, dict[str, SilenceFigures]], names: Sequence[str]
) -> dict[str, Any]:
    """Print every candidate per volume and the leave-one-volume-out choice: for each volume,
    the candidate with the best :attr:`SilenceFigures.score` on the *other* volumes (ties: the one
    that ends a silent alarm soonest) and its figures on the held-out volume."""
    print()
    print(
        "Ending a share alarm in a silence: bursts found / bursts (all kinds), median delay, "
        "false alarms per calm brand-week, false alarms outside bursts per burst-stream week"
    )
    for name in names:
        line = " | ".join(f"{rate:g}/h {rows[rate][name].cells()}" for rate in rows)
        print(f"{name:>12}: {line}")
    held_out: dict[str, list[SilenceFigures]] = {"cross-validated": []}
    chosen: dict[str, str] = {}
    for rate in rows:
        training = {
            name: SilenceFigures.total([rows[r][name] for r in rows if r != rate]) for name in names
        }
        best = max(names, key=lambda n: (training[n].score, -_aggressiveness(n)))
        chosen[f"{rate:g}"] = best
        held_out["cross-validated"].append(rows[rate][best])
    for name in names:
        held_out[name] = [rows[rate][name] for rate in rows]
    print("chosen per held-out volume: " + ", ".join(f"{r}/h {c}" for r, c in chosen.items()))
    summary = {name: SilenceFigures.total(figures) for name, figures in held_out.items()}
    for name, figures in summary.items():
        print(f"{name:>15} (all volumes, held out): {figures.cells()}")
    return {
        "candidates": list(names),
        "chosen_per_held_out_volume": chosen,
        "held_out": {name: figures.as_dict() for name, figures in summary.items()},
        "per_volume": {
            f"{rate:g}": {name: rows[rate][name].as_dict() for name in names} for rate in rows
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more streams per volume")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--volumes", default=",".join(map(str, VOLUMES)))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--engine-max-rate",
        type=float,
        default=100.0,
        help="run the real Engine (shipped rules) on a calm and a burst stream per volume to this",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--silence",
        default="",
        help="also run these ways of ending a share alarm in a silence (comma-separated: none, "
        "release:N, decay:M) and choose one by leave-one-volume-out cross-validation",
    )
    args = parser.parse_args(argv)
    silence = [c.strip() for c in args.silence.split(",") if c.strip()]
    if not (args.data / "test_text.txt").is_file():
        print(f"TweetEval sentiment test split not found in {args.data}", file=sys.stderr)
        return 2
    rates = [float(v) for v in args.volumes.split(",") if v.strip()]
    started = time.perf_counter()
    scorer = production_scorer()
    pool = load_pool(args.data, scorer)
    q_neg, q_other, q_def = pool.rate(pool.negative), pool.rate(pool.other), pool.rate(pool.deficit)
    print(
        f"Texts: TweetEval sentiment test, {len(pool.negative)} negative / {len(pool.other)} "
        f"neutral or positive (human labels); the Scorer calls {q_neg:.1%} of the negative and "
        f"{q_other:.1%} of the others negative."
    )
    print(
        f"Deficit pool: {pool.natural_deficit} test texts the Scorer flags with a deficit phrase + "
        f"{pool.appended_deficit} human-negative test texts with a complaint appended "
        f"({q_def:.0%} scored negative)."
    )
    shipped = shipped_rules()
    oracle = oracle_rows(pool, rates)
    results: dict[str, Any] = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "command": " ".join(["bench/spikes.py", *(sys.argv[1:] if argv is None else argv)]),
        "seed": args.seed,
        "texts": {
            "source": "tweeteval/sentiment test split",
            "negative": len(pool.negative),
            "other": len(pool.other),
            "scorer_negative_rate": {
                "human_negative": round(q_neg, 4),
                "human_other": round(q_other, 4),
            },
            "deficit_natural": pool.natural_deficit,
            "deficit_appended": pool.appended_deficit,
        },
        "streams": {
            "daily_amplitude": DAILY_AMPLITUDE,
            "share_wobble": SHARE_WOBBLE,
            "base_negative_share": list(BASE_NEGATIVE),
            "deficit_share": DEFICIT_SHARE,
            "warmup_days": WARMUP_DAYS,
            "grace_min": GRACE,
        },
        "new_rules": {
            rule.alert: rule.model_dump(mode="json", by_alias=True, exclude={"annotations"})
            for rule in shipped[0].values()
        },
        "volumes": {},
    }
    header = (
        f"{'per hour':>8} {'rules':5} | {'x2 2h found':>11} {'delay':>6} | {'all neg':>7} "
        f"{'delay':>6} | {'deficit':>7} {'delay':>6} | {'FA/wk neg':>9} {'FA/wk def':>9} "
        f"{'outside':>7} | {'oracle x2 2h (scorer / perfect labels)':>38}"
    )
    print()
    print(
        "Detection per volume (old = share rules before issue 13, new = the shipped "
        "sentiment_spike / empathy_deficit rules, streams/share_spike.py)"
    )
    print(header)
    print("-" * len(header))
    details: list[str] = []
    silence_rows: dict[float, dict[str, SilenceFigures]] = {}
    for rate in rates:
        plan = plan_for(rate, args.full, args.engine_max_rate)
        t = time.perf_counter()
        res = run_volume(rate, pool, plan, args.seed, scorer, shipped, print, silence)
        silence_rows[rate] = {name: SilenceFigures.of(res, name) for name in silence}
        row: dict[str, Any] = {
            "calm_brand_weeks": round(res.calm_weeks, 2),
            "burst_stream_weeks": round(res.burst_weeks, 2),
            "oracle_headline": oracle[str(rate)],
            "engine_checks": res.engine_checks,
            "seconds": round(time.perf_counter() - t, 1),
        }
        for name in ("old", "new"):
            tallies = res.tallies[name]
            fa = res.calm_false_alarms[name]
            row[name] = {
                "bursts": {config: tally.as_dict() for config, tally in sorted(tallies.items())},
                "negative_all": _merge(tallies, "negative").as_dict(),
                "deficit_all": _merge(tallies, "deficit").as_dict(),
                "false_alarms_per_brand_week": {
                    kind: round(count / res.calm_weeks, 3) for kind, count in fa.items()
                },
                "false_alarms_outside_bursts_per_week": round(
                    res.outside_false_alarms[name] / res.burst_weeks, 3
                ),
            }
            head = tallies.get(HEADLINE.name)
            neg, dfc = _merge(tallies, "negative"), _merge(tallies, "deficit")
            o = oracle[str(rate)]
            print(
                f"{rate:>8g} {name:5} | {_pct(head):>11} {_delay(head):>6} | {_pct(neg):>7} "
                f"{_delay(neg):>6} | {_pct(dfc):>7} {_delay(dfc):>6} | "
                f"{fa['negative'] / res.calm_weeks:>9.2f} {fa['deficit'] / res.calm_weeks:>9.2f} "
                f"{res.outside_false_alarms[name] / res.burst_weeks:>7.2f} | "
                + (
                    f"{o['scorer_labels']:>18.0%} / {o['human_labels']:<17.0%}"
                    if name == "old"
                    else ""
                )
            )
            cells = " ".join(
                f"{c.name}: {_pct(tallies.get(c.name))} {_delay(tallies.get(c.name))}"
                for c in (*NEGATIVE_BURSTS, *DEFICIT_BURSTS)
            )
            details.append(f"{rate:>6g}/h {name:3}  {cells}")
        checks = res.engine_checks
        if checks:
            same = sum(c["identical"] for c in checks)
            transitions = sum(c["transitions"] for c in checks)
            details.append(
                f"{rate:>6g}/h new rules, adapter vs the real Engine: identical on "
                f"{same}/{len(checks)} streams ({sum(c['mentions'] for c in checks):,} mentions, "
                f"{transitions} transitions)"
            )
        results["volumes"][f"{rate:g}"] = row
    print()
    print(
        f"Bursts per configuration (detected share, median delay from the burst's start; a firing "
        f"up to {GRACE} min after the burst's end counts):"
    )
    for line in details:
        print(line)
    if silence:
        results["silence"] = report_silence(silence_rows, silence)
    elapsed = time.perf_counter() - started
    results["seconds"] = round(elapsed, 1)
    print()
    print(
        "Goals: >= 90% of x2 2h bursts found at >= 10/h, median delay < 30 min at >= 100/h, "
        f"<= 1 false alarm per brand-week. {elapsed:.0f} s."
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    shown = args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output
    print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
