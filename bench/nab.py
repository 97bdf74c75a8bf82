"""The Numenta Anomaly Benchmark (NAB) scoring method, implemented from its description.

See ``../shared/data/README.md`` ("How spike detection is scored"). For one series:

- the first ``min(floor(0.15 * rows), 750)`` rows are a probation period: detections there are
  ignored;
- each labelled window is the set of rows whose timestamp lies between its two ends (inclusive);
  inside a window only the earliest detection counts and earns ``tpWeight * sigmoid(y) / 0.98661``
  with ``sigmoid(y) = 2 / (1 + e^(5y)) - 1`` and ``y = -(rows to the window's right end + 1) /
  width`` (1.0 at the left edge, 0 at the right edge);
- a detection outside every window costs ``fpWeight`` times 1.0 when no window precedes it, else
  ``-sigmoid(x)`` with ``x = rows since the preceding window's right edge / (its width - 1)``
  (-1.0 from x > 3 on, so that penalty is 1.0);
- a window with no detection costs ``fnWeight``.

Raw scores are summed over series and normalised ``100 * (raw - null) / (perfect - null)``, where
the null detector never fires and the perfect one fires at the left edge of every window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
MAX_TP = 2.0 / (1.0 + math.exp(-5.0)) - 1.0  # sigmoid(-1.0) = 0.98661...


@dataclass(frozen=True)
class Profile:
    """A NAB cost matrix."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class SeriesScore:
    """Raw score of one series under one profile, with the counts behind it."""

    score: float
    true_positives: int
    false_positives: int
    false_negatives: int


def scaled_sigmoid(position: float) -> float:
    """NAB's reward curve: ``2 / (1 + e^(5 * position)) - 1``, and -1.0 beyond ``position > 3``."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_rows(rows: int) -> int:
    """Rows of the probation period of a series with ``rows`` rows."""
    return min(math.floor(PROBATION_FRACTION * rows), PROBATION_MAX_ROWS)


def window_indices(
    timestamps: Sequence[datetime], windows: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, int]]:
    """(first row, last row) of each window: the rows whose timestamp lies within its ends.

    Windows without rows are dropped; the result is sorted by first row.
    """
    spans: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        inside = [i for i, ts in enumerate(timestamps) if start <= ts <= end]
        if inside:
            spans.append((inside[0], inside[-1]))
    return spans


def score_series(
    detections: Sequence[bool], windows: Sequence[tuple[int, int]], profile: Profile
) -> SeriesScore:
    """Raw NAB score of one series: ``detections[i]`` is whether the detector fired at row ``i``.

    ``windows`` are (first row, last row) pairs, inclusive, sorted and not overlapping.
    """
    probation = probation_rows(len(detections))
    window_of: dict[int, int] = {}
    for index, (first, last) in enumerate(windows):
        for row in range(first, last + 1):
            window_of[row] = index
    detected: set[int] = set()
    score = 0.0
    false_positives = 0
    for row, fired in enumerate(detections):
        if not fired or row < probation:
            continue
        number = window_of.get(row)
        if number is not None:
            if number in detected:
                continue
            detected.add(number)
            first, last = windows[number]
            width = last - first + 1
            position = -(last - row + 1) / width
            score += profile.tp_weight * scaled_sigmoid(position) / MAX_TP
            continue
        false_positives += 1
        preceding = [(first, last) for first, last in windows if last < row]
        if not preceding:
            penalty = -1.0
        else:
            first, last = preceding[-1]
            width = last - first + 1
            penalty = scaled_sigmoid((row - last) / (width - 1)) if width > 1 else -1.0
        score += profile.fp_weight * penalty
    missed = len(windows) - len(detected)
    score -= profile.fn_weight * missed
    return SeriesScore(
        score=score,
        true_positives=len(detected),
        false_positives=false_positives,
        false_negatives=missed,
    )


def null_score(windows: Sequence[tuple[int, int]], profile: Profile) -> float:
    """Raw score of the detector that never fires."""
    return -profile.fn_weight * len(windows)


def perfect_score(windows: Sequence[tuple[int, int]], profile: Profile, rows: int) -> float:
    """Raw score of the detector that fires at the left edge of every window."""
    detections = [False] * rows
    for first, _ in windows:
        detections[first] = True
    return score_series(detections, windows, profile).score


def normalised(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``."""
    return 100.0 * (raw - null) / (perfect - null)


def load_profiles(path: Path) -> dict[str, Profile]:
    """The profiles of a NAB ``profiles.json``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    profiles: dict[str, Profile] = {}
    for name, body in data.items():
        costs: Mapping[str, float] = body["CostMatrix"]
        profiles[name] = Profile(
            name=name,
            tp_weight=float(costs["tpWeight"]),
            fp_weight=float(costs["fpWeight"]),
            fn_weight=float(costs["fnWeight"]),
        )
    return profiles


def parse_timestamp(text: str) -> datetime:
    """NAB timestamps: ``2015-03-03 04:37:53`` with optional fractional seconds."""
    return datetime.fromisoformat(text.strip())


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """Windows of a NAB ``windows.json``, keyed by the file name of each series."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        Path(key).name: [(parse_timestamp(a), parse_timestamp(b)) for a, b in spans]
        for key, spans in data.items()
    }
