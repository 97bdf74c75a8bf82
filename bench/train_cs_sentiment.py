"""Train the customer-service sentiment model (``streams/cs_sentiment_weights.json``).

Training data (never the TweetEval *test* split, which ``bench/sentiment.py`` evaluates on):

- TweetEval sentiment **validation** split (2,000 tweets, negative/neutral/positive);
- the VADER tweet ratings (4,200 tweets, mean of 10 raters on -4..+4): negative at <= -0.5,
  positive at >= 0.5, neutral between.

Model: multinomial logistic regression over :func:`streams.cs_sentiment.features` (VADER scores,
the rules' compound and hits, words), trained with AdaGrad and L2 in pure Python,
classes weighted to balance them (the benchmark measures macro-recall). Deterministic: a fixed
seed shuffles the examples. Features seen fewer than ``--min-count`` times are dropped, weights are
rounded to 4 decimals.

Usage: ``.venv/bin/python bench/train_cs_sentiment.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams.cs_sentiment import WEIGHTS_PATH, features  # noqa: E402
from streams.scoring import Scorer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev"


def training_texts() -> list[tuple[str, int]]:
    """(text, label) with label 0 negative, 1 neutral, 2 positive."""
    folder = DATA / "tweeteval" / "sentiment"
    texts = (folder / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (folder / "val_labels.txt").read_text(encoding="utf-8").split()
    examples = [(t, int(label)) for t, label in zip(texts, labels, strict=True)]
    raw = (DATA / "vader" / "tweets_GroundTruth.txt").read_text(
        encoding="utf-8-sig", errors="replace"
    )
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            mean = float(parts[1])
            examples.append((parts[2], 0 if mean <= -0.5 else 2 if mean >= 0.5 else 1))
    return examples


def train(
    rows: list[tuple[dict[str, float], int]], *, epochs: int, rate: float, l2: float, seed: int
) -> dict[str, list[float]]:
    counts = Counter(label for _, label in rows)
    class_weight = {c: len(rows) / (3.0 * n) for c, n in counts.items()}
    weights: dict[str, list[float]] = {}
    grads: dict[str, list[float]] = {}
    order = list(range(len(rows)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            feats, label = rows[index]
            scores = [0.0, 0.0, 0.0]
            for name, value in feats.items():
                w = weights.get(name)
                if w is not None:
                    for k in range(3):
                        scores[k] += w[k] * value
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            total = sum(exps)
            cw = class_weight[label]
            for name, value in feats.items():
                w = weights.setdefault(name, [0.0, 0.0, 0.0])
                g2 = grads.setdefault(name, [1e-8, 1e-8, 1e-8])
                for k in range(3):
                    grad = cw * (exps[k] / total - (1.0 if k == label else 0.0)) * value
                    grad += l2 * w[k]
                    g2[k] += grad * grad
                    w[k] -= rate * grad / math.sqrt(g2[k])
    return weights


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--l2", type=float, default=3e-3)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args()

    scorer = Scorer()
    examples = training_texts()
    rows = [(features(text, scorer.vader(text)), label) for text, label in examples]
    seen = Counter(name for feats, _ in rows for name in feats)
    rows = [
        ({n: v for n, v in feats.items() if seen[n] >= args.min_count}, label)
        for feats, label in rows
    ]
    weights = train(rows, epochs=args.epochs, rate=args.rate, l2=args.l2, seed=args.seed)
    kept = {
        name: [round(x, 4) for x in w]
        for name, w in sorted(weights.items())
        if max(abs(x) for x in w) >= 0.005
    }
    document = {
        "model": "multinomial logistic regression, classes negative/neutral/positive",
        "trained_on": "TweetEval sentiment val split + VADER tweet ratings (no TweetEval test)",
        "examples": len(rows),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "weights": kept,
    }
    args.output.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(rows)} examples, {len(kept)} features -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
