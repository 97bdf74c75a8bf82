"""One detector, two cadences: the worker (every closed minute, on the count of the last 5 minutes)
and ``listenwell detect`` (one step per 5-minute row) catch the same surge at about the same time;
the worker's live detectors change nothing a restarted worker would see; the demo's first day.

The series is NAB-like: 5-minute counts of a brand's mentions with a daily cycle and Poisson-like
noise, four quiet days and then a story. The worker path is the real one: the mentions, spread
over their minutes, go through ``Engine.process`` / ``Engine.advance`` with the shipped rules.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.simulate import generate
from services.cli import main
from services.detect_cli import DEFAULT_RULE, SHIPPED_RULES, find_rule, run_volume_rule
from streams.engine import Engine
from streams.records import AlertState, ScoredMention
from streams.rules import load_rule_paths
from streams.ruletests import SeriesInput, series_mentions

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
BUCKET = timedelta(minutes=5)
ROWS_PER_DAY = 288
SURGE_ROW = 4 * ROWS_PER_DAY + 14 * 12  # day 5, 14:00
SURGE_ROWS = 18  # an hour and a half


def nab_like_counts(seed: int = 7) -> list[int]:
    """Five days of 5-minute counts around 12 (3 at night, 21 mid-afternoon); a story at 14:00
    on the fifth day: six times the usual volume, fading over an hour and a half."""
    rng = random.Random(seed)
    out = []
    for row in range(5 * ROWS_PER_DAY):
        hour = (row % ROWS_PER_DAY) / 12.0
        level = 12.0 * (1.0 + 0.75 * math.sin(2.0 * math.pi * (hour - 9.0) / 24.0))
        if SURGE_ROW <= row < SURGE_ROW + SURGE_ROWS:
            level *= 6.0 - 3.0 * (row - SURGE_ROW) / SURGE_ROWS
        out.append(max(0, round(rng.gauss(level, math.sqrt(level)))))
    return out


def bucket_end(row: int) -> datetime:
    """Row ``row`` counts the mentions of ``[end - 5 minutes, end)``."""
    return T0 + (row + 1) * BUCKET


def per_minute_mentions(counts: list[int]) -> list[ScoredMention]:
    """Each 5-minute count spread over its five minutes, as scored mentions."""
    out: list[ScoredMention] = []
    serial = 0
    for row, count in enumerate(counts):
        start = bucket_end(row) - BUCKET
        for minute in range(5):
            n = count // 5 + (1 if minute < count % 5 else 0)
            if n == 0:
                continue
            part = SeriesInput.model_validate(
                {
                    "brand": "acme",
                    "from": start + timedelta(minutes=minute),
                    "minutes": 1,
                    "per_minute": n,
                    "negative_share": 0.1,
                }
            )
            out.extend(series_mentions(part, serial))
            serial += 1
    return out


def test_the_worker_and_listenwell_detect_catch_the_surge_together() -> None:
    counts = nab_like_counts()
    rule = find_rule(SHIPPED_RULES, DEFAULT_RULE)

    # listenwell detect: one step per 5-minute row.
    rows = [(bucket_end(i), float(c)) for i, c in enumerate(counts)]
    detected = [at for at, _, _, started in run_volume_rule(rule, rows) if started]

    # The worker: every closed minute, the count of the last 5 minutes.
    engine = Engine(load_rule_paths(SHIPPED_RULES), allowed_lateness=timedelta(0))
    state = engine.new_state("acme")
    mentions = per_minute_mentions(counts)
    alerts = []
    for i in range(0, len(mentions), 2000):
        alerts += engine.process(state, mentions[i : i + 2000]).alerts
    alerts += engine.advance(state, bucket_end(len(counts))).alerts
    surges = [a for a in alerts if a.alertname == rule.alert and a.state is AlertState.FIRING]

    surge_start = bucket_end(SURGE_ROW) - BUCKET
    assert len(detected) == 1 and len(surges) == 1  # the story, and nothing else in five days
    assert surge_start < detected[0] <= surge_start + timedelta(minutes=20)
    assert abs(surges[0].starts_at - detected[0]) <= timedelta(minutes=10)
    assert surges[0].baseline is not None and surges[0].value > 3 * surges[0].baseline

    # The detector's memory in the brand's state stays small.
    stored = state.rules[rule.alert].detectors["0"]
    assert len(json.dumps(stored, separators=(",", ":"))) < 2048  # as the changelog stores it


def test_live_detectors_change_nothing_a_restarted_worker_would_see() -> None:
    # The worker keeps each brand's detector alive between minutes (streams/rule_kinds/volume.py)
    # instead of rebuilding it from the state every minute. A worker restarted before every batch
    # (each brand state read back from its changelog JSON) rebuilds them all the time: both must
    # raise the same alerts and leave the same detector state.
    rule = find_rule(SHIPPED_RULES, DEFAULT_RULE)
    mentions = per_minute_mentions(nab_like_counts())
    end = bucket_end(len(nab_like_counts()))

    def run_worker(restart_every_batch: bool) -> tuple[list[object], object]:
        engine = Engine(load_rule_paths(SHIPPED_RULES), allowed_lateness=timedelta(0))
        state = engine.new_state("acme")
        alerts: list[object] = []
        for i in range(0, len(mentions), 997):
            if restart_every_batch:
                state = type(state).model_validate_json(state.model_dump_json())
            alerts += engine.process(state, mentions[i : i + 997]).alerts
        alerts += engine.advance(state, end).alerts
        return alerts, state.rules[rule.alert].detectors

    live_alerts, live_detectors = run_worker(restart_every_batch=False)
    restarted_alerts, restarted_detectors = run_worker(restart_every_batch=True)
    assert live_alerts == restarted_alerts
    assert any(a.alertname == rule.alert for a in live_alerts)  # type: ignore[attr-defined]
    assert json.dumps(live_detectors) == json.dumps(restarted_detectors)


def test_a_state_recovered_from_an_older_changelog_record_is_not_judged_by_a_newer_detector() -> (
    None
):
    # A rebalance: the worker recovers a brand from an older changelog record and replays the
    # mentions after it. The detector kept alive from the newer minutes must not be used.
    mentions = per_minute_mentions(nab_like_counts())
    engine = Engine(load_rule_paths(SHIPPED_RULES), allowed_lateness=timedelta(0))
    batches = [mentions[i : i + 997] for i in range(0, len(mentions), 997)]
    cut = len(batches) * 3 // 4  # just before the story
    state = engine.new_state("acme")
    for batch in batches[:cut]:
        engine.process(state, batch)
    snapshot = state.model_dump_json()
    uninterrupted = [a for b in batches[cut:] for a in engine.process(state, b).alerts]
    recovered = type(state).model_validate_json(snapshot)
    replayed = [a for b in batches[cut:] for a in engine.process(recovered, b).alerts]
    assert uninterrupted and replayed == uninterrupted


@pytest.mark.parametrize(("scenario", "seed"), [("crisis", 7), ("calm", 3)])
def test_the_demo_crisis_is_a_volume_surge_on_its_first_day_and_a_calm_day_is_not(
    scenario: str, seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `make demo` replays one simulated day, the first the engine sees: the crisis brand's
    # volume (3.5 times its usual from 09:00 to 16:00) must page marketing, and the daily rise
    # from night to afternoon of every brand must not.
    path = tmp_path / f"{scenario}.jsonl"
    with path.open("w") as out:
        for mention in generate(scenario, seed=seed):
            out.write(mention.model_dump_json() + "\n")
    assert main(["rules", "backtest", "--rules", str(SHIPPED_RULES), "--input", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    surges = [line for line in lines if "MentionVolumeSurge brand=" in line]
    if scenario == "calm":
        assert surges == []
        return
    assert [line.split()[1:4] for line in surges] == [
        ["10:30", "firing", "MentionVolumeSurge"],
        ["15:44", "resolved", "MentionVolumeSurge"],
    ]
    assert all("brand=northwind-air" in line for line in surges)
