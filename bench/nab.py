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

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class Series:
    """One labelled NAB series, ready to be run and scored."""

    name: str
    """File name (the key of its windows)."""
    category: str
    """NAB category (the folder it came from)."""
    texts: list[str]
    """Timestamps as written in the file."""
    times: list[datetime]
    """Aware UTC timestamps that never go back: a row stamped before the previous one (one row
    of NAB's machine_temperature_system_failure goes back an hour) is held at the previous row's
    time, as a stream's watermark is."""
    values: list[float]
    windows: list[tuple[int, int]]
    """Labelled windows as (first row, last row)."""
    held: int
    """Rows whose time was held."""


def load_series(path: Path, windows: Sequence[tuple[datetime, datetime]], category: str) -> Series:
    """A ``timestamp,value`` CSV of NAB with its labelled windows."""
    texts: list[str] = []
    stamps: list[datetime] = []
    values: list[float] = []
    with path.open(encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            texts.append(row["timestamp"])
            stamps.append(parse_timestamp(row["timestamp"]))
            values.append(float(row["value"]))
    times: list[datetime] = []
    held = 0
    for stamp in stamps:
        at = stamp.replace(tzinfo=UTC)
        if times and at < times[-1]:
            at, held = times[-1], held + 1
        times.append(at)
    return Series(
        name=path.name,
        category=category,
        texts=texts,
        times=times,
        values=values,
        windows=window_indices(stamps, windows),
        held=held,
    )


def load_corpus(folder: Path) -> list[Series]:
    """Every series labelled in ``folder/windows.json``: NAB's layout (``data/<category>/x.csv``,
    as in nab-extra) or flat (``x.csv``, as in nab-dev). Sorted by category and name."""
    labels = json.loads((folder / "windows.json").read_text(encoding="utf-8"))
    corpus: list[Series] = []
    for key, spans in labels.items():
        category, _, name = key.rpartition("/")
        path = folder / "data" / key
        if not path.is_file():
            path = folder / name
        windows = [(parse_timestamp(a), parse_timestamp(b)) for a, b in spans]
        corpus.append(load_series(path, windows, category))
    return sorted(corpus, key=lambda s: (s.category, s.name))


@dataclass(frozen=True)
class CorpusScore:
    """A detector's NAB score over a corpus under one profile."""

    normalised: float
    raw: float
    null: float
    perfect: float
    true_positives: int
    false_positives: int
    false_negatives: int
    series: dict[str, SeriesScore]

    def summary(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {
            "normalised": round(self.normalised, 2),
            "raw": round(self.raw, 4),
            "null": self.null,
            "perfect": round(self.perfect, 4),
            "tp": self.true_positives,
            "fp": self.false_positives,
            "fn": self.false_negatives,
            "series": {
                name: {
                    "raw": round(s.score, 4),
                    "tp": s.true_positives,
                    "fp": s.false_positives,
                    "fn": s.false_negatives,
                }
                for name, s in self.series.items()
            },
        }


def score_corpus(
    detections: Mapping[str, Sequence[bool]], corpus: Sequence[Series], profile: Profile
) -> CorpusScore:
    """Raw score per series and the normalised score over the series in ``detections``."""
    raw = null = perfect = 0.0
    per_series: dict[str, SeriesScore] = {}
    for series in corpus:
        if series.name not in detections:
            continue
        fired = detections[series.name]
        result = score_series(fired, series.windows, profile)
        per_series[series.name] = result
        raw += result.score
        null += null_score(series.windows, profile)
        perfect += perfect_score(series.windows, profile, len(fired))
    scores = per_series.values()
    return CorpusScore(
        normalised=normalised(raw, null, perfect),
        raw=raw,
        null=null,
        perfect=perfect,
        true_positives=sum(s.true_positives for s in scores),
        false_positives=sum(s.false_positives for s in scores),
        false_negatives=sum(s.false_negatives for s in scores),
        series=per_series,
    )


def alert_starts(conditions: Iterable[bool]) -> list[bool]:
    """Detections of a detector whose condition holds over an episode: its rising edges."""
    out: list[bool] = []
    before = False
    for now in conditions:
        out.append(now and not before)
        before = now
    return out
