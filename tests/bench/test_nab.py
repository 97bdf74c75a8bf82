"""NAB scoring on small hand-computed cases (numbers worked out with a pocket calculator)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.nab import (
    Profile,
    load_profiles,
    load_windows,
    normalised,
    null_score,
    perfect_score,
    probation_rows,
    score_series,
    window_indices,
)

STANDARD = Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
WINDOW = [(10, 14)]  # width 5, in a 20-row series (probation: 3 rows)


def fired(rows: int, *at: int) -> list[bool]:
    return [i in at for i in range(rows)]


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_rows(20) == 3
    assert probation_rows(1000) == 150
    assert probation_rows(15902) == 750


def test_detection_at_the_left_edge_earns_the_full_reward() -> None:
    result = score_series(fired(20, 10), WINDOW, STANDARD)
    assert result.score == pytest.approx(1.0)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 0, 0)


def test_detection_at_the_right_edge_earns_less() -> None:
    # y = -(0 + 1) / 5 = -0.2; 2 / (1 + e^-1) - 1 = 0.46212; / 0.98661 = 0.46839
    assert score_series(fired(20, 14), WINDOW, STANDARD).score == pytest.approx(0.46839, abs=1e-4)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    # y = -(14 - 12 + 1) / 5 = -0.6; 2 / (1 + e^-3) - 1 = 0.90515; / 0.98661 = 0.91743
    result = score_series(fired(20, 12, 13, 14), WINDOW, STANDARD)
    assert result.score == pytest.approx(0.91743, abs=1e-4)
    assert result.false_positives == 0


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    result = score_series(fired(20, 5, 10), WINDOW, STANDARD)
    assert result.score == pytest.approx(1.0 - 0.11)
    assert result.false_positives == 1


def test_false_positive_just_after_a_window_costs_less() -> None:
    # x = (16 - 14) / (5 - 1) = 0.5; 2 / (1 + e^2.5) - 1 = -0.84828; * 0.11 = -0.09331
    result = score_series(fired(20, 10, 16), WINDOW, STANDARD)
    assert result.score == pytest.approx(1.0 - 0.09331, abs=1e-4)


def test_false_positive_long_after_a_window_costs_the_full_fp_weight() -> None:
    # x = (30 - 14) / 4 = 4 > 3
    result = score_series(fired(40, 10, 30), WINDOW, STANDARD)
    assert result.score == pytest.approx(1.0 - 0.11)


def test_detections_in_probation_are_ignored() -> None:
    result = score_series(fired(20, 0, 1, 2, 10), WINDOW, STANDARD)
    assert result.score == pytest.approx(1.0)
    assert result.false_positives == 0


def test_missed_window_costs_the_fn_weight() -> None:
    assert score_series(fired(20), WINDOW, STANDARD).score == pytest.approx(-1.0)
    assert score_series(fired(20), WINDOW, LOW_FN).score == pytest.approx(-2.0)


def test_normalisation_maps_null_to_0_and_perfect_to_100() -> None:
    windows = [(10, 14), (30, 34)]
    null = null_score(windows, STANDARD)
    perfect = perfect_score(windows, STANDARD, 40)
    assert null == pytest.approx(-2.0)
    assert perfect == pytest.approx(2.0)
    # one window hit at its left edge, the other missed: raw 0 -> 50
    raw = score_series(fired(40, 10), windows, STANDARD).score
    assert normalised(raw, null, perfect) == pytest.approx(50.0)


def test_windows_and_profiles_load_from_nab_files(tmp_path: Path) -> None:
    start = datetime(2015, 3, 1)
    stamps = [start + timedelta(minutes=5 * i) for i in range(10)]
    (tmp_path / "windows.json").write_text(
        json.dumps({"realTweets/x.csv": [["2015-03-01 00:10:00.000000", "2015-03-01 00:20:00"]]})
    )
    windows = load_windows(tmp_path / "windows.json")
    assert window_indices(stamps, windows["x.csv"]) == [(2, 4)]
    (tmp_path / "profiles.json").write_text(
        json.dumps({"standard": {"CostMatrix": {"tpWeight": 1, "fpWeight": 0.11, "fnWeight": 1.0}}})
    )
    assert load_profiles(tmp_path / "profiles.json")["standard"] == STANDARD
