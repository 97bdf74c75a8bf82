"""The volume-surge detector: causal, restartable, explains itself, fires on surges only."""

from __future__ import annotations

import json
import random

from streams.detectors import VolumeSurgeDetector, VolumeSurgeParams


def calm_counts(n: int, mean: float = 40.0, seed: int = 3) -> list[float]:
    """A daily-ish cycle with Poisson-like noise, no surge."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = mean * (1.0 + 0.5 * ((i % 288) / 288.0))
        out.append(float(max(0, round(rng.gauss(level, level**0.5)))))
    return out


def test_a_tenfold_surge_fires_and_calm_traffic_does_not() -> None:
    detector = VolumeSurgeDetector(VolumeSurgeParams())
    verdicts = [detector.step(v) for v in calm_counts(2000)]
    assert not any(d.condition for d in verdicts)
    surge = detector.step(600.0)
    assert surge.condition
    assert 30 < surge.baseline < 80
    assert "600 mentions" in surge.reason and "baseline" in surge.reason and "z" in surge.reason
    assert surge.score > 0.5


def test_no_verdict_before_warmup() -> None:
    detector = VolumeSurgeDetector(VolumeSurgeParams(warmup=50))
    verdicts = [detector.step(v) for v in [10.0] * 20 + [5000.0]]
    assert not verdicts[-1].condition
    assert "warming up" in verdicts[-1].reason


def test_sparse_brand_needs_min_volume() -> None:
    detector = VolumeSurgeDetector(VolumeSurgeParams(warmup=10, min_volume=5))
    for _ in range(300):
        detector.step(0.0)
    assert not detector.step(4.0).condition
    assert detector.step(30.0).condition


def test_prefix_of_the_output_is_the_output_of_the_prefix() -> None:
    values = [*calm_counts(800), 900.0, 700.0, *calm_counts(300, seed=5)]
    reference = VolumeSurgeDetector(VolumeSurgeParams())
    whole = [reference.step(v) for v in values]
    for cut in (1, 299, 801, 1000):
        detector = VolumeSurgeDetector(VolumeSurgeParams())
        assert [detector.step(v) for v in values[:cut]] == whole[:cut]


def test_state_round_trips_through_json_mid_stream() -> None:
    values = [*calm_counts(600), 800.0, *calm_counts(50, seed=9)]
    params = VolumeSurgeParams()
    straight = VolumeSurgeDetector(params)
    expected = [straight.step(v) for v in values]
    first = VolumeSurgeDetector(params)
    got = [first.step(v) for v in values[:400]]
    state = json.loads(json.dumps(first.to_state()))
    resumed = VolumeSurgeDetector.from_state(params, state)
    got += [resumed.step(v) for v in values[400:]]
    assert got == expected


def test_a_second_smaller_wave_is_not_news_but_a_larger_one_is() -> None:
    detector = VolumeSurgeDetector(VolumeSurgeParams(warmup=100))
    for v in calm_counts(1000):
        detector.step(v)
    assert detector.step(2000.0).condition
    for v in calm_counts(300, seed=11):
        detector.step(v)
    smaller = detector.step(900.0)
    assert not smaller.condition and "not news" in smaller.reason
    assert detector.step(5000.0).condition
