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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from streams.records import (
    Alert,
    AlertState,
    AwareDatetime,
    CustomerHealth,
    CustomerTier,
    Example,
    ScoredMention,
    fingerprint,
)
from streams.rules import (
    CustomerAtRiskRule,
    RuleSet,
    SentimentSpikeRule,
    render_template,
)
from streams.windows import (
    MINUTE,
    Baseline,
    CustomerMention,
    MinuteBucket,
    RiskScore,
    floor_minute,
    risk_score,
    window_stats,
)

__all__ = [
    "BrandState",
    "CustomerState",
    "Engine",
    "EngineOutput",
    "RuleState",
    "RuleStatus",
]

DEFAULT_SEVERITY = "warning"
DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_WATCH_AT = 40.0
LAST_MENTIONS = 3
CUSTOMER_DECAY_MINUTES = 15
"""Watched customers are re-scored for decay every quarter hour, everyone else hourly: a risk that
decays over days needs no finer step, and per-minute sweeps would dominate the engine's time."""


class RuleStatus(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


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


class BrandState(BaseModel):
    """Everything the engine remembers about one brand; JSON round-trips losslessly."""

    model_config = ConfigDict(extra="forbid")

    brand: str
    buckets: list[MinuteBucket] = []
    """Minute buckets, oldest first: the open minutes and the closed ones a window still needs."""
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
    late: int = 0
    """Mentions dropped because their minute was already closed."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


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
        self._spike_rules = rules.spike_rules
        self._customer_rules = rules.customer_rules
        self._retention = max((r.window_minutes for r in self._spike_rules), default=1)
        self._primary = self._customer_rules[0] if self._customer_rules else None
        self._lookback = self._primary.lookback if self._primary else DEFAULT_LOOKBACK
        self._max_lookback = max(
            (r.lookback for r in self._customer_rules), default=DEFAULT_LOOKBACK
        )
        self._horizon = max(customer_horizon, self._max_lookback)
        self._watch_at = self._primary.resolve_below if self._primary else DEFAULT_WATCH_AT

    # --- public API -----------------------------------------------------------------------------

    def new_state(self, brand: str) -> BrandState:
        """Fresh state for a brand never seen before."""
        return BrandState(brand=brand, rules={r.alert: RuleState() for r in self._spike_rules})

    def process(self, state: BrandState, batch: Sequence[ScoredMention]) -> EngineOutput:
        """Feed mentions of ``state.brand`` in arrival order; **mutates** ``state`` in place.

        Each mention is counted into its minute, then the watermark moves and every minute it
        passed is closed and evaluated. Mentions whose minute is already closed are counted in
        ``late`` and ``state.late_dropped``. Raises ``ValueError`` for a mention of another brand.
        """
        out = EngineOutput()
        for scored in batch:
            mention = scored.mention
            if mention.brand != state.brand:
                raise ValueError(f"mention {mention.id} is for {mention.brand}, not {state.brand}")
            at = mention.created_at
            if state.closed_until is not None and at < state.closed_until:
                state.late_dropped += 1
                out.late += 1
                continue
            self._bucket(state, floor_minute(at)).add(scored)
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

    @staticmethod
    def _bucket(state: BrandState, minute: datetime) -> MinuteBucket:
        for bucket in reversed(state.buckets):
            if bucket.minute == minute:
                return bucket
            if bucket.minute < minute:
                break
        bucket = MinuteBucket(minute=minute)
        state.buckets.append(bucket)
        state.buckets.sort(key=lambda b: b.minute)
        return bucket

    def _brand_alert_active(self, state: BrandState) -> bool:
        return any(rs.state is not RuleStatus.INACTIVE for rs in state.rules.values())

    def _quiet(self, state: BrandState) -> bool:
        """No closed data in any window, no brand rule active and no customer worth watching."""
        assert state.closed_until is not None
        return (
            not self._brand_alert_active(state)
            and all(b.minute >= state.closed_until for b in state.buckets)
            and all(
                not c.firing and c.tier is CustomerTier.HEALTHY for c in state.customers.values()
            )
        )

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
                        state.baseline_until = leave
                    state.closed_until = resume
                    self._sweep_customers(state, resume, out, full=True)
                    continue
            self._close_minute(state, start, out)
            state.closed_until = start + MINUTE

    def _close_minute(self, state: BrandState, minute: datetime, out: EngineOutput) -> None:
        end = minute + MINUTE
        for rule in self._spike_rules:
            self._eval_spike(rule, state, end, out)
        if end.minute % CUSTOMER_DECAY_MINUTES == 0:
            self._sweep_customers(state, end, out, full=end.minute == 0)
        # Minutes leave the windows into the baseline, except while a brand alert is pending or
        # firing: an incident must not become its own baseline.
        keep_from = end - self._retention * MINUTE
        assert state.baseline_until is not None
        active = self._brand_alert_active(state)
        while state.baseline_until < keep_from:
            leaving = next((b for b in state.buckets if b.minute == state.baseline_until), None)
            if not active:
                state.baseline.feed(leaving, self.baseline_time_constant)
            state.baseline_until += MINUTE
        state.buckets = [b for b in state.buckets if b.minute >= keep_from]

    # --- brand rules ------------------------------------------------------------------------------

    def _eval_spike(
        self, rule: SentimentSpikeRule, state: BrandState, end: datetime, out: EngineOutput
    ) -> None:
        rs = state.rules.setdefault(rule.alert, RuleState())
        stats = window_stats(
            state.buckets, end=end, minutes=rule.window_minutes, examples=self.max_examples
        )
        base = state.baseline.negative_share
        share = stats.negative_share
        warm = (
            base is not None
            and state.baseline.minutes * MINUTE >= rule.warmup
            and state.baseline.volume >= rule.warmup_volume
        )
        condition = (
            warm
            and base is not None
            and stats.count >= rule.min_volume
            and share >= rule.min_negative_share
            and share - base >= rule.min_increase
        )
        rs.value = share
        rs.baseline = base

        if rs.state is RuleStatus.INACTIVE and condition:
            cooling = rs.last_resolved_at is not None and end < rs.last_resolved_at + rule.cooldown
            if not cooling:
                rs.state, rs.since, rs.pending_since = RuleStatus.PENDING, end, end
        if rs.state is RuleStatus.PENDING:
            assert rs.pending_since is not None
            if not condition:
                rs.state, rs.since, rs.pending_since = RuleStatus.INACTIVE, end, None
            elif end - rs.pending_since >= rule.for_:
                rs.state, rs.since, rs.firing_since, rs.clear_since = (
                    RuleStatus.FIRING,
                    end,
                    end,
                    None,
                )
                rs.peak, rs.peak_at, rs.examples = share, end, list(stats.examples)
                out.alerts.append(self._spike_alert(rule, state, rs, AlertState.FIRING, None))
                return
        if rs.state is RuleStatus.FIRING:
            if condition:
                rs.clear_since = None
                if rs.peak is None or share > rs.peak:
                    rs.peak, rs.peak_at, rs.examples = share, end, list(stats.examples)
                return
            if rs.clear_since is None:
                rs.clear_since = end
            if end - rs.clear_since >= rule.keep_firing_for:
                out.alerts.append(self._spike_alert(rule, state, rs, AlertState.RESOLVED, end))
                rs.state, rs.since, rs.last_resolved_at = RuleStatus.INACTIVE, end, end
                rs.pending_since = rs.firing_since = rs.clear_since = None

    def _spike_alert(
        self,
        rule: SentimentSpikeRule,
        state: BrandState,
        rs: RuleState,
        kind: AlertState,
        ends_at: datetime | None,
    ) -> Alert:
        assert rs.firing_since is not None and rs.value is not None
        labels = {
            "severity": DEFAULT_SEVERITY,
            **rule.labels,
            "alertname": rule.alert,
            "brand": state.brand,
        }
        values = {"brand": state.brand, "value": _pct(rs.value), "baseline": _pct(rs.baseline)}
        return Alert(
            labels=labels,
            annotations={k: render_template(v, values) for k, v in rule.annotations.items()},
            state=kind,
            value=round(rs.value, 4),
            baseline=None if rs.baseline is None else round(rs.baseline, 4),
            starts_at=rs.firing_since,
            ends_at=ends_at,
            fingerprint=fingerprint(labels),
            examples=tuple(rs.examples),
        )

    # --- customers --------------------------------------------------------------------------------

    def _customer_mention(
        self, state: BrandState, customer: str, scored: ScoredMention, out: EngineOutput
    ) -> None:
        at = scored.mention.created_at
        cs = state.customers.get(customer)
        if cs is None:
            cs = state.customers[customer] = CustomerState(last_mention_at=at)
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
        for customer in list(state.customers):
            cs = state.customers[customer]
            watched = bool(cs.firing) or cs.tier is not CustomerTier.HEALTHY
            if (full or watched) and (cs.evaluated_at is None or end > cs.evaluated_at):
                self._eval_customer(state, customer, cs, end, out)
            if full and end - cs.last_mention_at > self._horizon:
                for rule in self._customer_rules:
                    if rule.alert in cs.firing:
                        self._resolve_customer(rule, state, customer, cs, end, cs.risk_score, out)
                del state.customers[customer]

    def _eval_customer(
        self, state: BrandState, customer: str, cs: CustomerState, at: datetime, out: EngineOutput
    ) -> None:
        cs.evaluated_at = at
        cs.mentions = [m for m in cs.mentions if at - m.at <= self._max_lookback]
        risk = risk_score(cs.mentions, at=at, lookback=self._lookback)
        for rule in self._customer_rules:
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
                cs.firing[rule.alert] = at
                out.alerts.append(
                    self._customer_alert(
                        rule, state, customer, cs, risk.score, AlertState.FIRING, None
                    )
                )
        elif risk.score < rule.resolve_below:
            self._resolve_customer(rule, state, customer, cs, at, risk.score, out)

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
