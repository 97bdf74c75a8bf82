"""NAB scoring on small hand-computed cases (numbers worked out with a pocket calculator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.nab import (
    Profile,
    alert_starts,
    load_corpus,
    load_profiles,
    load_windows,
    normalised,
    null_score,
    perfect_score,
    probation_rows,
    score_corpus,
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


def write_series(path: Path, values: list[float], start: datetime, step: timedelta) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp,value"] + [f"{start + i * step},{v:g}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")


def test_a_corpus_loads_in_either_layout_and_holds_time_that_goes_back(tmp_path: Path) -> None:
    start, step = datetime(2015, 3, 1), timedelta(minutes=5)
    write_series(tmp_path / "flat.csv", [1, 2, 3, 4], start, step)
    nested = tmp_path / "data" / "realTraffic" / "nested.csv"
    nested.parent.mkdir(parents=True)
    nested.write_text(
        "timestamp,value\n2015-03-01 01:00:00,5\n2015-03-01 00:00:00,6\n2015-03-01 01:05:00,7\n"
    )
    (tmp_path / "windows.json").write_text(
        json.dumps(
            {
                "realTweets/flat.csv": [["2015-03-01 00:05:00", "2015-03-01 00:10:00"]],
                "realTraffic/nested.csv": [],
            }
        )
    )
    flat, back = sorted(load_corpus(tmp_path), key=lambda s: s.name)
    assert (flat.name, flat.category, flat.windows, flat.held) == (
        "flat.csv",
        "realTweets",
        [(1, 2)],
        0,
    )
    assert flat.values == [1.0, 2.0, 3.0, 4.0] and flat.times[0].tzinfo is UTC
    assert back.category == "realTraffic" and back.held == 1
    assert back.times[1] == back.times[0]  # held at the previous row's time
    assert back.texts[1] == "2015-03-01 00:00:00"


def test_a_corpus_score_sums_raw_scores_and_normalises_once(tmp_path: Path) -> None:
    start, step = datetime(2015, 3, 1), timedelta(minutes=5)
    for name in ("a.csv", "b.csv"):
        write_series(tmp_path / name, [0.0] * 40, start, step)
    window = [["2015-03-01 00:50:00", "2015-03-01 01:10:00"]]  # rows 10-14
    (tmp_path / "windows.json").write_text(json.dumps({"t/a.csv": window, "t/b.csv": window}))
    corpus = load_corpus(tmp_path)
    result = score_corpus({"a.csv": fired(40, 10), "b.csv": fired(40)}, corpus, STANDARD)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 0, 1)
    assert result.raw == pytest.approx(1.0 - 1.0)
    assert result.normalised == pytest.approx(50.0)
    assert result.summary()["series"]["b.csv"] == {"raw": -1.0, "tp": 0, "fp": 0, "fn": 1}


def test_alert_starts_are_the_rising_edges_of_a_condition() -> None:
    assert alert_starts([False, True, True, False, True]) == [False, True, False, False, True]
