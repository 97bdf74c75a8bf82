"""Customers at risk: each customer's recent mentions, risk score, tier and customer-rule alerts.

:class:`CustomerTracker` keeps :class:`streams.state.CustomerState` per customer of a brand. A
customer is re-scored (:func:`streams.customer_risk.risk_score`) at each of their mentions, every
quarter hour while watched (firing, pending or not healthy) and every hour otherwise, when every
``customer_at_risk`` rule is judged: fire at ``fire_at`` after ``for`` (with ``min_mentions`` and
``cooldown``), resolve below ``resolve_below`` after ``keep_firing_for``. Customers silent for
longer than the horizon are forgotten. Pure; the time is the mention's or the closed minute's.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from streams.customer_risk import CustomerMention, RiskScore, risk_score, scores_nothing
from streams.records import (
    Alert,
    AlertState,
    CustomerHealth,
    CustomerTier,
    Example,
    ScoredMention,
    fingerprint,
)
from streams.rule_kinds.base import render_template
from streams.rule_kinds.customer import CustomerAtRiskRule
from streams.state import BrandState, CustomerState, EngineOutput, Erased

__all__ = ["CUSTOMER_DECAY_MINUTES", "CustomerTracker"]

DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_WATCH_AT = 40.0
LAST_MENTIONS = 3
CUSTOMER_DECAY_MINUTES = 15
"""Watched customers are re-scored for decay every quarter hour, everyone else hourly: a risk that
decays over days needs no finer step, and per-minute sweeps would dominate the engine's time."""


class CustomerTracker:
    """Scores the customers of a brand and judges the customer rules on them.

    ``horizon`` is how long a customer without mentions is remembered (at least the longest rule
    lookback); ``max_mentions`` bounds the mentions kept per customer.
    """

    def __init__(
        self, rules: Sequence[CustomerAtRiskRule], *, horizon: timedelta, max_mentions: int
    ) -> None:
        self.rules = tuple(rules)
        self.max_mentions = max_mentions
        primary = self.rules[0] if self.rules else None
        self._lookback = primary.lookback if primary else DEFAULT_LOOKBACK
        self._max_lookback = max((r.lookback for r in self.rules), default=DEFAULT_LOOKBACK)
        self.horizon = max(horizon, self._max_lookback)
        self._watch_at = primary.resolve_below if primary else DEFAULT_WATCH_AT
        # A score of 0 can neither fire a customer rule nor put a customer on watch: see
        # ``_evaluate``'s shortcut for customers with nothing against them.
        self._zero_is_quiet = self._watch_at > 0.0 and all(r.fire_at > 0.0 for r in self.rules)

    def mention(
        self, state: BrandState, customer: str, scored: ScoredMention, out: EngineOutput
    ) -> None:
        """Remember a new mention of ``customer`` and re-score them at its event time."""
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
        del cs.mentions[: -self.max_mentions]
        cs.last_mention_at = max(cs.last_mention_at, at)
        # Evaluation time never goes backwards for a customer, so every kept mention is in its past.
        when = at if cs.evaluated_at is None else max(at, cs.evaluated_at)
        self._evaluate(state, customer, cs, when, out)

    def sweep(self, state: BrandState, end: datetime, out: EngineOutput, *, full: bool) -> None:
        """Re-score customers as time passes (``full``: everyone, and forget the long quiet)."""
        if not full:
            # Only the watched customers, from the state's index rather than by testing every
            # customer; still in the customers' own order, so outputs come in the same order.
            watched = state.watched_customers
            if not watched:
                return
            for customer in [c for c in state.customers if c in watched]:
                cs = state.customers[customer]
                if cs.evaluated_at is None or end > cs.evaluated_at:
                    self._evaluate(state, customer, cs, end, out)
            return
        for customer, cs in list(state.customers.items()):
            if cs.evaluated_at is None or end > cs.evaluated_at:
                self._evaluate(state, customer, cs, end, out)
            if end - cs.last_mention_at > self.horizon:
                for rule in self.rules:
                    if rule.alert in cs.firing:
                        self._resolve(rule, state, customer, cs, end, cs.risk_score, out)
                del state.customers[customer]
                state.track(customer, None)

    def erase(
        self,
        state: BrandState,
        mention_ids: AbstractSet[str],
        customer_id: str | None,
        erased: Erased,
    ) -> None:
        """Drop the mentions ``mention_ids`` from every customer, and remove ``customer_id`` and
        every customer left without mentions (resolving their firing alerts, without examples)."""
        for customer, cs in list(state.customers.items()):
            kept_mentions = [m for m in cs.mentions if m.id not in mention_ids]
            erased.customer_mentions += len(cs.mentions) - len(kept_mentions)
            if customer == customer_id or not kept_mentions:
                cs.mentions = []
                at = state.watermark or state.max_event_time or cs.last_mention_at
                erased.alerts.extend(
                    self._alert(rule, state, customer, cs, 0.0, AlertState.RESOLVED, at)
                    for rule in self.rules
                    if rule.alert in cs.firing
                )
                del state.customers[customer]
                state.track(customer, None)
                erased.customers.append(customer)
            elif len(kept_mentions) < len(cs.mentions):
                cs.mentions = kept_mentions
                erased.changed_customers.append(customer)

    def _evaluate(
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
            state.track(customer, cs)
            return
        risk = risk_score(cs.mentions, at=at, lookback=self._lookback)
        for rule in self.rules:
            if not rule.applies_to(state.brand):
                continue
            rule_risk = (
                risk
                if rule.lookback == self._lookback
                else risk_score(cs.mentions, at=at, lookback=rule.lookback)
            )
            self._judge(rule, state, customer, cs, rule_risk, at, out)
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
                    last_mentions=_last_mentions(cs),
                    updated_at=at,
                )
            )
        state.track(customer, cs)

    def _judge(
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
                        self._alert(rule, state, customer, cs, risk.score, AlertState.FIRING, None)
                    )
            else:
                cs.pending.pop(rule.alert, None)
        elif risk.score < rule.resolve_below:
            # ``keep_firing_for``: below resolve_below this long before resolving.
            since = cs.clear_since.setdefault(rule.alert, at)
            if at - since >= rule.keep_firing_for:
                del cs.clear_since[rule.alert]
                self._resolve(rule, state, customer, cs, at, risk.score, out)
        else:
            cs.clear_since.pop(rule.alert, None)

    def _resolve(
        self,
        rule: CustomerAtRiskRule,
        state: BrandState,
        customer: str,
        cs: CustomerState,
        at: datetime,
        score: float,
        out: EngineOutput,
    ) -> None:
        out.alerts.append(self._alert(rule, state, customer, cs, score, AlertState.RESOLVED, at))
        del cs.firing[rule.alert]
        cs.last_resolved_at[rule.alert] = at

    @staticmethod
    def _alert(
        rule: CustomerAtRiskRule,
        state: BrandState,
        customer: str,
        cs: CustomerState,
        score: float,
        kind: AlertState,
        ends_at: datetime | None,
    ) -> Alert:
        labels = rule.alert_labels(state.brand, customer)
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
            examples=_last_mentions(cs),
        )


def _last_mentions(cs: CustomerState) -> tuple[Example, ...]:
    latest = cs.mentions[-LAST_MENTIONS:][::-1]
    return tuple(Example(id=m.id, text=m.text) for m in latest)
