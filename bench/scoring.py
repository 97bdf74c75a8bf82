"""Scoring speed benchmark: vaderSentiment against listenwell's scorer, in the same run.

1. Throughput on realistic short texts — every text of the development data in
   ``../shared/data/sentiment-dev`` (tweets, Amazon/movie/NYT snippets, TweetEval; >= 20,000 texts):
   texts/s of ``vaderSentiment.polarity_scores`` (the baseline), of ``FastVader.scores`` (the
   sentiment core alone), of ``Scorer.score_text`` (sentiment + empathy + churn, what
   ``listenwell score`` computes) and of ``Scorer.score`` (PII redaction + records, what the worker
   calls), and decoding a raw mention's JSON with pydantic (``Mention.from_json``) and with the
   worker's fast path (``decode_mention``). Rounds are interleaved so machine noise hits all
   alike; the figure is the best round (token caches warm, as in a running worker) and the first
   round is reported too (cold caches).
2. Identity: for every text, listenwell's ``vader_compound`` against vaderSentiment's compound (all
   must be identical), and FastVader's full ``polarity_scores`` dict against vaderSentiment's.
3. Length scaling: one text of 1k, 10k, 100k and 1M characters (development texts joined):
   seconds and seconds per character for vaderSentiment, FastVader (whole text, no chunking) and
   the Scorer (chunked at 1,000 characters). vaderSentiment is quadratic: it is skipped where its
   predicted time (quadratic extrapolation from the previous length) exceeds ``--vader-limit``.

Usage: ``.venv/bin/python bench/scoring.py [--rounds 5] [--vader-limit 60]``.
Figures also go to ``bench/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from streams.fastvader import FastVader  # noqa: E402
from streams.records import Mention, MentionKind, decode_mention  # noqa: E402
from streams.scoring import Scorer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev"
RESULTS = REPO / "bench" / "results" / "scoring.json"
LENGTHS = (1_000, 10_000, 100_000, 1_000_000)


def load_texts() -> list[str]:
    """Every text of the development sentiment data, in a fixed order."""
    texts: list[str] = []
    for path in sorted((DATA / "vader").glob("*_GroundTruth.txt")):
        for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
            parts = line.split("\t", 2)
            if len(parts) == 3:
                texts.append(parts[2])
    for path in sorted((DATA / "tweeteval").glob("*/*_text.txt")):
        texts += path.read_text(encoding="utf-8").splitlines()
    return texts


def mentions_for(texts: list[str]) -> list[Mention]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Mention(
            id=f"bench:{i}",
            source="bench",
            kind=MentionKind.POST,
            brand="acme",
            text=text,
            author="a",
            created_at=at,
            fetched_at=at,
        )
        for i, text in enumerate(texts)
    ]


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def timed_call(function: Callable[[str], Any], text: str) -> tuple[float, Any]:
    began = time.perf_counter()
    result = function(text)
    return time.perf_counter() - began, result


def throughput(texts: list[str], rounds: int) -> dict[str, dict[str, float]]:
    vader = SentimentIntensityAnalyzer()
    fast = FastVader()
    scorer = Scorer()
    mentions = mentions_for(texts)
    scored_at = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)

    def each(function: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:  # results are dropped, as a worker drops them once produced
                function(item)

        return run

    raws = [m.to_json() for m in mentions]
    runs: dict[str, Callable[[], object]] = {
        "vaderSentiment": each(vader.polarity_scores, texts),
        "FastVader.scores": each(fast.scores, texts),
        "Scorer.score_text": each(scorer.score_text, texts),
        "Scorer.score": each(lambda m: scorer.score(m, scored_at=scored_at), mentions),
        # Decoding the raw mention JSON, as the worker does before scoring: pydantic's parser
        # (the contract) and the fast path the worker uses (same objects, same errors).
        "Mention.from_json": each(Mention.from_json, raws),
        "decode_mention": each(decode_mention, raws),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            seconds[name].append(timed(run))
    base = min(seconds["vaderSentiment"])
    return {
        name: {
            "texts_per_s": len(texts) / min(times),
            "texts_per_s_first_round": len(texts) / times[0],
            "us_per_text": min(times) / len(texts) * 1e6,
            "ratio_to_vader": base / min(times),
        }
        for name, times in seconds.items()
    }


def identity(texts: list[str]) -> dict[str, int]:
    vader = SentimentIntensityAnalyzer()
    fast = FastVader()
    scorer = Scorer()
    same_compound = same_dict = 0
    for text in texts:
        expected = vader.polarity_scores(text)
        same_compound += scorer.score_text(text).vader_compound == expected["compound"]
        same_dict += fast.polarity_scores(text) == expected
    return {
        "texts": len(texts),
        "identical_vader_compound": same_compound,
        "identical_polarity_scores": same_dict,
    }


def long_text(texts: list[str], length: int) -> str:
    pieces: list[str] = []
    size = 0
    while size < length:
        for text in texts:
            pieces.append(text)
            size += len(text) + 1
            if size >= length:
                break
    return " ".join(pieces)[:length]


def scaling(texts: list[str], vader_limit: float) -> list[dict[str, Any]]:
    vader = SentimentIntensityAnalyzer()
    fast = FastVader()
    scorer = Scorer()
    rows: list[dict[str, Any]] = []
    previous: tuple[int, float] | None = None
    for length in LENGTHS:
        text = long_text(texts, length)
        row: dict[str, Any] = {"chars": length}
        predicted = previous[1] * (length / previous[0]) ** 2 if previous else 0.0
        if predicted > vader_limit:
            row["vader_s"] = None
            row["vader_predicted_s"] = predicted
        else:
            row["vader_s"], expected = timed_call(vader.polarity_scores, text)
            previous = (length, row["vader_s"])
            row["fastvader_identical"] = fast.polarity_scores(text) == expected
        row["fastvader_s"], _ = timed_call(fast.scores, text)
        row["scorer_s"], _ = timed_call(scorer.score_text, text)
        for key in ("vader", "fastvader", "scorer"):
            seconds = row.get(f"{key}_s") or row.get(f"{key}_predicted_s")
            row[f"{key}_s_per_char"] = seconds / length if seconds else None
        rows.append(row)
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument(
        "--vader-limit", type=float, default=60.0, help="skip vaderSentiment above this (s)"
    )
    args = parser.parse_args(argv)

    if not DATA.is_dir():
        print(f"development data not found at {DATA}", file=sys.stderr)
        return 2
    texts = load_texts()
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} development texts, mean {mean_chars:.0f} characters")

    speed = throughput(texts, args.rounds)
    print(f"\nthroughput (best of {args.rounds} interleaved rounds; first round in brackets)")
    print(f"{'scorer':20} {'texts/s':>10} {'(first)':>10} {'us/text':>8} {'× VADER':>8}")
    for name, row in speed.items():
        print(
            f"{name:20} {row['texts_per_s']:>10.0f} ({row['texts_per_s_first_round']:>8.0f}) "
            f"{row['us_per_text']:>8.1f} {row['ratio_to_vader']:>8.2f}"
        )

    same = identity(texts)
    print(
        f"\nidentical vader_compound: {same['identical_vader_compound']}/{same['texts']}; "
        f"identical polarity_scores (all four values): "
        f"{same['identical_polarity_scores']}/{same['texts']}"
    )

    rows = scaling(texts, args.vader_limit)
    print("\nlength scaling (one text; Scorer chunks at 1,000 characters)")
    print(
        f"{'chars':>9} {'VADER s':>10} {'VADER s/char':>13} {'Fast s':>9} {'Fast s/char':>12} "
        f"{'Scorer s':>9} {'Scorer s/char':>13} {'Fast==VADER':>11}"
    )
    for row in rows:
        vader_s = (
            _fmt(row["vader_s"], ".3f")
            if row["vader_s"] is not None
            else f"~{row['vader_predicted_s']:.0f}*"
        )
        print(
            f"{row['chars']:>9} {vader_s:>10} {_fmt(row['vader_s_per_char'], '.2e'):>13} "
            f"{row['fastvader_s']:>9.4f} {row['fastvader_s_per_char']:>12.2e} "
            f"{row['scorer_s']:>9.4f} {row['scorer_s_per_char']:>13.2e} "
            f"{row.get('fastvader_identical', '—')!s:>11}"
        )
    if any(row["vader_s"] is None for row in rows):
        print(
            f"* vaderSentiment skipped: quadratic extrapolation from the previous length predicts "
            f"more than {args.vader_limit:.0f} s (s/char shown is the predicted one)"
        )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "scoring",
                "command": "bench/scoring.py "
                + " ".join(argv if argv is not None else sys.argv[1:]),
                "python": platform.python_version(),
                "texts": len(texts),
                "mean_chars": mean_chars,
                "rounds": args.rounds,
                "throughput": speed,
                "identity": same,
                "scaling": rows,
                "target_ratio": 3.0,
                "target_met": speed["Scorer.score_text"]["ratio_to_vader"] >= 3.0
                and same["identical_vader_compound"] == same["texts"],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0 if same["identical_vader_compound"] == same["texts"] else 1


if __name__ == "__main__":
    sys.exit(main())
