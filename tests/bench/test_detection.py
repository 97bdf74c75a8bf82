"""The shipped volume rule on the NAB development series: the figure the README reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.detection import DATA, score_all, windowed_gaussian
from bench.nab import load_profiles, load_windows, window_indices
from services.detect_cli import DEFAULT_RULE, SHIPPED_RULES, detect, find_rule, read_series


@pytest.fixture(scope="module")
def series() -> dict[str, tuple[list[bool], list[float], list[tuple[int, int]]]]:
    if not (DATA / "windows.json").is_file():
        pytest.skip(f"NAB development data not found at {DATA}")
    rule = find_rule(SHIPPED_RULES, DEFAULT_RULE)
    windows = load_windows(DATA / "windows.json")
    out = {}
    for path in sorted(Path(DATA).glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as stream:
            rows = read_series(stream, str(path))
        stamps = [at.replace(tzinfo=None) for _, at, _ in rows]
        alerts = [row.alert for row in detect(rule, rows)]
        out[path.name] = (
            alerts,
            [v for _, _, v in rows],
            window_indices(stamps, windows[path.name]),
        )
    return out


def test_standard_profile_beats_80_and_the_windowed_gaussian(
    series: dict[str, tuple[list[bool], list[float], list[tuple[int, int]]]],
) -> None:
    profile = load_profiles(DATA / "profiles.json")["standard"]
    windows = {name: spans for name, (_, _, spans) in series.items()}
    ours = score_all({name: alerts for name, (alerts, _, _) in series.items()}, windows, profile)
    assert ours["normalised"] > 80.0
    gaussian = {
        name: [s >= 1.0 for s in windowed_gaussian(v)] for name, (_, v, _) in series.items()
    }
    assert score_all(gaussian, windows, profile)["normalised"] < ours["normalised"]
