"""A volume-surge alert says why: count against expected, z-score and the history compared with."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streams.engine import Engine
from streams.records import AlertState
from streams.rules import load_rules, parse_rules
from streams.ruletests import SeriesInput, series_mentions

DEFAULT = Path(__file__).parents[2] / "alert_rules" / "default.yaml"


def surge_alerts(rules_text: str | None = None) -> list[tuple[AlertState, str]]:
    rules = parse_rules(rules_text, "t.yaml") if rules_text else load_rules(DEFAULT)
    engine = Engine(rules, allowed_lateness=timedelta(0))
    state = engine.new_state("acme")
    parts = [
        {"from": "2026-01-04T00:00Z", "minutes": 2040, "per_minute": 5},
        {"from": "2026-01-05T10:00Z", "minutes": 40, "per_minute": 40},
        {"from": "2026-01-05T10:40Z", "minutes": 180, "per_minute": 5},
    ]
    batch = sorted(
        (
            m
            for i, part in enumerate(parts)
            for m in series_mentions(SeriesInput.model_validate({"brand": "acme", **part}), i)
        ),
        key=lambda m: m.mention.created_at,
    )
    out = engine.process(state, batch)
    return [
        (a.state, a.annotations["description"])
        for a in out.alerts
        if a.alertname == "MentionVolumeSurge"
    ]


def test_the_shipped_volume_alert_carries_the_detectors_evidence() -> None:
    (firing, text), (resolved, after) = surge_alerts()
    assert (firing, resolved) == (AlertState.FIRING, AlertState.RESOLVED)
    assert "200 mentions of acme in 5 minutes, against 25 expected" in text
    assert "Why: surge: 200 mentions (median 60 over 10 min) against 25.0 expected (2.4x" in text
    assert "same hour on the last 7 days: 25.0" in text
    assert "level over the last 24 h: 25.0" in text
    assert "Why: normal: 25 mentions against 25.0 expected (1.0x" in after


def test_each_piece_of_evidence_is_a_placeholder_of_its_own() -> None:
    rules = """\
groups:
  - name: g
    rules:
      - alert: MentionVolumeSurge
        kind: volume_surge
        window: 5m
        annotations:
          description: "{{ value }} vs {{ expected }} ({{ ratio }}, z {{ z }}); {{ same_hour }}"
"""
    (_, text), _ = surge_alerts(rules)
    assert text.startswith("200 vs 25 (2.4x, z 17.0); 25, -, -, -, -, -, -")
