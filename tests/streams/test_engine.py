"""The rule engine's behaviour on event time: state machine, guards, determinism, persistence."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.customer_risk import CustomerMention
from streams.customers import CustomerTracker
from streams.engine import Engine
from streams.incident_tracking import _record
from streams.records import (
    Alert,
    AlertState,
    CustomerHealth,
    CustomerTier,
    Incident,
    IncidentPoint,
    MentionKind,
    ScoredMention,
    SentimentLabel,
    fingerprint,
)
from streams.rule_kinds import BrandRule
from streams.rules import RuleSet, parse_rules
from streams.state import (
    BrandState,
    CustomerState,
    EngineOutput,
    IncidentState,
    LastScore,
    RuleStatus,
)
from tests import factories

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
BRAND = "acme"

# The spike rule here is a plain threshold on the 5-minute negative share: these tests are about
# the engine (state machine, guards, batching, persistence); the share kinds' own sequential test
# is tested in test_share_spike_rules.py.
RULES = """
groups:
  - name: test
    rules:
      - alert: NegativeSentimentSpike
        kind: threshold
        metric: negative_share
        op: ">="
        value: 0.4
        window: 5m
        min_volume: 10
        for: 3m
        keep_firing_for: 3m
        cooldown: 20m
        labels: {severity: critical}
        annotations:
          summary: "Spike for {{ brand }}: {{ value }} vs {{ baseline }}"
      - alert: CustomerAtRisk
        kind: customer_at_risk
        lookback: 7d
        fire_at: 60
        resolve_below: 40
        min_mentions: 2
        annotations:
          summary: "{{ customer }} of {{ brand }} at {{ value }}"
"""


def rules() -> RuleSet:
    return parse_rules(RULES, "test.yaml")


def engine(lateness: timedelta = timedelta(0), ruleset: RuleSet | None = None) -> Engine:
    return Engine(
        ruleset or rules(),
        allowed_lateness=lateness,
        baseline_time_constant=timedelta(hours=1),
    )


_serial = 0


def scored(
    at: datetime,
    *,
    negative: bool = False,
    brand: str = BRAND,
    compound: float | None = None,
    text: str | None = None,
    rating: int | None = None,
    mention_id: str | None = None,
    **fields: object,
) -> ScoredMention:
    """A scored mention of ``BRAND`` (negative: -0.7, else 0.4); a review when it has a rating."""
    global _serial
    _serial += 1
    source, _, n = (mention_id or f"test:{_serial}").partition(":")
    return factories.scored(
        n,
        (-0.7 if negative else 0.4) if compound is None else compound,
        at=at,
        source=source,
        brand=brand,
        author="someone",
        text=text or ("awful delays again" if negative else "lovely crew"),
        kind=MentionKind.REVIEW if rating is not None else MentionKind.POST,
        rating=rating,
        **fields,
    )


def traffic(
    start: datetime, minutes: int, *, per_minute: int, negative: int
) -> list[ScoredMention]:
    """``per_minute`` mentions in each minute, the first ``negative`` of them negative."""
    out = []
    for m in range(minutes):
        for j in range(per_minute):
            at = start + m * MIN + timedelta(seconds=j * 60 / per_minute)
            out.append(
                scored(at, negative=j < negative, text=f"minute {m} mention {j}", compound=None)
            )
    return out


def run(
    eng: Engine, batch: Sequence[ScoredMention], until: datetime
) -> tuple[BrandState, EngineOutput]:
    state = eng.new_state(BRAND)
    out = eng.process(state, batch)
    tail = eng.advance(state, until)
    out.alerts += tail.alerts
    out.customers += tail.customers
    return state, out


def spikes(out: EngineOutput) -> list[Alert]:
    return [a for a in out.alerts if a.alertname == "NegativeSentimentSpike"]


# 60 calm minutes (10% negative), a 20-minute spike (80% negative), then calm again.
SPIKE_AT = T0 + 60 * MIN


def incident(spike_minutes: int = 20, after: int = 60) -> list[ScoredMention]:
    return (
        traffic(T0, 60, per_minute=10, negative=1)
        + traffic(SPIKE_AT, spike_minutes, per_minute=10, negative=8)
        + traffic(SPIKE_AT + spike_minutes * MIN, after, per_minute=10, negative=1)
    )


def test_spike_fires_after_for_and_resolves_after_keep_firing_for() -> None:
    _, out = run(engine(), incident(), until=T0 + 200 * MIN)

    firing, resolved = spikes(out)
    # The 5-minute window first holds >= 40% negative when the 3rd spike minute closes
    # ((2 calm + 3 spike) → 26/50); the condition then holds for the 3 minutes of ``for``.
    assert firing.state is AlertState.FIRING
    assert firing.starts_at == SPIKE_AT + 3 * MIN + 3 * MIN
    assert firing.labels == {
        "alertname": "NegativeSentimentSpike",
        "brand": BRAND,
        "severity": "critical",
    }
    assert firing.fingerprint == fingerprint(firing.labels)
    assert firing.value == pytest.approx(0.8)
    assert firing.baseline == pytest.approx(0.1, abs=0.01)
    assert firing.annotations["summary"] == "Spike for acme: 80% vs 10%"
    assert 1 <= len(firing.examples) <= 3
    assert all("mention 0" in e.text or "mention" in e.text for e in firing.examples)

    # The spike's last minute is SPIKE_AT+19; the window drops below 40% when 3 calm minutes are in
    # it (end SPIKE_AT+23), and stays false for keep_firing_for (3m).
    assert resolved.state is AlertState.RESOLVED
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.starts_at == firing.starts_at
    assert resolved.ends_at == SPIKE_AT + 23 * MIN + 3 * MIN
    # The incident did not leak into its own baseline.
    assert resolved.baseline == firing.baseline


def test_short_blip_shorter_than_for_does_not_fire() -> None:
    # A 3-minute blip keeps the 5-minute window above 40% for 2 closed minutes only (< for: 3m).
    batch = (
        traffic(T0, 60, per_minute=10, negative=1)
        + traffic(SPIKE_AT, 3, per_minute=10, negative=8)
        + traffic(SPIKE_AT + 3 * MIN, 30, per_minute=10, negative=1)
    )
    state, out = run(engine(), batch, until=T0 + 200 * MIN)
    assert spikes(out) == []
    assert state.rules["NegativeSentimentSpike"].state is RuleStatus.INACTIVE


def test_min_volume_blocks_sparse_brand() -> None:
    # Same shares as the incident, but 1 mention a minute: 5 in the window < min_volume 10.
    batch = (
        traffic(T0, 300, per_minute=1, negative=0)
        + traffic(T0 + 300 * MIN, 30, per_minute=1, negative=1)
        + traffic(T0 + 330 * MIN, 30, per_minute=1, negative=0)
    )
    _, out = run(engine(), batch, until=T0 + 400 * MIN)
    assert spikes(out) == []


def test_cooldown_blocks_refire_until_it_has_passed() -> None:
    first = incident(spike_minutes=20, after=10)  # resolved at SPIKE_AT+26
    second_start = SPIKE_AT + 30 * MIN  # inside the 20-minute cooldown
    third_start = SPIKE_AT + 90 * MIN  # well after it
    batch = (
        first
        + traffic(second_start, 10, per_minute=10, negative=8)
        + traffic(second_start + 10 * MIN, 50, per_minute=10, negative=1)
        + traffic(third_start, 20, per_minute=10, negative=8)
        + traffic(third_start + 20 * MIN, 30, per_minute=10, negative=1)
    )
    _, out = run(engine(), batch, until=T0 + 300 * MIN)
    fired = [a.starts_at for a in spikes(out) if a.state is AlertState.FIRING]
    assert fired == [SPIKE_AT + 6 * MIN, third_start + 6 * MIN]


def test_no_alert_without_closed_minutes_and_advance_resolves_quiet_brand() -> None:
    eng = engine()
    state = eng.new_state(BRAND)
    # Incident, then the brand goes silent: only advance() (a timer) can resolve it.
    out = eng.process(state, incident(spike_minutes=20, after=0))
    assert [a.state for a in spikes(out)] == [AlertState.FIRING]
    later = eng.advance(state, SPIKE_AT + 60 * MIN)
    assert [a.state for a in spikes(later)] == [AlertState.RESOLVED]
    # Silence: the window runs empty → below min_volume → false from the first minute after the
    # spike whose window holds < 10 mentions.
    resolved = spikes(later)[0]
    assert resolved.ends_at is not None and resolved.ends_at > SPIKE_AT + 20 * MIN


def _with_disorder(batch: list[ScoredMention], seed: int) -> list[ScoredMention]:
    """Swap neighbours a few seconds apart (within the allowed lateness) and add late stragglers."""
    rng = random.Random(seed)
    out = list(batch)
    for i in range(0, len(out) - 1, 7):
        if rng.random() < 0.5:
            out[i], out[i + 1] = out[i + 1], out[i]
    stragglers = [scored(T0 + 5 * MIN, negative=True, mention_id=f"late:{k}") for k in range(3)]
    return out[:900] + stragglers + out[900:]


def _customers_batch() -> list[ScoredMention]:
    at = SPIKE_AT + 2 * MIN
    return [
        scored(at, negative=True, customer="cust-1", deficit=("ignored",)),
        scored(at + 5 * MIN, negative=True, customer="cust-1", rating=1),
        scored(at + 9 * MIN, negative=True, customer="cust-1", churn=("switching to",)),
    ]


def _full_input() -> list[ScoredMention]:
    merged = incident() + _customers_batch()
    merged.sort(key=lambda s: (s.mention.created_at, s.mention.id))
    return _with_disorder(merged, seed=3)


@pytest.mark.parametrize("split", ["one-by-one", "random-chunks"])
def test_same_alerts_whatever_the_batching(split: str) -> None:
    eng = engine(lateness=timedelta(minutes=2))
    batch = _full_input()
    _, whole = run(eng, batch, until=T0 + 300 * MIN)

    state = eng.new_state(BRAND)
    parts = EngineOutput()
    rng = random.Random(11)
    i = 0
    while i < len(batch):
        size = 1 if split == "one-by-one" else rng.randint(1, 200)
        out = eng.process(state, batch[i : i + size])
        parts.alerts += out.alerts
        parts.customers += out.customers
        parts.late += out.late
        i += size
    tail = eng.advance(state, T0 + 300 * MIN)
    parts.alerts += tail.alerts
    parts.customers += tail.customers

    assert [a.state for a in spikes(whole)] == [AlertState.FIRING, AlertState.RESOLVED]
    assert any(a.alertname == "CustomerAtRisk" for a in whole.alerts)
    assert parts.alerts == whole.alerts
    assert parts.customers == whole.customers
    assert parts.late == whole.late == 3


def test_late_mentions_are_counted_not_crashing() -> None:
    eng = engine(lateness=timedelta(minutes=1))
    state = eng.new_state(BRAND)
    eng.process(state, traffic(T0, 10, per_minute=2, negative=0))
    before = state.model_dump()
    out = eng.process(state, [scored(T0, negative=True), scored(T0 + MIN, negative=True)])
    assert out.late == 2
    assert state.late_dropped == 2
    # Nothing else about the brand changed.
    assert {**state.model_dump(), "late_dropped": 0} == {**before, "late_dropped": 0}


def test_mention_of_another_brand_is_refused() -> None:
    eng = engine()
    with pytest.raises(ValueError, match="other"):
        eng.process(eng.new_state(BRAND), [scored(T0, brand="other")])


def _json_round_trip(state: BrandState) -> BrandState:
    return BrandState.model_validate(json.loads(json.dumps(state.model_dump(mode="json"))))


def test_state_json_round_trip_mid_incident_continues_identically() -> None:
    eng = engine(lateness=timedelta(minutes=2))
    batch = _full_input()
    cut = next(
        i for i, s in enumerate(batch) if s.mention.created_at >= SPIKE_AT + 10 * MIN
    )  # the spike is firing and cust-1 has mentions by then
    state = eng.new_state(BRAND)
    head = eng.process(state, batch[:cut])
    assert state.rules["NegativeSentimentSpike"].state is RuleStatus.FIRING
    assert state.customers

    restored = _json_round_trip(state)
    assert restored == state
    assert restored.model_dump(mode="json") == state.model_dump(mode="json")

    outputs = []
    for s in (state, restored):
        out = eng.process(s, batch[cut:])
        tail = eng.advance(s, T0 + 300 * MIN)
        outputs.append((out.alerts + tail.alerts, out.customers + tail.customers))
    assert outputs[0] == outputs[1]
    assert [a.state for a in spikes(EngineOutput(alerts=outputs[0][0]))] == [AlertState.RESOLVED]
    assert [a.state for a in spikes(head)] == [AlertState.FIRING]


def test_buckets_are_bounded_by_the_longest_window() -> None:
    eng = engine()
    state, _ = run(eng, traffic(T0, 240, per_minute=3, negative=1), until=T0 + 240 * MIN)
    assert len(state.buckets) <= 5
    assert state.baseline.minutes == 240 - 5


def test_long_silence_is_skipped_without_losing_time() -> None:
    eng = engine()
    state, _ = run(eng, traffic(T0, 60, per_minute=10, negative=1), until=T0 + 60 * MIN)
    share = state.baseline.negative_share
    eng.advance(state, T0 + timedelta(days=3))
    assert state.closed_until == T0 + timedelta(days=3)
    assert state.baseline.minutes == 3 * 24 * 60 - 5  # the last 5 minutes are still in the window
    assert state.baseline.negative_share == pytest.approx(share)


# --- customers ------------------------------------------------------------------------------------


def _customer_alerts(out: EngineOutput) -> list[Alert]:
    return [a for a in out.alerts if a.alertname == "CustomerAtRisk"]


def test_customer_fires_with_reasons_and_resolves_with_hysteresis() -> None:
    eng = engine()
    state = eng.new_state(BRAND)
    at = T0
    out = eng.process(
        state,
        [
            scored(at, negative=True, customer="c9", deficit=("on hold for hours",)),
            scored(at + 10 * MIN, negative=True, customer="c9", rating=1, text="one star"),
            scored(
                at + 20 * MIN,
                negative=True,
                customer="c9",
                churn=("cancel my subscription",),
                text="I will cancel my subscription",
            ),
        ],
    )
    (firing,) = _customer_alerts(out)
    assert firing.state is AlertState.FIRING
    assert firing.starts_at == at + 20 * MIN  # on the mention, not a minute later
    assert firing.labels == {
        "alertname": "CustomerAtRisk",
        "brand": BRAND,
        "customer": "c9",
        "severity": "warning",
    }
    assert firing.value >= 60
    assert firing.baseline is None
    assert firing.examples[0].text == "I will cancel my subscription"
    assert firing.annotations["summary"] == f"c9 of acme at {firing.value:.0f}"
    health = out.customers[-1]
    assert health.tier is CustomerTier.AT_RISK
    assert "churn intent: 'cancel my subscription'" in health.reasons
    assert "3 negative mentions in 7d" in health.reasons
    assert "rating 1/5" in health.reasons

    # Time passes without mentions: the score decays; it stays firing between 40 and 60 and
    # resolves only below 40.
    updates = []
    resolved: list[Alert] = []
    t = at + 20 * MIN
    while not resolved and t < at + timedelta(days=8):
        t += timedelta(hours=1)
        step = eng.advance(state, t)
        updates += step.customers
        resolved += _customer_alerts(step)
    assert [a.state for a in resolved] == [AlertState.RESOLVED]
    assert resolved[0].value < 40
    assert resolved[0].starts_at == firing.starts_at
    in_between = [h for h in updates if 40 <= h.risk_score < 60]
    assert in_between and all(h.tier is CustomerTier.AT_RISK for h in in_between)
    assert updates[-1].tier is CustomerTier.HEALTHY


def test_single_angry_mention_does_not_fire_min_mentions() -> None:
    eng = engine()
    state = eng.new_state(BRAND)
    out = eng.process(
        state,
        [
            scored(
                T0,
                negative=True,
                compound=-0.95,
                customer="c1",
                churn=("closing my account",),
                deficit=("nobody cares",),
                rating=1,
            )
        ],
    )
    assert _customer_alerts(out) == []
    assert out.customers[-1].risk_score >= 60
    assert out.customers[-1].tier is CustomerTier.WATCH


def test_happy_customer_changes_nothing_and_quiet_customers_are_forgotten() -> None:
    eng = engine()
    state = eng.new_state(BRAND)
    out = eng.process(state, [scored(T0, customer="fan")])
    assert out.customers == []  # score stays 0: nothing changed
    assert "fan" in state.customers
    eng.advance(state, T0 + timedelta(days=8))
    assert "fan" not in state.customers


def test_default_rules_file_works_with_the_engine() -> None:
    from streams.rules import load_rules

    ruleset = load_rules(Path(__file__).parents[2] / "alert_rules" / "default.yaml")
    eng = Engine(ruleset, allowed_lateness=timedelta(minutes=1))
    assert eng.new_state(BRAND).rules.keys() == {
        "NegativeSentimentSpike",
        "MentionVolumeSurge",
        "EmpathyDeficit",
    }


# --- the simulated scenarios, through the real scorer and the default rules ----------------------


def _run_scenario(name: str, chunk: int = 1) -> tuple[list[Alert], list[CustomerHealth]]:
    from connectors.simulate import generate
    from streams.rules import load_rules
    from streams.scoring import Scorer

    ruleset = load_rules(Path(__file__).parents[2] / "alert_rules" / "default.yaml")
    eng = Engine(ruleset, allowed_lateness=timedelta(minutes=2))
    scorer = Scorer()
    per_brand: dict[str, list[ScoredMention]] = {}
    for mention in generate(name, seed=7):
        per_brand.setdefault(mention.brand, []).append(
            scorer.score(mention, scored_at=mention.created_at)
        )
    alerts: list[Alert] = []
    health: list[CustomerHealth] = []
    for brand, batch in per_brand.items():
        state = eng.new_state(brand)
        for i in range(0, len(batch), chunk):
            out = eng.process(state, batch[i : i + chunk])
            alerts += out.alerts
            health += out.customers
        assert state.max_event_time is not None
        tail = eng.advance(state, state.max_event_time + timedelta(hours=2))
        alerts += tail.alerts
        health += tail.customers
    return alerts, health


def test_crisis_scenario_fires_and_resolves_the_spike_for_the_crisis_brand_only() -> None:
    alerts, health = _run_scenario("crisis")
    firing, resolved = spikes(EngineOutput(alerts=alerts))
    assert firing.labels["brand"] == resolved.labels["brand"] == "northwind-air"
    assert (firing.state, resolved.state) == (AlertState.FIRING, AlertState.RESOLVED)
    day = firing.starts_at.replace(hour=0, minute=0)
    # The crisis ramps up from ~09:00, peaks 11:00-13:00 and is over by 16:00.
    assert day + timedelta(hours=9) < firing.starts_at < day + timedelta(hours=12)
    assert resolved.ends_at is not None
    assert day + timedelta(hours=13) < resolved.ends_at < day + timedelta(hours=17)
    assert firing.baseline is not None and firing.baseline < 0.3
    # The value is the window's negative share, well above the usual share.
    assert firing.value >= firing.baseline + 0.1 and firing.examples

    at_risk = [a for a in alerts if a.alertname == "CustomerAtRisk"]
    assert any(
        a.state is AlertState.FIRING and a.labels["brand"] == "northwind-air" for a in at_risk
    )
    churners = {
        h.customer_id
        for h in health
        if h.brand == "northwind-air" and any(r.startswith("churn intent") for r in h.reasons)
    }
    assert churners & {a.labels["customer"] for a in at_risk}


def test_crisis_scenario_gives_the_same_alerts_in_big_batches() -> None:
    one_by_one, _ = _run_scenario("crisis")
    batched, _ = _run_scenario("crisis", chunk=500)
    assert batched == one_by_one


def test_calm_scenario_has_no_spike() -> None:
    alerts, _ = _run_scenario("calm")
    assert spikes(EngineOutput(alerts=alerts)) == []


# --- the hourly customer sweep -------------------------------------------------------------------


class EveryoneRescored(CustomerTracker):
    """The sweeps as they were before they skipped customers known to be unchanged: everyone
    (hourly) and the watched (quarter-hourly) through ``_evaluate``."""

    def sweep(
        self, state: BrandState, end: datetime, out: EngineOutput, *, full: bool, quiet: bool = True
    ) -> None:
        if not full:
            for customer in [c for c, cs in state.customers.items() if cs.watched]:
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
                out.forgotten.append(customer)


def test_customers_swept_without_rescoring_end_as_if_rescored() -> None:
    from connectors.simulate import generate
    from streams.rules import load_rules
    from streams.scoring import Scorer

    ruleset = load_rules(Path(__file__).parents[2] / "alert_rules" / "default.yaml")
    indexed = Engine(ruleset, allowed_lateness=timedelta(minutes=2))
    reference = Engine(ruleset, allowed_lateness=timedelta(minutes=2))
    tracker = reference.customers
    reference.customers = EveryoneRescored(
        tracker.rules, horizon=tracker.horizon, max_mentions=tracker.max_mentions
    )
    foreseen = 0

    class Counting(CustomerTracker):
        def _unchanged_at(
            self, state: BrandState, customer: str, cs: CustomerState, end: datetime
        ) -> bool:
            nonlocal foreseen
            unchanged = super()._unchanged_at(state, customer, cs, end)
            foreseen += unchanged
            return unchanged

    indexed.customers = Counting(
        tracker.rules, horizon=tracker.horizon, max_mentions=tracker.max_mentions
    )
    scorer = Scorer()
    mentions = [
        scorer.score(m, scored_at=m.created_at) for m in generate("crisis", seed=7, rate_scale=0.5)
    ]
    brand = "northwind-air"
    batch = [s for s in mentions if s.mention.brand == brand]
    fast, slow = indexed.new_state(brand), reference.new_state(brand)
    quiet_seen = 0
    for i in range(0, len(batch), 200):
        out_fast = indexed.process(fast, batch[i : i + 200])
        out_slow = reference.process(slow, batch[i : i + 200])
        assert sorted(out_fast.forgotten) == sorted(out_slow.forgotten)
        out_fast.forgotten = out_slow.forgotten = []
        assert out_fast == out_slow
        assert fast.model_dump_json() == slow.model_dump_json()
        # The index only ever names customers that are quiet.
        assert fast.quiet_customers <= {c for c, cs in fast.customers.items() if cs.quiet}
        places = fast.customer_order.places
        assert sorted(places, key=places.__getitem__) == list(fast.customers)
        quiet_seen = max(quiet_seen, len(fast.quiet_customers))
    end = batch[-1].mention.created_at + timedelta(days=8)
    tail_fast, tail_slow = indexed.advance(fast, end), reference.advance(slow, end)
    assert sorted(tail_fast.forgotten) == sorted(tail_slow.forgotten) != []
    assert (tail_fast.alerts, tail_fast.customers) == (tail_slow.alerts, tail_slow.customers)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert quiet_seen > 100 and foreseen > 100 and not fast.customers


def test_a_quiet_customer_is_swept_hourly_and_its_old_mentions_dropped() -> None:
    eng = engine()
    state = eng.new_state(BRAND)
    eng.process(state, [scored(T0, customer="fan"), scored(T0 + 5 * MIN, customer="other")])
    assert state.quiet_customers == {"fan", "other"}
    eng.advance(state, T0 + timedelta(hours=2, minutes=30))  # a quiet brand: one full sweep
    assert state.customers["fan"].evaluated_at == T0 + timedelta(hours=2, minutes=30)
    eng.process(state, [scored(T0 + timedelta(days=7, minutes=1), customer="fan")])
    eng.advance(state, T0 + timedelta(days=7, hours=1))
    assert [m.at for m in state.customers["fan"].mentions] == [T0 + timedelta(days=7, minutes=1)]
    assert "other" not in state.customers  # silent past the horizon: forgotten


def test_the_customer_order_index_follows_the_customers_through_forgetting_and_return() -> None:
    """The quarter-hourly sweep orders the customers it re-scores by the state's index of their
    places instead of a pass over all customers: the index holds every customer, in the order of
    ``customers``, through customers added after it was built, forgotten and back."""
    eng = engine()
    state = eng.new_state(BRAND)
    eng.process(state, [scored(T0, customer="a"), scored(T0 + MIN, customer="b")])
    order = state.customer_order
    eng.process(state, [scored(T0 + timedelta(days=6), customer="c")])
    eng.advance(state, T0 + timedelta(days=7, hours=2))  # a and b silent past the horizon
    eng.process(state, [scored(T0 + timedelta(days=7, hours=3), customer="a")])
    assert state.customer_order is order
    assert list(state.customers) == ["c", "a"]
    assert sorted(order.places, key=order.places.__getitem__) == ["c", "a"]
    rescored = ["a", "c"]
    order.sort(rescored)
    assert rescored == ["c", "a"]


def test_a_customer_at_the_lowest_fire_at_is_rescored_not_foreseen_unchanged() -> None:
    """A sweep foresees a customer unchanged only while their score stays below the lowest
    ``fire_at`` of the rules that apply to the brand (found once per brand): at it, they are
    re-scored, since a rule may fire."""
    eng = engine()
    tracker = eng.customers
    mention = CustomerMention(
        at=T0, id="m1", text="late again", label=SentimentLabel.NEGATIVE, compound=-0.5
    )
    for total, unchanged in ((59.2, True), (60.2, False)):
        state = eng.new_state(BRAND)
        cs = CustomerState(mentions=[mention], last_mention_at=T0, risk_score=round(total))
        state.customers["c"] = cs
        state.last_scores["c"] = LastScore(T0, total, (mention,))
        assert tracker._unchanged_at(state, "c", cs, T0 + timedelta(seconds=1)) is unchanged
    assert tracker._fire_floor(BRAND) == 60.0
    scoped = engine(
        ruleset=parse_rules(
            RULES.replace("fire_at: 60", "fire_at: 60\n        brands: [other]"), "test.yaml"
        )
    ).customers
    assert (scoped._fire_floor(BRAND), scoped._fire_floor("other")) == (None, 60.0)


def test_an_incident_record_is_the_validated_one_and_bad_state_is_still_refused() -> None:
    """Incident records are built without validation only from values validation would keep as
    they are; otherwise pydantic converts (a time in another zone, an integer peak) or refuses
    (no firing), as before."""
    rule = rules().rules[0]
    assert isinstance(rule, BrandRule)
    point = IncidentPoint(minute=T0, value=0.5, baseline=0.2)
    inc = IncidentState(
        id="i", onset=T0, firing_at=T0 + MIN, peak_value=0.5, peak_at=T0 + MIN, series=[point]
    )
    end = T0 + 2 * MIN
    record = _record(rule, BRAND, inc, end)
    assert record.to_json() == Incident.model_validate(record.model_dump()).to_json()
    assert record.series == (point,) and record.fingerprint == fingerprint(record.labels)
    east = timezone(timedelta(hours=2))
    converted = _record(rule, BRAND, inc.model_copy(update={"onset": T0.astimezone(east)}), end)
    assert converted.onset == T0 and converted.onset.tzinfo is UTC
    whole = _record(rule, BRAND, inc.model_copy(update={"peak_value": 1}), end)
    assert type(whole.peak_value) is float
    with pytest.raises(ValidationError):
        _record(rule, BRAND, inc.model_copy(update={"firings": 0}), end)


def test_an_alerts_fingerprint_hashes_its_sorted_labels_as_compact_json() -> None:
    """The identity stored alerts and incidents carry: it must not change between versions."""
    canonical = b'[["alertname","Spike"],["brand","acme"],["severity","warning"]]'
    labels = {"severity": "warning", "brand": "acme", "alertname": "Spike"}
    assert fingerprint(labels) == hashlib.sha256(canonical).hexdigest()[:16]


# --- gaps in event time -----------------------------------------------------------------------


class MinuteByMinute(Engine):
    """The engine without skipping silences: every minute of a gap closed and evaluated."""

    def _rules_quiet(self, state: BrandState) -> bool:
        return False


class CountingCloses(Engine):
    """The engine, counting the minutes it closes one by one (each evaluates every brand rule)."""

    closed = 0

    def _close_minute(self, state: BrandState, minute: datetime, out: EngineOutput) -> None:
        self.closed += 1
        super()._close_minute(state, minute, out)


def _before_gap() -> list[ScoredMention]:
    """An hour with a spike, a customer at risk (firing) and one on watch."""
    batch = traffic(T0, 30, per_minute=10, negative=1)
    batch += traffic(T0 + 30 * MIN, 10, per_minute=10, negative=6)
    batch += traffic(T0 + 40 * MIN, 20, per_minute=10, negative=1)
    batch += [
        scored(T0 + 41 * MIN, negative=True, customer="c9", deficit=("on hold for hours",)),
        scored(T0 + 43 * MIN, negative=True, customer="c9", rating=1, text="one star"),
        scored(T0 + 45 * MIN, negative=True, customer="c9", churn=("cancel my subscription",)),
        scored(T0 + 50 * MIN, negative=True, customer="c5", compound=-0.95, rating=1),
    ]
    return sorted(batch, key=lambda s: s.mention.created_at)


def _after_gap(start: datetime) -> list[ScoredMention]:
    """Normal traffic, then a spike."""
    return traffic(start, 20, per_minute=10, negative=1) + traffic(
        start + 20 * MIN, 10, per_minute=10, negative=6
    )


@pytest.mark.parametrize("via", ["mention", "advance"])
def test_a_gap_of_days_gives_what_closing_every_minute_gives(via: str) -> None:
    before = _before_gap()
    resume = T0 + timedelta(days=9, minutes=7)
    first_after = [scored(resume, customer="c7")]
    after_gap = _after_gap(resume + MIN)
    outputs = []
    every_minute = MinuteByMinute(
        rules(), allowed_lateness=timedelta(0), baseline_time_constant=timedelta(hours=1)
    )
    for eng in (engine(), every_minute):
        state = eng.new_state(BRAND)
        out = eng.process(state, before)
        tail = eng.advance(state, resume) if via == "advance" else eng.process(state, first_after)
        after = eng.process(state, after_gap)
        after_tail = eng.advance(state, resume + timedelta(hours=2))
        outputs.append((out, tail, after, after_tail))
    fast, slow = outputs
    gap = fast[1]
    (resolved,) = gap.alerts
    for got, expected in zip(fast, slow, strict=True):
        assert got.alerts == expected.alerts
        assert got.incidents == expected.incidents
        assert sorted(got.forgotten) == sorted(expected.forgotten)
        # Customer health is the same while customers are watched (re-scored every quarter hour
        # either way). Once none is, a silence is skipped as before with one full re-scoring at
        # its end instead of hourly ones: the same customers, fewer intermediate records.
        assert [
            h for h in got.customers if resolved.ends_at and h.updated_at <= resolved.ends_at
        ] == [
            h for h in expected.customers if resolved.ends_at and h.updated_at <= resolved.ends_at
        ]
    # The gap did something a user sees: the customer at risk resolved, risks decayed, the
    # customers were forgotten; and the spike after it fired and resolved.
    assert [(a.alertname, a.state) for a in gap.alerts] == [("CustomerAtRisk", AlertState.RESOLVED)]
    assert len(gap.customers) > 10
    assert {"c9", "c5"} <= set(gap.forgotten)
    assert [a.state for a in spikes(fast[2]) + spikes(fast[3])] == [
        AlertState.FIRING,
        AlertState.RESOLVED,
    ]


def test_a_gap_costs_the_same_few_rule_evaluations_however_long() -> None:
    closes = {}
    for days in (9, 30, 300):
        eng = CountingCloses(
            rules(), allowed_lateness=timedelta(0), baseline_time_constant=timedelta(hours=1)
        )
        state = eng.new_state(BRAND)
        eng.process(state, _before_gap())
        eng.closed = 0
        out = eng.advance(state, T0 + timedelta(days=days))
        assert [a.state for a in _customer_alerts(out)] == [AlertState.RESOLVED]
        assert not state.customers
        closes[days] = eng.closed
    # What the windows still held and the rules' timing needed, not one per minute of the gap
    # (9 days: 12,960 minutes).
    assert closes[9] == closes[30] == closes[300] <= 30


def test_a_collapse_rule_still_fires_in_a_silence_with_watched_customers() -> None:
    """A volume detector watching for collapses judges runs of zero counts: the rule says so
    (``silence_may_fire``), and such a brand's silence gives what closing every minute gives."""
    ruleset = parse_rules(
        RULES
        + """
      - alert: MentionsCollapsed
        kind: volume_surge
        params: {direction: down, peak_rank: 0}
""",
        "test.yaml",
    )
    assert [r.silence_may_fire for r in ruleset.rules if r.alert == "MentionsCollapsed"] == [True]
    assert not any(r.silence_may_fire for r in rules().rules if r.alert != "CustomerAtRisk")
    history = traffic(T0 - timedelta(hours=4), 240, per_minute=10, negative=1) + _before_gap()
    outputs = []
    for engine_class in (Engine, MinuteByMinute):
        eng = engine_class(
            ruleset, allowed_lateness=timedelta(0), baseline_time_constant=timedelta(hours=1)
        )
        state = eng.new_state(BRAND)
        eng.process(state, history)
        assert state.watched_customers
        outputs.append(eng.advance(state, T0 + timedelta(days=2)).alerts)
    fast, slow = outputs
    assert fast == slow
    collapsed = [a for a in fast if a.alertname == "MentionsCollapsed"]
    assert collapsed and collapsed[0].state is AlertState.FIRING


# --- order kept by the fast paths -----------------------------------------------------------------


def test_mentions_out_of_order_within_open_minutes_count_into_buckets_in_minute_order() -> None:
    """A mention for an earlier minute that is still open gets a bucket of its own, placed
    before the later minutes' buckets (windows bisect the buckets by minute). The first mention
    opens the stream, so the others come after its minute."""
    eng = engine(lateness=timedelta(minutes=10))
    state = eng.new_state(BRAND)
    order = [0, 3, 1, 4, 1, 2, 4, 0]
    eng.process(state, [scored(T0 + m * MIN + timedelta(seconds=5)) for m in order])
    assert [b.minute for b in state.buckets] == [T0 + m * MIN for m in range(5)]
    assert [b.count for b in state.buckets] == [order.count(m) for m in range(5)]


def test_a_customers_mentions_stay_in_time_then_id_order_whatever_the_arrival_order() -> None:
    eng = engine(lateness=timedelta(minutes=30))
    state = eng.new_state(BRAND)
    arrivals = [(0, "test:m"), (5, "test:b"), (2, "test:z"), (5, "test:a"), (9, "test:c")]
    arrivals += [(2, "test:y"), (0, "test:d")]
    eng.process(
        state,
        [scored(T0 + m * MIN, customer="cust-7", mention_id=i) for m, i in arrivals],
    )
    kept = [(m.at, m.id) for m in state.customers["cust-7"].mentions]
    assert kept == sorted((T0 + m * MIN, i) for m, i in arrivals)
