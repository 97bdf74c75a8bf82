"""Detection quality benchmark: ``listenwell detect`` against a windowed-Gaussian baseline, on NAB.

For every series of ``../shared/data/nab-dev`` (mention volume per 5 minutes, with labelled anomaly
windows), in one run:

1. ``listenwell detect`` — the shipped ``MentionVolumeSurge`` rule through the engine's
   ``run_volume_rule``, i.e. the code path that raises volume alerts in the worker (called as a
   function here; ``--subprocess`` runs the real command line instead). Its ``alert`` column (1 on
   the row where an alert starts firing) is the set of detections.
2. The windowed-Gaussian baseline of NAB: mean and standard deviation of the last 6,400 values
   (updated every 100 rows once the window is full), anomaly score ``1 - tail probability`` of the
   value under that normal (two-sided). As in NAB, every row whose score reaches the threshold is a
   detection, and the threshold is the one that maximises the benchmark score of each profile (a
   sweep over a fixed grid).

Both are scored with the project's NAB implementation (``bench/nab.py``) under the three profiles of
``profiles.json``: raw score per series, then the normalised score over all series.
Published references on the full 10-series realTweets set (standard profile): windowed Gaussian
51.4, Twitter ADVec 59.6, Numenta HTM 68.0, contextOSE 74.5, ARTime 81.8.

Usage: ``.venv/bin/python bench/detection.py [--data DIR] [--subprocess]``.
Figures also go to ``bench/results/detection.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.nab import (  # noqa: E402
    Profile,
    load_profiles,
    load_windows,
    normalised,
    null_score,
    perfect_score,
    score_series,
    window_indices,
)
from services.detect_cli import DEFAULT_RULE, SHIPPED_RULES, detect, find_rule, read_series  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "nab-dev"
RESULTS = REPO / "bench" / "results" / "detection.json"
WG_WINDOW = 6400
WG_STEP = 100
WG_THRESHOLDS = (
    0.5,
    0.9,
    0.95,
    0.99,
    0.995,
    0.999,
    0.9995,
    0.9999,
    0.99995,
    0.99999,
    0.999995,
    0.999999,
    1 - 1e-7,
    1 - 1e-8,
    1 - 1e-9,
    1 - 1e-10,
    1 - 1e-12,
    1 - 1e-14,
    1.0,
)
PUBLISHED = {
    "ARTime": 81.8,
    "contextOSE": 74.5,
    "Numenta HTM": 68.0,
    "Twitter ADVec": 59.6,
    "windowed Gaussian": 51.4,
}


def windowed_gaussian(values: list[float]) -> list[float]:
    """NAB's windowed-Gaussian anomaly scores (causal)."""
    scores: list[float] = []
    window: list[float] = []
    pending: list[float] = []
    mean, std = 0.0, 1.0
    total = squares = 0.0  # running sums while the window fills

    def refresh() -> tuple[float, float]:
        m = sum(window) / len(window)
        s = math.sqrt(sum((v - m) ** 2 for v in window) / len(window))
        return m, (s if s > 0.0 else 1e-6)

    for value in values:
        score = 0.0
        if window:
            z = abs(value - mean) / std
            score = 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))
        scores.append(score)
        if len(window) < WG_WINDOW:
            window.append(value)
            total += value
            squares += value * value
            mean = total / len(window)
            variance = max(0.0, squares / len(window) - mean * mean)
            std = math.sqrt(variance) if variance > 0.0 else 1e-6
        else:
            pending.append(value)
            if len(pending) == WG_STEP:
                window = window[WG_STEP:] + pending
                pending = []
                mean, std = refresh()
    return scores


def run_detect_subprocess(series: Path) -> list[bool]:
    """Alerts from the real ``listenwell detect`` command line."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "out.csv"
        command = [sys.executable, "-m", "services.cli", "detect"]
        command += ["--series", str(series), "--output", str(output)]
        subprocess.run(command, check=True, cwd=REPO, capture_output=True)
        with output.open(encoding="utf-8") as stream:
            return [row["alert"] == "1" for row in csv.DictReader(stream)]


def score_all(
    detections: dict[str, list[bool]],
    windows: dict[str, list[tuple[int, int]]],
    profile: Profile,
) -> dict[str, Any]:
    """Per-series raw scores and the normalised score over all series."""
    raw = null = perfect = 0.0
    per_series: dict[str, Any] = {}
    for name, fired in detections.items():
        result = score_series(fired, windows[name], profile)
        raw += result.score
        null += null_score(windows[name], profile)
        perfect += perfect_score(windows[name], profile, len(fired))
        per_series[name] = {
            "raw": round(result.score, 4),
            "tp": result.true_positives,
            "fp": result.false_positives,
            "fn": result.false_negatives,
        }
    return {
        "normalised": round(normalised(raw, null, perfect), 2),
        "raw": round(raw, 4),
        "null": null,
        "perfect": round(perfect, 4),
        "series": per_series,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="NAB-style data folder")
    parser.add_argument("--subprocess", action="store_true", help="run the CLI as a process")
    args = parser.parse_args()
    data: Path = args.data
    profiles = load_profiles(data / "profiles.json")
    all_windows = load_windows(data / "windows.json")
    rule = find_rule(SHIPPED_RULES, DEFAULT_RULE)

    ours: dict[str, list[bool]] = {}
    wg_scores: dict[str, list[float]] = {}
    windows: dict[str, list[tuple[int, int]]] = {}
    elapsed = 0.0
    rows = 0
    for path in sorted(data.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as stream:
            series = read_series(stream, str(path))
        rows += len(series)
        windows[path.name] = window_indices(
            [at.replace(tzinfo=None) for _, at, _ in series], all_windows.get(path.name, [])
        )
        started = time.perf_counter()
        if args.subprocess:
            ours[path.name] = run_detect_subprocess(path)
        else:
            ours[path.name] = [row.alert for row in detect(rule, series)]
        elapsed += time.perf_counter() - started
        wg_scores[path.name] = windowed_gaussian([value for _, _, value in series])

    results: dict[str, Any] = {
        "benchmark": "detection",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "data": str(data),
        "rows": rows,
        "rule": rule.alert,
        "params": rule.params.model_dump(),
        "cooldown_s": rule.cooldown.total_seconds(),
        "detect_seconds": round(elapsed, 3),
        "published_standard": PUBLISHED,
        "profiles": {},
    }
    print(f"NAB scoring of {len(ours)} series, {rows} rows ({data})")
    print(f"listenwell detect ({rule.alert}): {elapsed:.2f} s, {rows / elapsed:,.0f} rows/s")
    for name, profile in profiles.items():
        listenwell = score_all(ours, windows, profile)
        best: dict[str, Any] | None = None
        for threshold in WG_THRESHOLDS:
            fired = {k: [s >= threshold for s in v] for k, v in wg_scores.items()}
            candidate = score_all(fired, windows, profile)
            if best is None or candidate["normalised"] > best["normalised"]:
                best = {**candidate, "threshold": threshold}
        assert best is not None
        results["profiles"][name] = {"listenwell": listenwell, "windowed_gaussian": best}
        print(f"\nprofile {name}:")
        print(f"  {'series':28} {'listenwell raw':>15} {'TP/FP/FN':>9}   {'w-Gaussian raw':>15}")
        for series_name, mine in listenwell["series"].items():
            theirs = best["series"][series_name]
            counts = f"{mine['tp']}/{mine['fp']}/{mine['fn']}"
            print(f"  {series_name:28} {mine['raw']:15.3f} {counts:>9}   {theirs['raw']:15.3f}")
        print(
            f"  normalised: listenwell {listenwell['normalised']:.1f}   windowed Gaussian "
            f"{best['normalised']:.1f} (threshold {best['threshold']:.12g})"
        )
    print(
        "\npublished (standard, full realTweets): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
