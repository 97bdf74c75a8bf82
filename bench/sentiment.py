"""Sentiment quality benchmark: plain VADER against listenwell's customer-service layer, one run.

1. TweetEval sentiment **test** split (12,284 tweets; never used for training): macro-recall and
   macro-F1 of plain VADER (compound >= 0.05 positive, <= -0.05 negative) and of listenwell
   (``Scorer(sentiment_layer=CsSentiment.load())``, what ``listenwell score`` runs). Published:
   VADER 0.570 macro-recall, a linear SVM trained on the full TweetEval train split 0.629.
2. Pearson correlation of each compound with the human ratings of the VADER ground-truth sets
   (tweets, Amazon, movie and NYT snippets). The VADER *tweets* and *Amazon* ratings are part of the
   model's training data (``bench/train_cs_sentiment.py``), so only movie and NYT are held out.
3. The cross-validated figures of the training run (out-of-fold, from the weights file): macro-F1
   on each three-way-labelled training set, as is and re-weighted to the customer-service class
   mix the class offsets were chosen for.
4. Accuracy on ``tests/data/cs_complaints.jsonl``: customer-service complaints VADER misreads
   ("thanks for losing my bag", "on hold for two hours", ...), plus a few positive and neutral
   service texts, each with its expected label (written with the first rules: optimistic).
   Accuracy and macro-F1 on ``tests/data/cs_tweets.jsonl``: customer tweets to an airline, a
   telco and a retailer, set ``dev`` (read while the second round of rules was written) and set
   ``check`` (written before it and not read while building; the fairer of the two).
5. Cost per text on the TweetEval test texts: vaderSentiment's ``polarity_scores`` against
   listenwell's ``score_text`` with the layer (best of ``--rounds``, interleaved).

Usage: ``.venv/bin/python bench/sentiment.py [--rounds 3]``.
Figures also go to ``bench/results/sentiment.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from streams.cs_sentiment import WEIGHTS_PATH, CsSentiment  # noqa: E402
from streams.scoring import Scorer, label_for  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev"
FIXTURE = REPO / "tests" / "data" / "cs_complaints.jsonl"
TWEETS = REPO / "tests" / "data" / "cs_tweets.jsonl"
TRAINED_ON = ("tweets", "amazonReviewSnippets")
RESULTS = REPO / "bench" / "results" / "sentiment.json"
LABELS = ("negative", "neutral", "positive")


def macro(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Macro-averaged recall and F1 over the three labels, with per-label recall."""
    recalls: dict[str, float] = {}
    f1s: list[float] = []
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        actual = sum(1 for g in gold if g == label)
        guessed = sum(1 for p in predicted if p == label)
        recall = tp / actual if actual else 0.0
        precision = tp / guessed if guessed else 0.0
        recalls[label] = round(recall, 4)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "macro_recall": round(sum(recalls.values()) / 3, 4),
        "macro_f1": round(sum(f1s) / 3, 4),
        "recall": recalls,
    }


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return cov / math.sqrt(vx * vy)


def best_time(function: Callable[[str], object], texts: Sequence[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        function(text)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    vader = SentimentIntensityAnalyzer()
    plain = Scorer()
    listenwell = Scorer(sentiment_layer=CsSentiment.load())
    results: dict[str, Any] = {
        "benchmark": "sentiment",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }

    folder = DATA / "tweeteval" / "sentiment"
    texts = (folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
    gold = [LABELS[int(x)] for x in (folder / "test_labels.txt").read_text().split()]
    vader_labels = [label_for(plain.vader(t)[0]).value for t in texts]
    ours_labels = [listenwell.score_text(t).label.value for t in texts]
    tweeteval = {"vader": macro(gold, vader_labels), "listenwell": macro(gold, ours_labels)}
    results["tweeteval_test"] = {"texts": len(texts), **tweeteval}
    print(f"TweetEval sentiment test ({len(texts)} tweets):")
    for name in ("vader", "listenwell"):
        row = tweeteval[name]
        print(
            f"  {name:10} macro-recall {row['macro_recall']:.3f}  macro-F1 {row['macro_f1']:.3f}"
            f"  recall neg/neu/pos {row['recall']['negative']:.3f}/"
            f"{row['recall']['neutral']:.3f}/{row['recall']['positive']:.3f}"
        )
    print("  published: VADER 0.570, linear SVM (full train split) 0.629 macro-recall")

    correlations: dict[str, dict[str, float]] = {}
    print("Pearson r with the VADER ground-truth ratings:")
    for path in sorted((DATA / "vader").glob("*_GroundTruth.txt")):
        ratings: list[float] = []
        vader_c: list[float] = []
        ours_c: list[float] = []
        raw = path.read_text(encoding="utf-8-sig", errors="replace")
        for line in raw.splitlines():
            parts = line.split("\t", 2)
            if len(parts) != 3:
                continue
            ratings.append(float(parts[1]))
            scored = listenwell.score_text(parts[2])
            vader_c.append(scored.vader_compound)
            ours_c.append(scored.compound)
        name = path.name.replace("_GroundTruth.txt", "")
        correlations[name] = {
            "texts": len(ratings),
            "vader": round(pearson(vader_c, ratings), 4),
            "listenwell": round(pearson(ours_c, ratings), 4),
        }
        note = " (in the model's training data)" if name in TRAINED_ON else " (held out)"
        row = correlations[name]
        print(f"  {name:28} vader {row['vader']:.3f}  listenwell {row['listenwell']:.3f}{note}")
    results["vader_ground_truth_pearson"] = correlations

    fixture = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    expected = [r["label"] for r in fixture]
    fixture_vader = [label_for(plain.vader(r["text"])[0]).value for r in fixture]
    fixture_ours = [listenwell.score_text(r["text"]).label.value for r in fixture]
    accuracy = {
        "texts": len(fixture),
        "vader": round(sum(map(str.__eq__, expected, fixture_vader)) / len(fixture), 4),
        "listenwell": round(sum(map(str.__eq__, expected, fixture_ours)) / len(fixture), 4),
    }
    results["cs_complaints_accuracy"] = accuracy
    print(
        f"Customer-service fixture ({len(fixture)} texts, {FIXTURE.relative_to(REPO)}): "
        f"accuracy vader {accuracy['vader']:.3f}  listenwell {accuracy['listenwell']:.3f}"
    )

    for split in ("dev", "check"):
        rows = [
            json.loads(line) for line in TWEETS.read_text(encoding="utf-8").splitlines() if line
        ]
        rows = [r for r in rows if r["set"] == split]
        expected = [r["label"] for r in rows]
        by_vader = [label_for(plain.vader(r["text"])[0]).value for r in rows]
        by_ours = [listenwell.score_text(r["text"]).label.value for r in rows]
        figures = {"vader": macro(expected, by_vader), "listenwell": macro(expected, by_ours)}
        for name, labels in (("vader", by_vader), ("listenwell", by_ours)):
            figures[name]["accuracy"] = round(sum(map(str.__eq__, expected, labels)) / len(rows), 4)
        results[f"cs_tweets_{split}"] = {"texts": len(rows), **figures}
        print(
            f"Customer tweets, set {split} ({len(rows)} texts, {TWEETS.relative_to(REPO)}): "
            f"macro-F1 vader {figures['vader']['macro_f1']:.3f}  listenwell "
            f"{figures['listenwell']['macro_f1']:.3f}; accuracy vader "
            f"{figures['vader']['accuracy']:.3f}  listenwell "
            f"{figures['listenwell']['accuracy']:.3f}"
        )

    trained = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    cv = trained["cv"]
    mix = "/".join(f"{m:.2f}" for m in cv["target_mix"])
    results["training_cv"] = cv
    print(
        f"Training CV ({trained['settings']['folds']}-fold, out-of-fold, offsets neg/neu/pos "
        + "/".join(f"{o:+.1f}" for o in trained["class_offsets"])
        + f"; target mix neg/neu/pos {mix}):"
    )
    for name, row in cv["sets"].items():
        print(
            f"  {name:14} ({row['texts']} texts) macro-F1 {row['macro_f1']:.3f}  macro-recall "
            f"{row['macro_recall']:.3f}  macro-F1 in the target mix "
            f"{row['macro_f1_target_mix']:.3f}"
        )
    for name, row in cv["leave_one_set_out"].items():
        print(
            f"  {name:14} offsets tuned on the other two sets (neg/pos "
            f"{row['offsets'][0]:+.1f}/{row['offsets'][1]:+.1f}): macro-F1 in the target mix "
            f"{row['mix_macro_f1_plain']:.3f} without -> {row['mix_macro_f1_offsets']:.3f} with"
        )

    vader_s: list[float] = []
    ours_s: list[float] = []
    for _ in range(args.rounds):
        vader_s.append(best_time(vader.polarity_scores, texts))
        ours_s.append(best_time(listenwell.score_text, texts))
    per_vader = min(vader_s) / len(texts)
    per_ours = min(ours_s) / len(texts)
    results["cost_per_text_us"] = {
        "vaderSentiment": round(per_vader * 1e6, 2),
        "listenwell": round(per_ours * 1e6, 2),
        "ratio": round(per_ours / per_vader, 3),
        "rounds": args.rounds,
    }
    print(
        f"Cost per text: vaderSentiment {per_vader * 1e6:.1f} us, listenwell (VADER + layer) "
        f"{per_ours * 1e6:.1f} us = {per_ours / per_vader:.2f}x"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
