"""Customers at risk: each customer's recent mentions, risk score, tier and customer-rule alerts.

:class:`CustomerTracker` keeps :class:`streams.state.CustomerState` per customer of a brand. A
customer is re-scored (:func:`streams.customer_risk.risk_score`) at each of their mentions, every
quarter hour while watched (firing, pending or not healthy) and every hour otherwise, when every
``customer_at_risk`` rule is judged: fire at ``fire_at`` after ``for`` (with ``min_mentions`` and
``cooldown``), resolve below ``resolve_below`` after ``keep_firing_for``. Customers silent for
longer than the horizon are forgotten. Pure; the time is the mention's or the closed minute's.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta

from streams.customer_risk import CustomerMention, RiskScore, risk_score
from streams.records import (
    SCHEMA_VERSION,
    Alert,
    AlertState,
    CustomerHealth,
    CustomerTier,
    Example,
    ScoredMention,
    fingerprint,
    trusted,
)
from streams.rule_kinds.base import render_template
from streams.rule_kinds.customer import CustomerAtRiskRule
from streams.state import BrandState, CustomerState, EngineOutput, Erased, LastScore

__all__ = ["CUSTOMER_DECAY_MINUTES", "CustomerTracker"]

DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_WATCH_AT = 40.0
LAST_MENTIONS = 3
ROUNDING_MARGIN = timedelta(minutes=1)
"""How much earlier than computed a customer's decaying score is assumed to round otherwise."""
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
        # One lookback for every rule: one score per customer, which a sweep can foresee.
        self._one_lookback = all(r.lookback == self._lookback for r in self.rules)
        self._half_life = self._lookback / 2
        self._fire_floors: dict[str, float | None] = {}

    def mention(
        self, state: BrandState, customer: str, scored: ScoredMention, out: EngineOutput
    ) -> None:
        """Remember a new mention of ``customer`` and re-score them at its event time."""
        at = scored.mention.created_at
        cs = state.customers.get(customer)
        if cs is None:
            # Built from known-valid values without validation (pydantic would also deep-copy the
            # mutable defaults): creating a customer cost more than scoring the mention.
            cs = trusted(
                CustomerState,
                {
                    "mentions": [],
                    "last_mention_at": at,
                    "evaluated_at": None,
                    "risk_score": 0.0,
                    "tier": CustomerTier.HEALTHY,
                    "reasons": [],
                    "firing": {},
                    "last_resolved_at": {},
                    "pending": {},
                    "clear_since": {},
                },
            )
            state.add_customer(customer, cs)
        mention_id = scored.mention.id
        mentions = cs.mentions
        for m in mentions:
            if m.id == mention_id:
                return  # already applied: customer state is stored apart (see streams/pipeline.py)
        # Kept in (time, id) order, each pair once (ids are unique): inserted in its place, as
        # sorting after appending did.
        bisect.insort(mentions, CustomerMention.of(scored), key=_mention_order)
        del mentions[: -self.max_mentions]
        if at > cs.last_mention_at:
            vars(cs)["last_mention_at"] = at  # a plain field write (no validation on assignment)
        # Evaluation time never goes backwards for a customer, so every kept mention is in its past.
        when = at if cs.evaluated_at is None else max(at, cs.evaluated_at)
        self._evaluate(state, customer, cs, when, out)

    def sweep(
        self, state: BrandState, end: datetime, out: EngineOutput, *, full: bool, quiet: bool = True
    ) -> None:
        """Re-score customers as time passes (``full``: everyone, and forget the long quiet).

        ``quiet=False`` leaves the customers known quiet to a later :meth:`sweep_quiet` (they
        output nothing, so only the last of a run of sweeps with no mention between matters).
        """
        customers = state.customers
        if not full:
            # Only the watched customers, from the state's index rather than by testing every
            # customer, and of those only the ones whose scoring may change something; these in
            # the customers' own order, so outputs come in the same order as when all were
            # scored (from the state's index of their places, not by a pass over all customers).
            rescore = []
            for customer in state.watched_customers:
                cs = customers[customer]
                due = cs.evaluated_at is None or end > cs.evaluated_at
                if due and not self._unchanged_at(state, customer, cs, end):
                    rescore.append(customer)
            if len(rescore) > 1:
                state.customer_order.sort(rescore)
            for customer in rescore:
                self._evaluate(state, customer, customers[customer], end, out)
            return
        # Customers known quiet are re-scored to no effect: they get what re-scoring would do to
        # them (below), without it. The others are re-scored in the customers' order, so outputs
        # come in the same order as when everyone was.
        known_quiet = state.quiet_customers if self._zero_is_quiet else set()
        quiet_ones = list(known_quiet)  # their order does not matter: nothing is output
        others = (
            [(c, cs) for c, cs in customers.items() if c not in known_quiet]
            if quiet_ones
            else list(customers.items())
        )
        # The first test of :meth:`_unchanged_at` (a customer found unchanged before, with the
        # same last scoring, before their hint runs out), inlined: it holds for most of the
        # customers visited, hourly for every brand.
        hints = state.unchanged_until if self._one_lookback else {}
        last_scores = state.last_scores
        forget_before = end - self.horizon
        for customer, cs in others:
            fields = vars(cs)
            evaluated_at = fields["evaluated_at"]
            if evaluated_at is None or end > evaluated_at:
                hint = hints.get(customer)
                if (
                    hint is not None
                    and end < hint[1]
                    and hint[0] is last_scores.get(customer)
                    and not (fields["firing"] or fields["pending"] or fields["clear_since"])
                ):
                    fields["evaluated_at"] = end
                elif not self._unchanged_at(state, customer, cs, end):
                    self._evaluate(state, customer, cs, end, out)
            if fields["last_mention_at"] < forget_before:  # silent longer than the horizon
                for rule in self.rules:
                    if rule.alert in cs.firing:
                        self._resolve(rule, state, customer, cs, end, cs.risk_score, out)
                del customers[customer]
                state.track(customer, None)
                out.forgotten.append(customer)
        if quiet:
            self._sweep_quiet(state, quiet_ones, end, out)

    def sweep_quiet(self, state: BrandState, end: datetime, out: EngineOutput) -> None:
        """The part of a full sweep at ``end`` that concerns the customers known quiet."""
        if self._zero_is_quiet:
            self._sweep_quiet(state, list(state.quiet_customers), end, out)

    def _sweep_quiet(
        self, state: BrandState, quiet: list[str], end: datetime, out: EngineOutput
    ) -> None:
        """A full sweep at ``end`` for customers that were :attr:`CustomerState.quiet`: what
        :meth:`_evaluate` does to them (``evaluated_at``, mentions past the lookback dropped;
        they stay quiet, so no output) and forgetting the long silent. Order does not matter:
        nothing is output."""
        oldest_kept = end - self._max_lookback
        forget_before = end - self.horizon
        customers = state.customers
        for customer in quiet:
            # Plain field writes (no validation on assignment): this runs hourly for most
            # customers of every brand.
            fields = vars(customers[customer])
            evaluated_at = fields["evaluated_at"]
            if evaluated_at is None or end > evaluated_at:
                fields["evaluated_at"] = end
                mentions = fields["mentions"]
                if mentions and mentions[0].at < oldest_kept:
                    fields["mentions"] = [m for m in mentions if m.at >= oldest_kept]
            if fields["last_mention_at"] < forget_before:
                del customers[customer]
                state.track(customer, None)
                out.forgotten.append(customer)

    def _unchanged_at(
        self, state: BrandState, customer: str, cs: CustomerState, end: datetime
    ) -> bool:
        """Whether scoring ``customer`` at ``end`` (a sweep) would change nothing but
        ``evaluated_at``, known without scoring; if so, sets ``evaluated_at`` as scoring would.

        True when no customer rule is pending, firing or clearing, the customer still has the
        mentions of their last scoring, the same of them lie inside the lookback at ``end`` as
        then (all older than that scoring, none leaving the lookback), and the score they make at
        ``end``, which is then the last total decayed by the time passed, rounds to the score
        held, below every rule's ``fire_at``. The reasons depend only on which mentions are
        inside the lookback, and the tier only on the score, so they stay. The decayed total is
        computed otherwise than :func:`risk_score` would, so a total within 1e-9 of a rounding
        boundary (far beyond the float error, ~1e-13) is left to scoring.
        """
        last = state.last_scores.get(customer)
        if last is None or cs.firing or cs.pending or cs.clear_since or not self._one_lookback:
            return False
        hint = state.unchanged_until.get(customer)
        if hint is not None and hint[0] is last and end < hint[1]:
            # Found unchanged before with the same last scoring, and still before the first time
            # the decayed score could round otherwise or a mention leave the lookback.
            vars(cs)["evaluated_at"] = end
            return True
        mentions = cs.mentions
        if (
            not mentions
            or len(mentions) != len(last.mentions)
            or not all(map(operator.is_, mentions, last.mentions))
            or mentions[-1].at > last.at
            or mentions[0].at < end - self._lookback
        ):
            return False
        total = min(100.0, last.total * 0.5 ** ((end - last.at) / self._half_life))
        score = float(round(total))
        if abs(total - math.floor(total) - 0.5) < 1e-9 or score != cs.risk_score:
            return False
        floor = self._fire_floor(state.brand)
        if floor is not None and score >= floor:  # some rule of the brand may fire
            return False
        vars(cs)["evaluated_at"] = end
        state.unchanged_until[customer] = (last, self._unchanged_before(last, score, mentions))
        return True

    def _fire_floor(self, brand: str) -> float | None:
        """The lowest ``fire_at`` of the rules that apply to ``brand`` (None: no rule applies),
        found once per brand."""
        if brand not in self._fire_floors:
            self._fire_floors[brand] = min(
                (rule.fire_at for rule in self.rules if rule.applies_to(brand)), default=None
            )
        return self._fire_floors[brand]

    def _unchanged_before(
        self, last: LastScore, score: float, mentions: Sequence[CustomerMention]
    ) -> datetime:
        """A time before which :meth:`_unchanged_at` stays true for a customer it was just true
        for, with the same last scoring: the first mention stays inside the lookback and the
        decaying total stays clear (by a margin far beyond float error) of the next rounding
        boundary below ``score``."""
        until = mentions[0].at + self._lookback
        floor = score - 0.5 + 1e-6
        if floor > 0.0:
            if last.total <= floor:
                return last.at
            half_lives = math.log2(last.total / floor)
            until = min(until, last.at + half_lives * self._half_life - ROUNDING_MARGIN)
        return until

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
        vars(cs)["evaluated_at"] = at  # a plain field write: this runs hourly for every customer
        # Mentions are kept oldest first, so only a too-old first one means some must go.
        if cs.mentions and at - cs.mentions[0].at > self._max_lookback:
            cs.mentions = [m for m in cs.mentions if at - m.at <= self._max_lookback]
        if self._zero_is_quiet and cs.quiet:
            # Most customers only ever said something neutral or positive. Their score is 0 with
            # no reasons at any time, which fires nothing, resolves nothing and changes nothing
            # they were last told: skip the scoring (every customer is re-scored hourly).
            state.track(customer, cs, quiet=True)
            return
        risk = risk_score(cs.mentions, at=at, lookback=self._lookback)
        state.last_scores[customer] = LastScore(at, risk.total, tuple(cs.mentions))
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
            # Plain field writes (no validation on assignment): a sweep re-scores many customers.
            fields = vars(cs)
            fields["risk_score"], fields["tier"], fields["reasons"] = risk.score, tier, reasons
            out.customers.append(_health(state.brand, customer, cs, at))
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


def _mention_order(mention: CustomerMention) -> tuple[datetime, str]:
    return (mention.at, mention.id)


def _last_mentions(cs: CustomerState) -> tuple[Example, ...]:
    latest = cs.mentions[-LAST_MENTIONS:][::-1]
    # Built without validation: the ids and texts come from validated mentions.
    return tuple(trusted(Example, {"id": m.id, "text": m.text}) for m in latest)


def _health(brand: str, customer: str, cs: CustomerState, at: datetime) -> CustomerHealth:
    """The customer's health record at ``at``, from the score, tier and reasons just set."""
    values = {
        "schema_version": SCHEMA_VERSION,
        "brand": brand,
        "customer_id": customer,
        "risk_score": cs.risk_score,
        "tier": cs.tier,
        "reasons": tuple(cs.reasons),
        "last_mentions": _last_mentions(cs),
        "updated_at": at,
    }
    if at.tzinfo is UTC and 0.0 <= cs.risk_score <= 100.0:
        # Every value is known valid (a score from risk_score, a UTC time): built without
        # validation, as one is made for most customers' mentions.
        return trusted(CustomerHealth, values)
    return CustomerHealth.model_validate(values)
