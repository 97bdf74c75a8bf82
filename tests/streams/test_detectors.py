"""The surge detector on small synthetic series: what a marketing team would notice.

Series are 5-minute counts with a daily cycle and Poisson-like noise (seeded), stepped as
``listenwell detect`` steps them, one row at a time.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from streams.detectors import Detection, VolumeSurgeDetector, VolumeSurgeParams
from streams.rules import RuleFileError, parse_rules

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, midnight
STEP = timedelta(minutes=5)
DAY = 288  # 5-minute rows


def cycle(row: int, mean: float, swing: float) -> float:
    """Daily cycle: lowest at 03:00, highest at 15:00, ``swing`` times the mean between them."""
    hour = (row % DAY) / 12.0
    return mean * (1.0 + swing * math.sin(2.0 * math.pi * (hour - 9.0) / 24.0))


def counts(
    rows: int,
    mean: float = 40.0,
    *,
    swing: float = 0.5,
    seed: int = 1,
    shape: Callable[[int], float] | None = None,
) -> list[float]:
    """Poisson-like counts around a daily cycle, times ``shape(row)`` if given."""
    rng = random.Random(seed)
    out = []
    for row in range(rows):
        level = cycle(row, mean, swing) * (shape(row) if shape else 1.0)
        out.append(float(max(0, round(rng.gauss(level, math.sqrt(level))))))
    return out


def run(values: Sequence[float], params: VolumeSurgeParams | None = None) -> list[Detection]:
    detector = VolumeSurgeDetector(params or VolumeSurgeParams())
    return [detector.step(T0 + i * STEP, v) for i, v in enumerate(values)]


def starts(verdicts: Sequence[Detection]) -> list[int]:
    return [i for i, d in enumerate(verdicts) if d.started]


def at(day: int, hour: float) -> int:
    """Row of ``hour`` o'clock on ``day`` (0-based)."""
    return day * DAY + round(hour * 12)


def surge(start: int, rows: int, factor: float) -> Callable[[int], float]:
    return lambda row: factor if start <= row < start + rows else 1.0


def test_a_surge_fires_once_at_its_start_and_calm_days_never_do() -> None:
    begin = at(4, 14)
    verdicts = run(counts(6 * DAY, shape=surge(begin, 12, 10.0)))
    assert starts(verdicts) == [begin + 1]  # on its second row: most of the last 10 minutes
    alert = verdicts[begin + 1]
    assert alert.condition and alert.direction == "up" and alert.score > 0.5
    assert alert.ratio > 5 and alert.z >= 4.0
    assert 30 < alert.baseline < 90  # the 14:00 expectation of a mean-40 cycle
    assert alert.reason.startswith("surge: ") and "expected" in alert.reason
    assert "same hour on the last 7 days" in alert.reason
    assert len(alert.same_hour) == 7 and sum(c is not None for c in alert.same_hour) == 4
    assert all(30 < c < 90 for c in alert.same_hour if c is not None)
    assert alert.level_24h is not None and 20 < alert.level_24h < 60
    # The surge is over (and the detector re-armed) within two hours of its end.
    assert not verdicts[begin + 12 + 24].condition


def test_the_first_day_catches_a_story_but_not_its_own_daily_cycle() -> None:
    # A brand seen for the first time: no daily shape yet, so its rise from night to afternoon
    # (three times its level) must not look like a surge, and a story of twenty times must.
    assert starts(run(counts(DAY, swing=0.5))) == []
    verdicts = run(counts(DAY, swing=0.5, shape=surge(at(0, 20), 12, 20.0)))
    assert starts(verdicts) == [at(0, 20) + 1]
    alert = verdicts[at(0, 20) + 1]
    assert not alert.shaped and alert.usual_peak is None
    assert "no daily shape yet" in alert.reason and "10x the level so far" in alert.reason
    # A five-fold rise on the first day is not enough without a daily shape to judge it by.
    assert starts(run(counts(DAY, swing=0.5, shape=surge(at(0, 20), 12, 5.0)))) == []


def test_nothing_fires_in_the_first_three_hours() -> None:
    verdicts = run(counts(DAY, shape=surge(at(0, 1), 12, 20.0)))
    assert starts(verdicts) == []
    assert verdicts[5].reason == "warming up: no history yet"
    assert verdicts[at(0, 1) + 3].reason.startswith("warming up")


def test_a_level_shift_is_one_alert_then_the_new_normal() -> None:
    shift = at(3, 12)
    verdicts = run(counts(10 * DAY, shape=lambda row: 3.0 if row >= shift else 1.0))
    assert starts(verdicts) == [shift + 1]
    # Not a surge for days: the episode ends within a day and nothing fires after it.
    assert not any(d.condition for d in verdicts[shift + DAY :])
    later = verdicts[at(6, 15)]
    assert later.reason.startswith("normal")
    assert 0.7 < later.ratio < 1.4  # the expectation has become the new level


def test_two_surges_a_few_hours_apart_are_two_alerts() -> None:
    first, second = at(4, 10), at(4, 15)
    shape = lambda row: surge(first, 12, 8.0)(row) * surge(second, 12, 8.0)(row)  # noqa: E731
    verdicts = run(counts(5 * DAY, shape=shape))
    assert starts(verdicts) == [first + 1, second + 1]


def test_a_big_story_does_not_mute_the_next_one() -> None:
    # A thirty-fold story, then a four-fold one the next day: both are news (the first round's
    # "largest recent excess" muted the second for weeks).
    big, small = at(4, 10), at(5, 10)
    shape = lambda row: surge(big, 12, 30.0)(row) * surge(small, 12, 4.0)(row)  # noqa: E731
    verdicts = run(counts(7 * DAY, shape=shape))
    assert starts(verdicts) == [big + 1, small + 1]


def test_a_brand_that_jumps_every_day_is_paged_about_once_a_week() -> None:
    # Every day a half-hour burst of a random size (three to eight times normal, at a random
    # hour): significant each time, but usual for this brand. Over the last three weeks it is
    # paged for a few of its biggest bursts (about one a week), not daily, and a twenty-fold
    # story on day 45 is always news.
    rng = random.Random(5)
    bursts = {day: (at(day, rng.uniform(10, 18)), rng.uniform(3.0, 8.0)) for day in range(50)}
    story = at(45, 15)

    def shape(row: int) -> float:
        start, factor = bursts[row // DAY]
        burst = factor if start <= row < start + 6 else 1.0
        return 20.0 if story <= row < story + 12 else burst

    values = counts(50 * DAY, shape=shape)
    verdicts = run(values)
    late = [i for i in starts(verdicts) if i >= 28 * DAY]
    assert story + 1 in late and len(late) <= 1 + 4  # the story and at most ~one a week
    without_rank = run(values, VolumeSurgeParams(peak_rank=0))
    assert len([i for i in starts(without_rank) if i >= 28 * DAY]) >= 20  # nearly every day
    routine = [d for i, d in enumerate(verdicts) if i >= 28 * DAY and d.verdict == "not unusual"]
    assert routine and all(d.usual_peak is not None and d.z < d.usual_peak for d in routine)
    assert "usual peak z" in routine[0].reason and "4th highest daily peak" in routine[0].reason
    alert = verdicts[story + 1]
    assert alert.usual_peak is not None and alert.z >= alert.needed == alert.usual_peak > 4.5


def test_the_daily_peak_is_not_a_surge() -> None:
    # Ten times more mentions at 15:00 than at 03:00, every day for two weeks.
    verdicts = run(counts(14 * DAY, mean=50.0, swing=0.8))
    assert starts(verdicts) == []


def test_a_steep_daily_edge_is_not_a_surge() -> None:
    # A show at 20:00 every day: eight times the volume from 20:00 to 22:00, starting sharply.
    def show(row: int) -> float:
        return 8.0 if at(0, 20) <= row % DAY < at(0, 22) else 1.0

    verdicts = run(counts(10 * DAY, swing=0.0, shape=show))
    assert [i for i in starts(verdicts) if i >= 2 * DAY] == []


def test_a_weekly_evening_is_learnt() -> None:
    # Every Friday from 18:00 to 23:00 the brand gets four times its usual volume.
    def friday(row: int) -> float:
        day, minute = divmod(row, DAY)
        return 4.0 if day % 7 == 4 and at(0, 18) <= minute < at(0, 23) else 1.0

    verdicts = run(counts(6 * 7 * DAY, shape=friday))
    fridays = [i // (7 * DAY) for i in starts(verdicts)]
    # New on the first Friday; the hour-of-week offsets have learnt it within three weeks.
    assert fridays[:1] == [0] and all(week <= 2 for week in fridays)
    assert all(i % DAY > at(0, 18) for i in starts(verdicts))


def test_a_collapse_is_watched_only_when_asked() -> None:
    outage = at(4, 12)
    values = counts(5 * DAY, mean=80.0, shape=surge(outage, 24, 0.0))
    assert starts(run(values)) == []
    down = run(values, VolumeSurgeParams(direction="down"))
    assert starts(down) == [outage + 1]
    assert down[outage + 1].direction == "down" and down[outage + 1].z <= -4.0
    assert down[outage + 1].reason.startswith("collapse: ")


def test_state_round_trips_through_json_with_identical_verdicts() -> None:
    values = counts(6 * DAY, shape=surge(at(4, 14), 12, 10.0))
    params = VolumeSurgeParams()
    expected = run(values, params)
    for cut in (1, 7, DAY + 5, at(4, 14) + 3, 6 * DAY - 1):
        first = VolumeSurgeDetector(params)
        got = [first.step(T0 + i * STEP, v) for i, v in enumerate(values[:cut])]
        text = json.dumps(first.to_state(), separators=(",", ":"))
        assert len(text) < 2048
        resumed = VolumeSurgeDetector.from_state(params, json.loads(text))
        got += [resumed.step(T0 + i * STEP, v) for i, v in enumerate(values[cut:], start=cut)]
        assert got == expected


def test_the_verdicts_on_a_prefix_do_not_depend_on_what_follows() -> None:
    values = counts(5 * DAY, shape=surge(at(4, 14), 12, 10.0))
    whole = run(values)
    for cut in (DAY, at(4, 14) + 2):
        assert run(values[:cut]) == whole[:cut]


def test_a_state_of_an_unknown_format_starts_afresh() -> None:
    old = {"level": 3.2, "dev": 0.4, "seen": 5000, "peak": 1.0}
    detector = VolumeSurgeDetector.from_state(VolumeSurgeParams(), old)
    assert detector.to_state() == VolumeSurgeDetector(VolumeSurgeParams()).to_state()


def test_a_state_of_the_previous_version_keeps_its_history() -> None:
    # Version 2 (before the usual peak) had "largest_up"/"largest_down" instead of daily peaks.
    values = counts(6 * DAY, shape=surge(at(5, 14), 12, 10.0))
    detector = VolumeSurgeDetector(VolumeSurgeParams())
    for i, v in enumerate(values[: 5 * DAY]):
        detector.step(T0 + i * STEP, v)
    state = detector.to_state()
    old = {k: v for k, v in state.items() if k not in ("peaks", "episode_day", "hourly")}
    old.update(v=2, largest_up=120.0, largest_down=30.0)
    resumed = VolumeSurgeDetector.from_state(VolumeSurgeParams(), old)
    assert resumed.hours == detector.hours and resumed.spread == detector.spread
    assert resumed.peaks == []
    rest = [resumed.step(T0 + i * STEP, v) for i, v in enumerate(values[5 * DAY :], 5 * DAY)]
    assert [i + 5 * DAY for i, d in enumerate(rest) if d.started] == [at(5, 14) + 1]


def test_bad_input_is_a_clear_error() -> None:
    detector = VolumeSurgeDetector(VolumeSurgeParams())
    detector.step(T0, 3.0)
    with pytest.raises(ValueError, match="finite"):
        detector.step(T0 + STEP, math.nan)
    with pytest.raises(ValueError, match="before the previous step"):
        detector.step(T0 - STEP, 3.0)
    with pytest.raises(ValidationError, match="rearm"):
        VolumeSurgeParams(threshold=2.0, rearm=2.0)
    with pytest.raises(ValidationError, match="peak_window must be whole days"):
        VolumeSurgeParams(peak_window=timedelta(hours=36))
    with pytest.raises(ValidationError, match="peak_rank"):
        VolumeSurgeParams(peak_rank=8, peak_window=timedelta(days=7))


def test_bad_parameters_in_a_rule_file_name_the_line() -> None:
    text = """groups:
  - name: g
    rules:
      - alert: Surge
        kind: volume_surge
        params:
          threshold: 3
          sustain: ten minutes
"""
    with pytest.raises(RuleFileError, match=r"rules\.yaml:8: params\.sustain"):
        parse_rules(text, "rules.yaml")


def test_the_sustained_count_rests_on_exactly_the_steps_within_sustain() -> None:
    """Steps at irregular times (gaps longer than ``sustain`` too): after each step the detector
    keeps exactly the steps within ``sustain`` before it, that one included, whose median is the
    sustained count once the detector is past its warm-up."""
    params = VolumeSurgeParams()
    sustain = params.sustain.total_seconds()
    detector = VolumeSurgeDetector(params)
    rng = random.Random(11)
    seen: list[tuple[float, float]] = []
    now = T0
    judged = 0
    for _ in range(3000):
        now += timedelta(seconds=rng.choice([60, 60, 60, 120, 300, 900]))
        value = float(rng.randint(0, 40))
        seen.append((now.timestamp(), value))
        detection = detector.step(now, value)
        inside = [(t, v) for t, v in seen if t >= now.timestamp() - sustain]
        assert detector.recent == inside
        if detection.verdict != "warming up":
            judged += 1
            ordered = sorted(v for _, v in inside)
            middle = len(ordered) // 2
            if len(ordered) % 2:
                median = ordered[middle]
            else:
                median = 0.5 * (ordered[middle - 1] + ordered[middle])
            assert detection.sustained == median
    assert judged > 1000
