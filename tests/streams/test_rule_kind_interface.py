"""The rule-kind interface: a new kind is one class, and the shared state machine drives it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from streams import alert_lifecycle
from streams.engine import Engine
from streams.records import AlertState, ScoredMention
from streams.rule_kinds import KINDS, BrandRule, RuleBase, Verdict
from streams.rules import RuleGroup, RuleSet
from streams.ruletests import SeriesInput, series_mentions
from streams.state import EngineOutput, RuleState, RuleStatus
from streams.windows import WindowView

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


class ChurnShareRule(BrandRule):
    """A kind written for this test: the churn-intent share of the window above a fixed value."""

    kind: Literal["churn_share"] = "churn_share"
    above: float

    def evaluate(self, rs: RuleState, window: WindowView) -> Verdict:
        value = window.sums(self.window_minutes).churn_share
        return Verdict(value, None, value > self.above, value > self.above)


def mentions(minutes: int, per_minute: int, churn: float, start: datetime) -> list[ScoredMention]:
    part = SeriesInput.model_validate(
        {
            "brand": "acme",
            "from": start,
            "minutes": minutes,
            "per_minute": per_minute,
            "churn_share": churn,
        }
    )
    return series_mentions(part, 0)


def test_a_new_kind_is_one_class_and_the_engine_runs_it() -> None:
    rule = ChurnShareRule(
        alert="ChurnWave",
        window=timedelta(minutes=10),
        above=0.3,
        annotations={"summary": "{{ value }} of {{ brand }} want to leave"},
        **{"for": timedelta(minutes=5), "keep_firing_for": timedelta(minutes=5)},
    )
    engine = Engine(
        RuleSet(groups=(RuleGroup(name="g", rules=(rule,)),)), allowed_lateness=timedelta(0)
    )
    state = engine.new_state("acme")
    calm = mentions(60, 10, 0.0, T0)
    wave = mentions(30, 10, 0.5, T0 + 60 * MIN)
    after = mentions(60, 10, 0.0, T0 + 90 * MIN)
    alerts = engine.process(state, [*calm, *wave, *after]).alerts
    alerts += engine.advance(state, T0 + 180 * MIN).alerts
    assert [(a.state, a.alertname) for a in alerts] == [
        (AlertState.FIRING, "ChurnWave"),
        (AlertState.RESOLVED, "ChurnWave"),
    ]
    # The condition first holds at 07:07 (7 of the 10 minutes at half churn), then `for` 5m.
    assert alerts[0].starts_at == T0 + 72 * MIN
    assert alerts[0].annotations["summary"] == "50% of acme want to leave"
    # False from 07:34 (6 of 10 minutes), then `keep_firing_for` 5m.
    assert alerts[1].ends_at == T0 + 99 * MIN


def test_every_registered_brand_kind_implements_evaluate() -> None:
    for name, cls in KINDS.items():
        assert issubclass(cls, RuleBase)
        if issubclass(cls, BrandRule):
            assert cls.evaluate is not BrandRule.evaluate, name


def verdicts(values: list[bool]) -> list[tuple[datetime, Verdict]]:
    return [(T0 + i * MIN, Verdict(float(v), 0.0, v, v)) for i, v in enumerate(values)]


def transitions(rule: BrandRule, values: list[bool]) -> list[tuple[AlertState, int]]:
    outs = list(alert_lifecycle.run(rule, verdicts(values)))
    return [(alert.state, minute) for minute, out in enumerate(outs) for alert in out.alerts]


def make(**guards: timedelta) -> ChurnShareRule:
    return ChurnShareRule(alert="Wave", above=0.0, **guards)


def test_state_machine_waits_for_for_then_keeps_firing_for() -> None:
    rule = make(**{"for": 3 * MIN, "keep_firing_for": 2 * MIN})
    values = [False, True, True, True, True, False, True, False, False, False]
    assert transitions(rule, values) == [(AlertState.FIRING, 4), (AlertState.RESOLVED, 9)]


def test_a_blip_shorter_than_for_never_fires() -> None:
    rule = make(**{"for": 3 * MIN})
    assert transitions(rule, [True, True, False, True, True, False]) == []


def test_cooldown_holds_back_a_new_episode() -> None:
    rule = make(cooldown=5 * MIN)
    values = [True, False, True, True, False, False, False, False, True]
    # Fires at 0, resolves at 1; the episode at 2-3 falls inside the cooldown; 8 does not.
    assert transitions(rule, values) == [
        (AlertState.FIRING, 0),
        (AlertState.RESOLVED, 1),
        (AlertState.FIRING, 8),
    ]


def test_examples_are_taken_only_when_an_alert_needs_them() -> None:
    rule = make()
    calls: list[int] = []

    def examples() -> tuple[()]:
        calls.append(1)
        return ()

    rs = RuleState()
    out = EngineOutput()
    take: Callable[[], tuple[()]] = examples
    for at, verdict in verdicts([False, False, True, True, False]):
        alert_lifecycle.step(rule, rs, "acme", at, verdict, take, out)
    assert len(calls) == 1  # at firing; the later equal value is no new peak
    assert rs.state is RuleStatus.INACTIVE


@pytest.mark.parametrize("op", ["<", "<="])
def test_threshold_below_orders_lower_values_as_worse(op: str) -> None:
    from streams.rule_kinds import ThresholdRule

    rule = ThresholdRule.model_validate(
        {"alert": "Low", "kind": "threshold", "metric": "mean_compound", "op": op, "value": 0.0}
    )
    assert rule.worse(-0.5, -0.2) and not rule.worse(-0.2, -0.5)
    assert rule.format_value(-0.456) == "-0.46"
