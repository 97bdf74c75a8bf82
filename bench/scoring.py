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
3. The customer-service sentiment layer (``streams.cs_sentiment``), what the worker adds to VADER:
   per text, on the development texts and on the crisis scenario's texts
   (``connectors.simulate.generate("crisis", seed=7)``), ``CsSentiment.compound`` given VADER's
   scores and the worker's scorer (``worker_scorer(alert_rules/default.yaml)``) ``score_text``,
   each beside the same with the baseline layer (default: the layer before it was made cheaper,
   kept as the test oracle in ``tests/streams/cs_sentiment_reference.py``; ``--cs-baseline FILE``
   times another ``cs_sentiment.py``, e.g. main's), rounds interleaved; and how many verdicts are
   identical, bit for bit, to the baseline's.
4. Length scaling: one text of 1k, 10k, 100k and 1M characters (development texts joined):
   seconds and seconds per character for vaderSentiment, FastVader (whole text, no chunking) and
   the Scorer (chunked at 1,000 characters). vaderSentiment is quadratic: it is skipped where its
   predicted time (quadratic extrapolation from the previous length) exceeds ``--vader-limit``.

Usage: ``.venv/bin/python bench/scoring.py [--rounds 5] [--vader-limit 60] [--cs-baseline FILE]``.
Figures also go to ``bench/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from connectors.simulate import generate  # noqa: E402
from streams.brand_scoring import scorer_for, worker_scorer  # noqa: E402
from streams.cs_sentiment import CsSentiment  # noqa: E402
from streams.fastvader import FastVader  # noqa: E402
from streams.records import Mention, MentionKind, decode_mention  # noqa: E402
from streams.scoring import Scorer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev"
RESULTS = REPO / "bench" / "results" / "scoring.json"
LENGTHS = (1_000, 10_000, 100_000, 1_000_000)
RULES = REPO / "alert_rules" / "default.yaml"
REFERENCE_LAYER = REPO / "tests" / "streams" / "cs_sentiment_reference.py"


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


def baseline_layer(path: Path) -> Any:
    """The sentiment layer of another module file: ``ReferenceCsSentiment()`` of the test oracle,
    or ``CsSentiment.load()`` of a ``cs_sentiment.py`` (e.g. main's checkout)."""
    spec = importlib.util.spec_from_file_location(f"baseline_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    if hasattr(module, "ReferenceCsSentiment"):
        return module.ReferenceCsSentiment()
    return module.CsSentiment.load()


def verdict_bits(verdict: Any) -> tuple[object, ...]:
    """A layer's verdict with every float as its exact bits (``float.hex``), to compare two
    layers bit for bit (also ``tests/streams/test_cs_sentiment_exact.py``)."""
    rules = verdict.rules
    return (
        verdict.compound.hex(),
        verdict.label,
        tuple(p.hex() for p in verdict.probabilities),
        (rules.complaint.hex(), rules.sarcasm, rules.compound.hex()),
    )


def layer_costs(texts: list[str], rounds: int, baseline: Any) -> dict[str, Any]:
    """µs per text of the customer-service layer and of the worker's scorer, now and baseline."""
    vader = SentimentIntensityAnalyzer()
    plain = Scorer()
    layer = CsSentiment.load()
    worker = worker_scorer(RULES)
    worker_baseline = scorer_for(RULES, sentiment_layer=baseline)
    pairs = [(text, plain.vader(text)) for text in texts]

    def each_text(function: Callable[[str], object]) -> Callable[[], None]:
        def run() -> None:
            for text in texts:
                function(text)

        return run

    def each_pair(function: Callable[[str, Any], object]) -> Callable[[], None]:
        def run() -> None:
            for text, scores in pairs:
                function(text, scores)

        return run

    runs: dict[str, Callable[[], object]] = {
        "vaderSentiment": each_text(vader.polarity_scores),
        "Scorer.score_text": each_text(plain.score_text),
        "worker score_text (baseline)": each_text(worker_baseline.score_text),
        "worker score_text": each_text(worker.score_text),
        "CsSentiment.compound (baseline)": each_pair(baseline.compound),
        "CsSentiment.compound": each_pair(layer.compound),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            seconds[name].append(timed(run))
    identical = sum(
        verdict_bits(layer.verdict(text, scores)) == verdict_bits(baseline.verdict(text, scores))
        for text, scores in pairs
    )
    per_text = {name: min(times) / len(texts) * 1e6 for name, times in seconds.items()}
    return {
        "texts": len(texts),
        "us_per_text": per_text,
        "identical_verdicts": identical,
        "layer_speedup": per_text["CsSentiment.compound (baseline)"]
        / per_text["CsSentiment.compound"],
        "worker_speedup": per_text["worker score_text (baseline)"] / per_text["worker score_text"],
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
    parser.add_argument(
        "--cs-baseline",
        type=Path,
        default=REFERENCE_LAYER,
        help="cs_sentiment.py (or the test oracle) whose layer the current one is timed against",
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

    baseline = baseline_layer(args.cs_baseline)
    crisis = [mention.text for mention in generate("crisis", seed=7)]
    layer = {"development": layer_costs(texts, args.rounds, baseline)}
    layer["crisis"] = layer_costs(crisis, args.rounds, baseline)
    print(
        f"\ncustomer-service layer, us per text (best of {args.rounds} interleaved rounds; "
        f"baseline: {args.cs_baseline})"
    )
    print(f"{'':32} {'development':>12} {'crisis':>10}")
    for name in layer["development"]["us_per_text"]:
        print(
            f"{name:32} {layer['development']['us_per_text'][name]:>12.1f} "
            f"{layer['crisis']['us_per_text'][name]:>10.1f}"
        )
    for key, label in (("layer_speedup", "layer speed-up"), ("worker_speedup", "worker speed-up")):
        print(f"{label:32} {layer['development'][key]:>11.2f}x {layer['crisis'][key]:>9.2f}x")
    for name, row in layer.items():
        print(
            f"identical verdicts ({name}): {row['identical_verdicts']}/{row['texts']} "
            "(compound, label, probabilities and rule hits, bit for bit)"
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
                "cs_layer": layer,
                "cs_baseline": str(args.cs_baseline),
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
    layer_same = all(row["identical_verdicts"] == row["texts"] for row in layer.values())
    return 0 if same["identical_vader_compound"] == same["texts"] and layer_same else 1


if __name__ == "__main__":
    sys.exit(main())
