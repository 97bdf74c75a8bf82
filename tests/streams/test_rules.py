"""Rule files: the default rules load, and broken files fail with file, line and reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from streams.rule_kinds import CustomerAtRiskRule, SentimentSpikeRule
from streams.rule_kinds.base import render_template
from streams.rules import RuleFileError, load_rules, parse_rules
from streams.yamlfile import parse_duration

DEFAULT = Path(__file__).parents[2] / "alert_rules" / "default.yaml"

GOOD = """\
groups:
  - name: brand-health
    rules:
      - alert: NegativeSentimentSpike
        kind: sentiment_spike
        window: 15m
        warmup_volume: 20
        params: {odds_ratio: 1.5, min_rise: 0.15}
        warmup: 1h
        for: 10m
        keep_firing_for: 10m
        cooldown: 30m
        labels: {severity: critical}
        annotations:
          summary: "Negative sentiment spike for {{ brand }}"
          description: "{{value}} negative against {{ baseline }}"
      - alert: CustomerAtRisk
        kind: customer_at_risk
        lookback: 7d
        fire_at: 60
        resolve_below: 40
        min_mentions: 2
        labels: {severity: warning}
"""


def broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def error_of(text: str) -> str:
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "rules.yaml")
    return str(info.value)


def test_default_rules_file_has_a_rule_of_each_alerting_kind() -> None:
    ruleset = load_rules(DEFAULT)
    assert [r.kind for r in ruleset.rules] == [
        "sentiment_spike",
        "volume_surge",
        "empathy_deficit",
        "customer_at_risk",
    ]
    spike, customer = ruleset.rules[0], ruleset.rules[-1]
    assert isinstance(spike, SentimentSpikeRule)
    assert spike.alert == "NegativeSentimentSpike"
    assert spike.for_ > timedelta(0) and spike.cooldown > timedelta(0)
    assert spike.labels["severity"] == "critical"
    assert isinstance(customer, CustomerAtRiskRule)
    assert customer.alert == "CustomerAtRisk"
    assert customer.resolve_below < customer.fire_at
    assert ruleset.source == str(DEFAULT)


def test_good_file_parses_into_typed_rules() -> None:
    ruleset = parse_rules(GOOD)
    spike, customer = ruleset.rules
    assert isinstance(spike, SentimentSpikeRule)
    assert isinstance(customer, CustomerAtRiskRule)
    assert spike.window == timedelta(minutes=15)
    assert spike.window_minutes == 15
    assert spike.for_ == timedelta(minutes=10)
    assert spike.warmup_volume == 20 and spike.warmup == timedelta(hours=1)
    assert spike.params.odds_ratio == 1.5 and spike.params.min_rise == 0.15
    assert spike.params.false_alarms_per_week == 0.5  # the default budget
    assert customer.lookback == timedelta(days=7)
    assert [g.name for g in ruleset.groups] == ["brand-health"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(
            broken("warmup_volume: 20", "warmup_volume: lots"),
            7,
            "warmup_volume",
            id="wrong-type",
        ),
        pytest.param(
            broken("kind: sentiment_spike", "kind: sentiment_spiek"),
            5,
            "unknown rule kind 'sentiment_spiek'",
            id="unknown-kind",
        ),
        pytest.param(
            broken("for: 10m", "for: 10 minutes"), 10, "invalid duration", id="bad-duration"
        ),
        pytest.param(
            broken("lookback: 7d", "lookback: 7"), 19, "duration must be a string", id="bare-number"
        ),
        pytest.param(
            broken("{{ baseline }}", "{{ baseline_share }}"),
            16,
            "unknown template variable {{ baseline_share }}",
            id="unknown-template-var",
        ),
        pytest.param(
            broken('"Negative sentiment spike for {{ brand }}"', '"{{ customer }} is upset"'),
            15,
            "unknown template variable {{ customer }}",
            id="template-var-of-another-kind",
        ),
        pytest.param(
            broken("- alert: CustomerAtRisk\n        kind", "- kind"),
            17,
            "no 'alert' name",
            id="missing-alert-name",
        ),
        pytest.param(
            broken("alert: CustomerAtRisk", "alert: customer-at-risk"),
            17,
            "alert",
            id="alert-not-camel-case",
        ),
        pytest.param(
            broken("min_mentions: 2", "min_mentions: 2\n        fire_when: always"),
            23,
            "fire_when",
            id="unknown-field",
        ),
        pytest.param(
            broken("resolve_below: 40", "resolve_below: 70"),
            21,
            "resolve_below must not exceed fire_at",
            id="inverted-hysteresis",
        ),
        pytest.param(
            broken("min_rise: 0.15}", "min_rise: 1.5}"),
            8,
            "params.min_rise",
            id="share-out-of-range",
        ),
        pytest.param(
            broken("warmup: 1h", "min_increase: 0.15"),
            9,
            "min_increase is no longer used by sentiment_spike: use params.min_rise",
            id="retired-key",
        ),
        pytest.param(
            broken("window: 15m", "window: 90s"), 6, "whole number of minutes", id="window-90s"
        ),
        pytest.param(
            broken("alert: CustomerAtRisk", "alert: NegativeSentimentSpike"),
            17,
            "duplicate alert 'NegativeSentimentSpike' (first defined on line 4)",
            id="duplicate-alert",
        ),
        pytest.param(
            broken("cooldown: 30m", "cooldown: 30m\n        cooldown: 1h"),
            13,
            "duplicate key 'cooldown'",
            id="duplicate-key",
        ),
        pytest.param(
            broken("labels: {severity: warning}", "labels: {severity: [warning}"),
            23,
            "invalid YAML",
            id="invalid-yaml",
        ),
        pytest.param("", 1, "empty rule file", id="empty"),
        pytest.param("rules: []\n", 1, "expected a mapping with only 'groups'", id="no-groups"),
        pytest.param(
            broken("  - name: brand-health\n", "  - nom: brand-health\n"),
            2,
            "unknown group field 'nom'",
            id="bad-group",
        ),
    ],
)
def test_broken_rule_files_say_file_line_and_reason(text: str, line: int, reason: str) -> None:
    message = error_of(text)
    assert message.startswith(f"rules.yaml:{line}: "), message
    assert reason in message


def test_load_rules_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(broken("for: 10m", "for: soon"))
    with pytest.raises(RuleFileError, match=rf"^{path}:10: .*invalid duration 'soon'"):
        load_rules(path)
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        (" 0m ", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "-5m", "2w", "15 minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_templates_render_known_placeholders() -> None:
    rendered = render_template("{{ brand }} at {{value}}", {"brand": "acme", "value": "52%"})
    assert rendered == "acme at 52%"
