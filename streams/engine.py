"""The rule engine: a pure function of (brand state, scored mentions, watermark) → alerts.

Event time is ``mention.created_at``. The watermark of a brand is the latest event time seen minus
the allowed lateness; each time it passes a minute boundary that minute is closed and every rule is
evaluated at the minute's end, one closed minute after the other. Nothing here reads the clock, so
the same mentions in the same order give the same alerts however fast they arrive and however they
are split into batches.

State lives in ``BrandState`` (JSON-serialisable, bounded): the Faust agent keeps one per brand in a
plain table and reassigns it after every ``process`` call so the changelog carries it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.detectors import Detection, VolumeSurgeDetector
from streams.records import (
    Alert,
    AlertState,
    AwareDatetime,
    CustomerHealth,
    CustomerTier,
    Example,
    Incident,
    IncidentPoint,
    IncidentStatus,
    Mention,
    ScoredMention,
    fingerprint,
)
from streams.rules import (
    BrandRule,
    CustomerAtRiskRule,
    EmpathyDeficitRule,
    RuleGroup,
    RuleSet,
    SentimentSpikeRule,
    ThresholdRule,
    VolumeSurgeRule,
    render_template,
)
from streams.windows import (
    MINUTE,
    Baseline,
    CustomerMention,
    MinuteBucket,
    RiskScore,
    WindowStats,
    floor_minute,
    risk_score,
    scores_nothing,
    window_stats,
)

__all__ = [
    "BrandState",
    "CustomerState",
    "Engine",
    "EngineOutput",
    "RuleState",
    "RuleStatus",
    "run_volume_rule",
]

DEFAULT_SEVERITY = "warning"
DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_WATCH_AT = 40.0
LAST_MENTIONS = 3
MAX_INCIDENT_POINTS = 720
"""Minutes of an incident's series kept (12 hours); later minutes only update peak and status."""
MAX_RECENT_POINTS = 60
"""Points kept before firing, so an incident's series starts at its onset."""
INCIDENT_TRACKING = timedelta(days=1)
"""How long after resolving an incident waits for recovery before it is closed as unrecovered."""
HOURS_OF_WEEK = 168
MAX_ZERO_STEPS = 7 * 24 * 60
"""Silent minutes a volume detector is stepped through after a long gap (a week at most)."""
CUSTOMER_DECAY_MINUTES = 15
"""Watched customers are re-scored for decay every quarter hour, everyone else hourly: a risk that
decays over days needs no finer step, and per-minute sweeps would dominate the engine's time."""


class RuleStatus(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class IncidentState(BaseModel):
    """The incident a rule is following for a brand (see :class:`streams.records.Incident`)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    onset: AwareDatetime
    firing_at: AwareDatetime
    firings: int = 1
    peak_value: float
    peak_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    in_band_since: AwareDatetime | None = None
    series: list[IncidentPoint] = []
    series_truncated: bool = False


class RuleState(BaseModel):
    """Where one brand-level rule stands for one brand."""

    model_config = ConfigDict(extra="forbid")

    state: RuleStatus = RuleStatus.INACTIVE
    since: AwareDatetime | None = None
    """When the rule entered its current state."""
    pending_since: AwareDatetime | None = None
    firing_since: AwareDatetime | None = None
    """``starts_at`` of the firing alert."""
    clear_since: AwareDatetime | None = None
    """First evaluation with the condition false while firing (for ``keep_firing_for``)."""
    last_resolved_at: AwareDatetime | None = None
    """For the cooldown."""
    value: float | None = None
    baseline: float | None = None
    peak: float | None = None
    peak_at: AwareDatetime | None = None
    examples: list[Example] = []
    """Examples at the peak of the current episode."""
    baselines: list[Baseline] = []
    """The rule's own baseline: one slot (flat) or 168 (``hour_of_week``), fed by the minutes
    that leave its window while it is inactive."""
    detectors: dict[str, dict[str, Any]] = {}
    """Volume-surge detector state per baseline slot."""
    recent: list[IncidentPoint] = []
    """The last minutes before firing (for the onset of an incident's series)."""
    incident: IncidentState | None = None


class CustomerState(BaseModel):
    """What one customer of one brand said recently, and how at risk that makes them."""

    model_config = ConfigDict(extra="forbid")

    mentions: list[CustomerMention] = []
    """Most recent mentions, oldest first, bounded by the engine's ``max_customer_mentions``."""
    last_mention_at: AwareDatetime
    evaluated_at: AwareDatetime | None = None
    risk_score: float = 0.0
    tier: CustomerTier = CustomerTier.HEALTHY
    reasons: list[str] = []
    firing: dict[str, AwareDatetime] = {}
    """alertname → ``starts_at`` of each customer rule firing for this customer."""
    last_resolved_at: dict[str, AwareDatetime] = {}
    pending: dict[str, AwareDatetime] = {}
    """alertname → since when the score has been at or above ``fire_at`` (for ``for``)."""
    clear_since: dict[str, AwareDatetime] = {}
    """alertname → since when a firing customer's score has been below ``resolve_below``."""


def _is_watched(cs: CustomerState) -> bool:
    """Firing, pending or not healthy: re-scored every quarter hour, not only hourly."""
    return bool(cs.firing or cs.pending) or cs.tier is not CustomerTier.HEALTHY


class BrandState(BaseModel):
    """Everything the engine remembers about one brand; JSON round-trips losslessly."""

    model_config = ConfigDict(extra="forbid")

    brand: str
    buckets: list[MinuteBucket] = []
    """Minute buckets, oldest first: the open minutes and the closed ones a window still needs."""
    scopes: dict[str, list[MinuteBucket]] = {}
    """Buckets of the mentions a scoped rule sees (sources/segments), by the rule's scope key."""
    baseline: Baseline = Baseline()
    max_event_time: AwareDatetime | None = None
    watermark: AwareDatetime | None = None
    closed_until: AwareDatetime | None = None
    """Every minute starting before this instant is closed and evaluated."""
    baseline_until: AwareDatetime | None = None
    """Every minute starting before this instant has left the windows (fed to or kept from the
    baseline): the baseline never overlaps the windows it is compared with."""
    rules: dict[str, RuleState] = {}
    customers: dict[str, CustomerState] = {}
    late_dropped: int = 0

    @functools.cached_property
    def watched_customers(self) -> set[str]:
        """Ids of the customers firing, pending or not healthy: an index built on first use and
        then kept up to date by :class:`Engine` (the only writer of ``customers`` once a state is
        in use), so the quarter-hourly sweep need not test every customer. A cached property:
        not a field, so never stored, compared or serialised; :meth:`reindex` drops it."""
        return {c for c, cs in self.customers.items() if _is_watched(cs)}

    def reindex(self) -> None:
        """Drop the watched index; call after changing ``customers`` other than by the engine."""
        self.__dict__.pop("watched_customers", None)

    def _track(self, customer: str, cs: CustomerState | None) -> None:
        """Update the watched index after ``customer`` was re-scored (``cs``) or removed (None)."""
        watched: set[str] | None = self.__dict__.get("watched_customers")
        if watched is None:
            return  # not built yet: it will be, from the customers themselves
        if cs is not None and _is_watched(cs):
            watched.add(customer)
        else:
            watched.discard(customer)

    @property
    def last_evaluated_minute(self) -> datetime | None:
        """Start of the last closed (and evaluated) minute."""
        return None if self.closed_until is None else self.closed_until - MINUTE


@dataclass
class EngineOutput:
    """What one ``process``/``advance`` call produced."""

    alerts: list[Alert] = field(default_factory=list)
    """Transitions to firing and to resolved, in event-time order (pending stays internal)."""
    customers: list[CustomerHealth] = field(default_factory=list)
    """Customers whose score, tier or reasons changed."""
    incidents: list[Incident] = field(default_factory=list)
    """Incidents that opened or changed (one per rule and brand per closed minute at most)."""
    late: int = 0
    """Mentions dropped because their minute was already closed."""


@dataclass
class Erased:
    """What :meth:`Engine.erase` removed from one brand's state."""

    examples: int = 0
    """Example mentions (id and text) kept as evidence in minute buckets and rule states."""
    customer_mentions: int = 0
    changed_customers: list[str] = field(default_factory=list)
    """Customers who lost some of their recent mentions."""
    customers: list[str] = field(default_factory=list)
    """Customers removed whole: the one named, and any left without mentions."""
    alerts: list[Alert] = field(default_factory=list)
    """Resolved transitions for the customer alerts that were firing for a removed customer."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _format(rule: BrandRule, value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(rule, VolumeSurgeRule) or (
        isinstance(rule, ThresholdRule) and rule.metric == "count"
    ):
        return f"{value:.0f}"
    if isinstance(rule, ThresholdRule) and rule.metric == "mean_compound":
        return f"{value:.2f}"
    return _pct(value)


def _slot(rule: BrandRule, minute: datetime) -> int:
    """Baseline slot of a minute: 0 (flat) or its hour of the week (Monday 00:00 UTC is 0)."""
    if rule.baseline.seasonality == "flat":
        return 0
    return minute.weekday() * 24 + minute.hour


def _scope_matcher(rule: BrandRule) -> Callable[[Mention], bool]:
    sources = frozenset(rule.sources) if rule.sources is not None else None
    seg = rule.segments
    wanted: list[tuple[str, frozenset[str]]] = []
    if seg is not None:
        for name in ("product", "region", "channel"):
            values = getattr(seg, name)
            if values is not None:
                wanted.append((name, frozenset(values)))

    def matches(mention: Mention) -> bool:
        if sources is not None and mention.source not in sources:
            return False
        segment = mention.segment
        return all(getattr(segment, name) in values for name, values in wanted)

    return matches


@dataclass
class _Verdict:
    """One rule's evaluation at one closed minute."""

    value: float
    baseline: float | None
    condition: bool
    elevated: bool
    """Outside the baseline band (for recovery), guards aside."""
    examples: Callable[[], tuple[Example, ...]] = tuple
    """The window's most negative mentions, computed only when an alert needs them."""


class Engine:
    """Evaluates a ``RuleSet`` over per-brand state; pure and deterministic.

    ``baseline_time_constant`` is the memory of the brand baseline, ``customer_horizon`` how long a
    customer without mentions is remembered (at least the longest customer-rule lookback),
    ``max_customer_mentions`` and ``max_examples`` bound what is kept per customer and per alert.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        allowed_lateness: timedelta,
        baseline_time_constant: timedelta = timedelta(hours=6),
        customer_horizon: timedelta = timedelta(days=7),
        max_customer_mentions: int = 20,
        max_examples: int = 3,
    ) -> None:
        if allowed_lateness < timedelta(0):
            raise ValueError("allowed_lateness must not be negative")
        if baseline_time_constant <= timedelta(0):
            raise ValueError("baseline_time_constant must be positive")
        self.rules = rules
        self.allowed_lateness = allowed_lateness
        self.baseline_time_constant = baseline_time_constant
        self.max_customer_mentions = max_customer_mentions
        self.max_examples = max_examples
        self._brand_rules = rules.brand_rules
        self._customer_rules = rules.customer_rules
        self._retention = max((r.window_minutes for r in self._brand_rules), default=1)
        self._scopes: dict[str, Callable[[Mention], bool]] = {}
        for rule in self._brand_rules:
            if rule.scope_key and rule.scope_key not in self._scopes:
                self._scopes[rule.scope_key] = _scope_matcher(rule)
        self._scope_items = tuple(self._scopes.items())
        self._primary = self._customer_rules[0] if self._customer_rules else None
        self._lookback = self._primary.lookback if self._primary else DEFAULT_LOOKBACK
        self._max_lookback = max(
            (r.lookback for r in self._customer_rules), default=DEFAULT_LOOKBACK
        )
        self._horizon = max(customer_horizon, self._max_lookback)
        self._watch_at = self._primary.resolve_below if self._primary else DEFAULT_WATCH_AT
        # A score of 0 can neither fire a customer rule nor put a customer on watch: see
        # ``_eval_customer``'s shortcut for customers with nothing against them.
        self._zero_is_quiet = self._watch_at > 0.0 and all(
            r.fire_at > 0.0 for r in self._customer_rules
        )

    # --- public API -----------------------------------------------------------------------------

    def new_state(self, brand: str) -> BrandState:
        """Fresh state for a brand never seen before."""
        return BrandState(
            brand=brand,
            rules={r.alert: RuleState() for r in self._brand_rules if r.applies_to(brand)},
        )

    def process(self, state: BrandState, batch: Sequence[ScoredMention]) -> EngineOutput:
        """Feed mentions of ``state.brand`` in arrival order; **mutates** ``state`` in place.

        Each mention is counted into its minute, then the watermark moves and every minute it
        passed is closed and evaluated. Mentions whose minute is already closed are counted in
        ``late`` and ``state.late_dropped``. Raises ``ValueError`` for a mention of another brand.
        """
        out = EngineOutput()
        scopes = self._scope_items
        for scored in batch:
            mention = scored.mention
            if mention.brand != state.brand:
                raise ValueError(f"mention {mention.id} is for {mention.brand}, not {state.brand}")
            at = mention.created_at
            if state.closed_until is not None and at < state.closed_until:
                state.late_dropped += 1
                out.late += 1
                continue
            minute = floor_minute(at)
            self._bucket(state.buckets, minute).add(scored)
            if scopes:
                for key, matches in scopes:
                    if matches(mention):
                        self._bucket(state.scopes.setdefault(key, []), minute).add(scored)
            if mention.customer_id:
                self._customer_mention(state, mention.customer_id, scored, out)
            if state.max_event_time is None or at > state.max_event_time:
                state.max_event_time = at
            self._advance_to(state, state.max_event_time - self.allowed_lateness, out)
        return out

    def advance(self, state: BrandState, watermark: datetime) -> EngineOutput:
        """Close every minute that ends at or before ``watermark``; **mutates** ``state``.

        Used at the end of input (pass the last event time, or later) and by a timer so quiet
        brands still resolve. A watermark behind the current one changes nothing.
        """
        out = EngineOutput()
        self._advance_to(state, watermark, out)
        return out

    # --- minutes ---------------------------------------------------------------------------------

    def erase(
        self, state: BrandState, mention_ids: AbstractSet[str], customer_id: str | None = None
    ) -> Erased:
        """Remove a person's data from ``state`` (right to erasure); **mutates** ``state``.

        Every kept copy of the mentions in ``mention_ids`` goes (examples in minute buckets and in
        rule states, a customer's recent mentions), and so does the customer ``customer_id``.
        Counts, sums, baselines and detector state stay: they hold no text and no identity.
        """
        erased = Erased()
        for buckets in (state.buckets, *state.scopes.values()):
            for bucket in buckets:
                kept = [e for e in bucket.examples if e.id not in mention_ids]
                erased.examples += len(bucket.examples) - len(kept)
                bucket.examples = kept
        for rs in state.rules.values():
            kept_examples = [e for e in rs.examples if e.id not in mention_ids]
            erased.examples += len(rs.examples) - len(kept_examples)
            rs.examples = kept_examples
        for customer, cs in list(state.customers.items()):
            kept_mentions = [m for m in cs.mentions if m.id not in mention_ids]
            erased.customer_mentions += len(cs.mentions) - len(kept_mentions)
            if customer == customer_id or not kept_mentions:
                cs.mentions = []
                erased.alerts.extend(self._resolve_erased(state, customer, cs))
                del state.customers[customer]
                state._track(customer, None)
                erased.customers.append(customer)
            elif len(kept_mentions) < len(cs.mentions):
                cs.mentions = kept_mentions
                erased.changed_customers.append(customer)
        state.reindex()
        return erased

    def _resolve_erased(self, state: BrandState, customer: str, cs: CustomerState) -> list[Alert]:
        """A resolved alert (without examples) for each customer rule firing for ``customer``,
        so no alert stays firing for a customer who no longer exists."""
        at = state.watermark or state.max_event_time or cs.last_mention_at
        return [
            self._customer_alert(rule, state, customer, cs, 0.0, AlertState.RESOLVED, at)
            for rule in self._customer_rules
            if rule.alert in cs.firing
        ]

    @staticmethod
    def _bucket(buckets: list[MinuteBucket], minute: datetime) -> MinuteBucket:
        for bucket in reversed(buckets):
            if bucket.minute == minute:
                return bucket
            if bucket.minute < minute:
                break
        bucket = MinuteBucket(minute=minute)
        buckets.append(bucket)
        buckets.sort(key=lambda b: b.minute)
        return bucket

    def _brand_alert_active(self, state: BrandState) -> bool:
        return any(rs.state is not RuleStatus.INACTIVE for rs in state.rules.values())

    def _quiet(self, state: BrandState) -> bool:
        """No closed data in any window, no brand rule active or following an incident, and no
        customer worth watching."""
        assert state.closed_until is not None
        closed = state.closed_until
        return (
            not self._brand_alert_active(state)
            and all(rs.incident is None for rs in state.rules.values())
            and all(b.minute >= closed for b in state.buckets)
            and all(b.minute >= closed for bs in state.scopes.values() for b in bs)
            and not state.watched_customers
        )

    def _rules_of(self, state: BrandState) -> Iterator[tuple[BrandRule, RuleState]]:
        for rule in self._brand_rules:
            if rule.applies_to(state.brand):
                rs = state.rules.get(rule.alert)
                if rs is None:
                    rs = state.rules[rule.alert] = RuleState()
                yield rule, rs

    def _advance_to(self, state: BrandState, watermark: datetime, out: EngineOutput) -> None:
        if state.watermark is not None and watermark <= state.watermark:
            return
        state.watermark = watermark
        target = floor_minute(watermark)
        if state.closed_until is None:
            state.closed_until = state.buckets[0].minute if state.buckets else target
            state.baseline_until = state.closed_until
        while state.closed_until < target:
            start = state.closed_until
            if self._quiet(state):
                # Long silence: skip the empty minutes in one step (same result, O(1) time).
                resume = min((b.minute for b in state.buckets), default=target)
                resume = min(resume, target)
                if resume - start > MINUTE:
                    assert state.baseline_until is not None
                    leave = resume - self._retention * MINUTE
                    if leave > state.baseline_until:
                        skipped = int((leave - state.baseline_until) / MINUTE)
                        state.baseline.feed(None, self.baseline_time_constant, times=skipped)
                        for rule, rs in self._rules_of(state):
                            self._feed_silence(rule, rs, state.baseline_until, skipped)
                        state.baseline_until = leave
                    for rule, rs in self._rules_of(state):
                        if isinstance(rule, VolumeSurgeRule):
                            self._step_silence(rule, rs, start, resume)
                    state.closed_until = resume
                    self._sweep_customers(state, resume, out, full=True)
                    continue
            self._close_minute(state, start, out)
            state.closed_until = start + MINUTE

    def _close_minute(self, state: BrandState, minute: datetime, out: EngineOutput) -> None:
        end = minute + MINUTE
        for rule, rs in self._rules_of(state):
            verdict = self._evaluate(rule, rs, state, end)
            self._step_rule(rule, rs, state.brand, end, verdict, out)
        if end.minute % CUSTOMER_DECAY_MINUTES == 0:
            self._sweep_customers(state, end, out, full=end.minute == 0)
        # Minutes leave the windows into the baselines, except while an alert is pending or
        # firing: an incident must not become its own baseline.
        keep_from = end - self._retention * MINUTE
        assert state.baseline_until is not None
        active = self._brand_alert_active(state)
        while state.baseline_until < keep_from:
            leaving_minute = state.baseline_until
            leaving = next((b for b in state.buckets if b.minute == leaving_minute), None)
            if not active:
                state.baseline.feed(leaving, self.baseline_time_constant)
            for rule, rs in self._rules_of(state):
                if isinstance(rule, VolumeSurgeRule) or rs.state is not RuleStatus.INACTIVE:
                    continue
                buckets = state.scopes.get(rule.scope_key, []) if rule.scope_key else None
                mine = (
                    leaving
                    if buckets is None
                    else next((b for b in buckets if b.minute == leaving_minute), None)
                )
                self._baselines(rule, rs)[_slot(rule, leaving_minute)].feed(
                    mine, self.baseline_time_constant
                )
            state.baseline_until += MINUTE
        state.buckets = [b for b in state.buckets if b.minute >= keep_from]
        for key, buckets in state.scopes.items():
            if buckets and buckets[0].minute < keep_from:
                state.scopes[key] = [b for b in buckets if b.minute >= keep_from]

    # --- baselines --------------------------------------------------------------------------------

    @staticmethod
    def _baselines(rule: BrandRule, rs: RuleState) -> list[Baseline]:
        slots = 1 if rule.baseline.seasonality == "flat" else HOURS_OF_WEEK
        if len(rs.baselines) != slots:
            rs.baselines = [Baseline() for _ in range(slots)]
        return rs.baselines

    def _window_baseline(self, rule: BrandRule, rs: RuleState, end: datetime) -> Baseline:
        """The baseline a window ending at ``end`` is compared with.

        Flat: the one slot. Hour of week: the slots of the window's minutes, each weighted by
        its minutes in the window (per-minute rates), so a window across an hour boundary is
        compared with a blend of both hours; warm-up counts for the least-known slot.
        """
        baselines = self._baselines(rule, rs)
        if len(baselines) == 1:
            return baselines[0]
        minutes: dict[int, int] = {}
        start = end - rule.window_minutes * MINUTE
        at = start
        while at < end:
            hour_end = min(end, at.replace(minute=0) + timedelta(hours=1))
            slot = _slot(rule, at)
            minutes[slot] = minutes.get(slot, 0) + int((hour_end - at) / MINUTE)
            at = hour_end
        blend = Baseline(
            minutes=min(baselines[s].minutes for s in minutes),
            volume=min(baselines[s].volume for s in minutes),
        )
        for slot, m in minutes.items():
            b = baselines[slot]
            if b.weight <= 0.0:
                continue
            scale = m / b.weight
            blend.count += b.count * scale
            blend.negative += b.negative * scale
            blend.compound_sum += b.compound_sum * scale
            blend.deficit += b.deficit * scale
            blend.churn += b.churn * scale
            blend.weight += m
        return blend

    def _feed_silence(self, rule: BrandRule, rs: RuleState, start: datetime, minutes: int) -> None:
        if isinstance(rule, VolumeSurgeRule):
            return
        baselines = self._baselines(rule, rs)
        if len(baselines) == 1:
            baselines[0].feed(None, self.baseline_time_constant, times=minutes)
            return
        per_slot = [0] * HOURS_OF_WEEK
        if minutes >= HOURS_OF_WEEK * 60:
            weeks, minutes = divmod(minutes, HOURS_OF_WEEK * 60)
            per_slot = [weeks * 60] * HOURS_OF_WEEK
            start += weeks * HOURS_OF_WEEK * 60 * MINUTE
        at = start
        while minutes > 0:
            hour_end = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            n = min(minutes, int((hour_end - at) / MINUTE))
            per_slot[_slot(rule, at)] += n
            minutes -= n
            at = hour_end
        for slot, n in enumerate(per_slot):
            baselines[slot].feed(None, self.baseline_time_constant, times=n)

    def _detector(self, rule: VolumeSurgeRule, rs: RuleState, slot: int) -> VolumeSurgeDetector:
        stored = rs.detectors.get(str(slot))
        if stored is None:
            return VolumeSurgeDetector(rule.params)
        return VolumeSurgeDetector.from_state(rule.params, stored)

    def _step_silence(
        self, rule: VolumeSurgeRule, rs: RuleState, start: datetime, resume: datetime
    ) -> None:
        """Show a volume detector the silent minutes it would have seen (a zero count each)."""
        minutes = min(int((resume - start) / MINUTE), MAX_ZERO_STEPS)
        first = resume - minutes * MINUTE
        detectors: dict[int, VolumeSurgeDetector] = {}
        for i in range(minutes):
            slot = _slot(rule, first + i * MINUTE)
            detector = detectors.get(slot)
            if detector is None:
                detector = detectors[slot] = self._detector(rule, rs, slot)
            detector.step(0.0)
        for slot, detector in detectors.items():
            rs.detectors[str(slot)] = detector.to_state()

    # --- brand rules ------------------------------------------------------------------------------

    def _evaluate(
        self, rule: BrandRule, rs: RuleState, state: BrandState, end: datetime
    ) -> _Verdict:
        buckets = state.scopes.get(rule.scope_key, []) if rule.scope_key else state.buckets
        stats = window_stats(buckets, end=end, minutes=rule.window_minutes, examples=0)

        def examples() -> tuple[Example, ...]:
            return window_stats(
                buckets, end=end, minutes=rule.window_minutes, examples=self.max_examples
            ).examples

        minute = end - MINUTE
        if isinstance(rule, VolumeSurgeRule):
            slot = _slot(rule, minute)
            detector = self._detector(rule, rs, slot)
            detection = detector.step(float(stats.count))
            rs.detectors[str(slot)] = detector.to_state()
            return self._volume_verdict(rule, float(stats.count), detection, examples)
        base_sums = self._window_baseline(rule, rs, end)
        warm = base_sums.minutes * MINUTE >= rule.warmup and base_sums.volume >= rule.warmup_volume
        enough = stats.count >= rule.min_volume
        if isinstance(rule, SentimentSpikeRule):
            value, base = stats.negative_share, base_sums.negative_share
            condition = (
                warm
                and base is not None
                and enough
                and value >= rule.min_negative_share
                and value - base >= rule.min_increase
            )
            elevated = base is None or value - base >= rule.min_increase / 2
        elif isinstance(rule, EmpathyDeficitRule):
            value, base = stats.deficit_share, base_sums.deficit_share
            condition = (
                warm
                and base is not None
                and enough
                and value >= rule.min_share
                and value - base >= rule.min_increase
            )
            elevated = base is None or value - base >= rule.min_increase / 2
        else:
            value, base = self._metric(rule, stats), self._base_metric(rule, base_sums)
            condition = enough and rule.holds(value)
            elevated = rule.holds(value)
        return _Verdict(value, base, condition, elevated, examples)

    @staticmethod
    def _volume_verdict(
        rule: VolumeSurgeRule,
        value: float,
        detection: Detection,
        examples: Callable[[], tuple[Example, ...]],
    ) -> _Verdict:
        return _Verdict(
            value=value,
            baseline=detection.baseline,
            condition=detection.condition and value >= rule.min_volume,
            elevated=detection.score >= 0.5,
            examples=examples,
        )

    @staticmethod
    def _metric(rule: ThresholdRule, stats: WindowStats) -> float:
        if rule.metric == "count":
            return float(stats.count)
        value: float = getattr(stats, rule.metric)
        return value

    @staticmethod
    def _base_metric(rule: ThresholdRule, base: Baseline) -> float | None:
        if rule.metric == "count":
            per_minute = base.count_per_minute
            return None if per_minute is None else per_minute * rule.window_minutes
        value: float | None = getattr(base, rule.metric)
        return value

    def _step_rule(
        self,
        rule: BrandRule,
        rs: RuleState,
        brand: str,
        end: datetime,
        verdict: _Verdict,
        out: EngineOutput,
    ) -> None:
        """The state machine every brand rule shares: inactive → pending → firing → resolved,
        with ``for``, ``keep_firing_for`` and ``cooldown``; then the incident it follows."""
        condition, value = verdict.condition, verdict.value
        rs.value, rs.baseline = value, verdict.baseline
        if rs.state is RuleStatus.INACTIVE and condition:
            cooling = rs.last_resolved_at is not None and end < rs.last_resolved_at + rule.cooldown
            if not cooling:
                rs.state, rs.since, rs.pending_since = RuleStatus.PENDING, end, end
                rs.recent = []
        if rs.state is RuleStatus.INACTIVE and rs.incident is None:
            return
        # Trusted values: skip validation (this runs every minute of every pending rule).
        point = IncidentPoint.model_construct(
            minute=end - MINUTE, value=round(value, 4), baseline=_round(verdict.baseline)
        )
        if rs.state is RuleStatus.PENDING:
            assert rs.pending_since is not None
            rs.recent.append(point)
            del rs.recent[:-MAX_RECENT_POINTS]
            if not condition:
                rs.state, rs.since, rs.pending_since = RuleStatus.INACTIVE, end, None
                rs.recent = []
            elif end - rs.pending_since >= rule.for_:
                rs.state, rs.since, rs.firing_since, rs.clear_since = (
                    RuleStatus.FIRING,
                    end,
                    end,
                    None,
                )
                rs.peak, rs.peak_at, rs.examples = value, end, list(verdict.examples())
                alert = self._brand_alert(rule, brand, rs, AlertState.FIRING, None)
                out.alerts.append(alert)
                self._open_incident(rule, rs, brand, alert, end, out)
                return
        elif rs.state is RuleStatus.FIRING:
            if condition:
                rs.clear_since = None
                if rs.peak is None or self._worse(rule, value, rs.peak):
                    rs.peak, rs.peak_at, rs.examples = value, end, list(verdict.examples())
            else:
                if rs.clear_since is None:
                    rs.clear_since = end
                if end - rs.clear_since >= rule.keep_firing_for:
                    out.alerts.append(self._brand_alert(rule, brand, rs, AlertState.RESOLVED, end))
                    rs.state, rs.since, rs.last_resolved_at = RuleStatus.INACTIVE, end, end
                    rs.pending_since = rs.firing_since = rs.clear_since = None
                    if rs.incident is not None:
                        rs.incident.resolved_at = end
        if rs.incident is not None:
            self._follow_incident(rule, rs, brand, end, point, verdict, out)

    @staticmethod
    def _worse(rule: BrandRule, value: float, than: float) -> bool:
        if isinstance(rule, ThresholdRule) and rule.op in ("<", "<="):
            return value < than
        return value > than

    def _brand_alert(
        self,
        rule: BrandRule,
        brand: str,
        rs: RuleState,
        kind: AlertState,
        ends_at: datetime | None,
    ) -> Alert:
        assert rs.firing_since is not None and rs.value is not None
        labels = {
            "severity": DEFAULT_SEVERITY,
            **rule.labels,
            "alertname": rule.alert,
            "brand": brand,
        }
        values = {
            "brand": brand,
            "value": _format(rule, rs.value),
            "baseline": _format(rule, rs.baseline),
        }
        return Alert(
            labels=labels,
            annotations={k: render_template(v, values) for k, v in rule.annotations.items()},
            state=kind,
            value=round(rs.value, 4),
            baseline=_round(rs.baseline),
            starts_at=rs.firing_since,
            ends_at=ends_at,
            fingerprint=fingerprint(labels),
            examples=tuple(rs.examples),
        )

    # --- incidents --------------------------------------------------------------------------------

    def _open_incident(
        self,
        rule: BrandRule,
        rs: RuleState,
        brand: str,
        alert: Alert,
        end: datetime,
        out: EngineOutput,
    ) -> None:
        inc = rs.incident
        if inc is not None:
            # Re-fired before recovering: the same incident goes on.
            inc.firings += 1
            inc.resolved_at = None
            inc.in_band_since = None
            if self._worse(rule, alert.value, inc.peak_value):
                inc.peak_value, inc.peak_at = alert.value, end
            out.incidents.append(self._incident(rule, brand, inc, end))
            return
        assert rs.pending_since is not None
        onset = rs.recent[0].minute if rs.recent else rs.pending_since - MINUTE
        series = rs.recent[-MAX_INCIDENT_POINTS:]
        peak = max(series, key=lambda p: p.value) if series else None
        rs.incident = IncidentState(
            id=f"{alert.fingerprint}:{onset.strftime('%Y%m%dT%H%MZ')}",
            onset=onset,
            firing_at=end,
            peak_value=peak.value if peak is not None else alert.value,
            peak_at=peak.minute + MINUTE if peak is not None else end,
            series=list(series),
        )
        rs.recent = []
        out.incidents.append(self._incident(rule, brand, rs.incident, end))

    def _follow_incident(
        self,
        rule: BrandRule,
        rs: RuleState,
        brand: str,
        end: datetime,
        point: IncidentPoint,
        verdict: _Verdict,
        out: EngineOutput,
    ) -> None:
        inc = rs.incident
        assert inc is not None
        if not inc.series or inc.series[-1].minute < point.minute:
            if len(inc.series) < MAX_INCIDENT_POINTS:
                inc.series.append(point)
            else:
                inc.series_truncated = True
        if rs.state is RuleStatus.FIRING and self._worse(rule, verdict.value, inc.peak_value):
            inc.peak_value, inc.peak_at = round(verdict.value, 4), end
        if verdict.elevated:
            inc.in_band_since = None
        elif inc.in_band_since is None:
            inc.in_band_since = point.minute
        status = IncidentStatus.FIRING
        if inc.resolved_at is not None:
            status = IncidentStatus.RESOLVED
            if inc.in_band_since is not None and end - inc.in_band_since >= rule.recovery:
                status = IncidentStatus.RECOVERED
            elif end - inc.resolved_at >= INCIDENT_TRACKING:
                status = IncidentStatus.UNRECOVERED
        out.incidents.append(self._incident(rule, brand, inc, end, status))
        if status in (IncidentStatus.RECOVERED, IncidentStatus.UNRECOVERED):
            rs.incident = None

    @staticmethod
    def _incident(
        rule: BrandRule,
        brand: str,
        inc: IncidentState,
        end: datetime,
        status: IncidentStatus | None = None,
    ) -> Incident:
        labels = {
            "severity": DEFAULT_SEVERITY,
            **rule.labels,
            "alertname": rule.alert,
            "brand": brand,
        }
        if status is None:
            status = IncidentStatus.FIRING if inc.resolved_at is None else IncidentStatus.RESOLVED
        recovered = end if status is IncidentStatus.RECOVERED else None
        return Incident(
            id=inc.id,
            fingerprint=fingerprint(labels),
            brand=brand,
            alertname=rule.alert,
            labels=labels,
            status=status,
            onset=inc.onset,
            firing_at=inc.firing_at,
            firings=inc.firings,
            peak_value=inc.peak_value,
            peak_at=inc.peak_at,
            resolved_at=inc.resolved_at,
            recovered_at=recovered,
            time_to_recover_s=None
            if recovered is None
            else (recovered - inc.onset).total_seconds(),
            updated_at=end,
            series=tuple(inc.series),
            series_truncated=inc.series_truncated,
        )

    # --- customers --------------------------------------------------------------------------------

    def _customer_mention(
        self, state: BrandState, customer: str, scored: ScoredMention, out: EngineOutput
    ) -> None:
        at = scored.mention.created_at
        cs = state.customers.get(customer)
        if cs is None:
            # Empty containers passed explicitly: pydantic deep-copies mutable defaults, which made
            # creating a customer cost more than scoring the mention. Same state, same JSON.
            cs = state.customers[customer] = CustomerState(
                last_mention_at=at,
                mentions=[],
                reasons=[],
                firing={},
                last_resolved_at={},
                pending={},
                clear_since={},
            )
        if any(m.id == scored.mention.id for m in cs.mentions):
            return  # already applied: customer state is stored apart (see streams/pipeline.py)
        cs.mentions.append(CustomerMention.of(scored))
        cs.mentions.sort(key=lambda m: (m.at, m.id))
        del cs.mentions[: -self.max_customer_mentions]
        cs.last_mention_at = max(cs.last_mention_at, at)
        # Evaluation time never goes backwards for a customer, so every kept mention is in its past.
        when = at if cs.evaluated_at is None else max(at, cs.evaluated_at)
        self._eval_customer(state, customer, cs, when, out)

    def _sweep_customers(
        self, state: BrandState, end: datetime, out: EngineOutput, *, full: bool
    ) -> None:
        """Re-score customers as time passes (``full``: everyone, and forget the long quiet)."""
        if not full:
            # Only the watched customers, from the engine's index rather than by testing every
            # customer; still in the customers' own order, so outputs come in the same order.
            watched = state.watched_customers
            if not watched:
                return
            for customer in [c for c in state.customers if c in watched]:
                cs = state.customers[customer]
                if cs.evaluated_at is None or end > cs.evaluated_at:
                    self._eval_customer(state, customer, cs, end, out)
            return
        for customer, cs in list(state.customers.items()):
            if cs.evaluated_at is None or end > cs.evaluated_at:
                self._eval_customer(state, customer, cs, end, out)
            if end - cs.last_mention_at > self._horizon:
                for rule in self._customer_rules:
                    if rule.alert in cs.firing:
                        self._resolve_customer(rule, state, customer, cs, end, cs.risk_score, out)
                del state.customers[customer]
                state._track(customer, None)

    def _eval_customer(
        self, state: BrandState, customer: str, cs: CustomerState, at: datetime, out: EngineOutput
    ) -> None:
        cs.evaluated_at = at
        # Mentions are kept oldest first, so only a too-old first one means some must go.
        if cs.mentions and at - cs.mentions[0].at > self._max_lookback:
            cs.mentions = [m for m in cs.mentions if at - m.at <= self._max_lookback]
        if (
            self._zero_is_quiet
            and cs.risk_score == 0.0
            and not cs.reasons
            and cs.tier is CustomerTier.HEALTHY
            and not (cs.firing or cs.pending or cs.clear_since)
            and all(map(scores_nothing, cs.mentions))
        ):
            # Most customers only ever said something neutral or positive. Their score is 0 with
            # no reasons at any time, which fires nothing, resolves nothing and changes nothing
            # they were last told: skip the scoring (every customer is re-scored hourly).
            state._track(customer, cs)
            return
        risk = risk_score(cs.mentions, at=at, lookback=self._lookback)
        for rule in self._customer_rules:
            if not rule.applies_to(state.brand):
                continue
            rule_risk = (
                risk
                if rule.lookback == self._lookback
                else risk_score(cs.mentions, at=at, lookback=rule.lookback)
            )
            self._eval_customer_rule(rule, state, customer, cs, rule_risk, at, out)
        if cs.firing:
            tier = CustomerTier.AT_RISK
        elif risk.score >= self._watch_at:
            tier = CustomerTier.WATCH
        else:
            tier = CustomerTier.HEALTHY
        reasons = list(risk.reasons)
        if (risk.score, tier, reasons) != (cs.risk_score, cs.tier, cs.reasons):
            cs.risk_score, cs.tier, cs.reasons = risk.score, tier, reasons
            out.customers.append(
                CustomerHealth(
                    brand=state.brand,
                    customer_id=customer,
                    risk_score=risk.score,
                    tier=tier,
                    reasons=tuple(reasons),
                    last_mentions=self._last_mentions(cs),
                    updated_at=at,
                )
            )
        state._track(customer, cs)

    def _eval_customer_rule(
        self,
        rule: CustomerAtRiskRule,
        state: BrandState,
        customer: str,
        cs: CustomerState,
        risk: RiskScore,
        at: datetime,
        out: EngineOutput,
    ) -> None:
        if rule.alert not in cs.firing:
            resolved = cs.last_resolved_at.get(rule.alert)
            cooling = resolved is not None and at < resolved + rule.cooldown
            if risk.score >= rule.fire_at and risk.mentions >= rule.min_mentions and not cooling:
                # ``for``: the score must stay at or above fire_at this long (pending until then).
                since = cs.pending.setdefault(rule.alert, at)
                if at - since >= rule.for_:
                    del cs.pending[rule.alert]
                    cs.firing[rule.alert] = at
                    out.alerts.append(
                        self._customer_alert(
                            rule, state, customer, cs, risk.score, AlertState.FIRING, None
                        )
                    )
            else:
                cs.pending.pop(rule.alert, None)
        elif risk.score < rule.resolve_below:
            # ``keep_firing_for``: below resolve_below this long before resolving.
            since = cs.clear_since.setdefault(rule.alert, at)
            if at - since >= rule.keep_firing_for:
                del cs.clear_since[rule.alert]
                self._resolve_customer(rule, state, customer, cs, at, risk.score, out)
        else:
            cs.clear_since.pop(rule.alert, None)

    def _resolve_customer(
        self,
        rule: CustomerAtRiskRule,
        state: BrandState,
        customer: str,
        cs: CustomerState,
        at: datetime,
        score: float,
        out: EngineOutput,
    ) -> None:
        out.alerts.append(
            self._customer_alert(rule, state, customer, cs, score, AlertState.RESOLVED, at)
        )
        del cs.firing[rule.alert]
        cs.last_resolved_at[rule.alert] = at

    def _last_mentions(self, cs: CustomerState) -> tuple[Example, ...]:
        latest = cs.mentions[-LAST_MENTIONS:][::-1]
        return tuple(Example(id=m.id, text=m.text) for m in latest)

    def _customer_alert(
        self,
        rule: CustomerAtRiskRule,
        state: BrandState,
        customer: str,
        cs: CustomerState,
        score: float,
        kind: AlertState,
        ends_at: datetime | None,
    ) -> Alert:
        labels = {
            "severity": DEFAULT_SEVERITY,
            **rule.labels,
            "alertname": rule.alert,
            "brand": state.brand,
            "customer": customer,
        }
        values = {"brand": state.brand, "customer": customer, "value": f"{score:.0f}"}
        return Alert(
            labels=labels,
            annotations={k: render_template(v, values) for k, v in rule.annotations.items()},
            state=kind,
            value=score,
            baseline=None,
            starts_at=cs.firing[rule.alert],
            ends_at=ends_at,
            fingerprint=fingerprint(labels),
            examples=self._last_mentions(cs),
        )


def run_volume_rule(
    rule: VolumeSurgeRule, counts: Iterable[tuple[datetime, float]], *, brand: str = "series"
) -> Iterator[tuple[datetime, float, Detection, bool]]:
    """Run a ``volume_surge`` rule causally over a series of bucket counts (``listenwell detect``).

    Each row is judged by the rule's detector from the rows before it, then goes through the same
    state machine as in the worker (``for``, ``keep_firing_for``, ``cooldown``, ``min_volume``),
    with the row's timestamp as the evaluation time. Yields ``(timestamp, value, detection,
    alert_started)`` where ``alert_started`` is true on the row where an alert starts firing.
    """
    engine = Engine(
        RuleSet(groups=(RuleGroup(name="detect", rules=(rule,)),)), allowed_lateness=timedelta(0)
    )
    rs = RuleState()
    detectors: dict[int, VolumeSurgeDetector] = {}
    for at, value in counts:
        slot = _slot(rule, at)
        detector = detectors.get(slot)
        if detector is None:
            detector = detectors[slot] = VolumeSurgeDetector(rule.params)
        detection = detector.step(value)
        out = EngineOutput()
        engine._step_rule(
            rule, rs, brand, at, Engine._volume_verdict(rule, value, detection, tuple), out
        )
        started = any(a.state is AlertState.FIRING for a in out.alerts)
        yield at, value, detection, started
