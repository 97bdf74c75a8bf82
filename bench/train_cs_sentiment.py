"""Train the customer-service sentiment model (``streams/cs_sentiment_weights.json``).

Training data (never the TweetEval *test* split, which ``bench/sentiment.py`` evaluates on):

- TweetEval sentiment **validation** split (2,000 tweets, negative/neutral/positive), weight
  ``--val-weight`` (2: the only in-domain three-way labels);
- the VADER tweet ratings (4,200 tweets, mean of 10 raters on -4..+4): negative at <= -0.5,
  positive at >= 0.5, neutral between;
- TweetEval **emotion** train/val/test (5,052 tweets) as weak polarity labels: anger and sadness
  negative, joy and optimism positive, weight ``--emotion-weight`` (0.25, the best of 0.25/0.35/0.5
  by CV; they hold no neutral texts, and an emotion is not the same question as a sentiment).

The VADER Amazon, movie and NYT ratings are left out, so ``bench/sentiment.py``'s correlations on
them stay held-out figures.

Model: multinomial logistic regression over :func:`streams.cs_sentiment.features` (VADER scores,
the rules' compound and hits, VADER lexicon valence bins, surface marks, words), trained with
AdaGrad and L2 in pure Python, classes weighted to balance them (the benchmark measures
macro-recall). Model selection is by ``--folds``-fold cross-validation on the TweetEval validation
split (each fold's model also learns from all the other data, which is never scored): the L2
strength (best of ``--l2``). With ``--offsets``, per-class score offsets that maximise the
out-of-fold macro-recall are added to the ``_bias`` weights; they are off by default: they raised
the cross-fitted CV macro-recall (each fold scored with offsets tuned on the other folds) from
0.632 to 0.649 but moved the TweetEval test macro-recall from 0.619 to 0.595 (neutral recall
0.35; measured with emotion weight 0.5), i.e. they fit the validation split's class balance,
not tweets in general. The script prints the cross-fitted figure either way.

Deterministic: fixed seeds shuffle the examples and the folds. Features seen fewer than
``--min-count`` times are dropped, weights are rounded to 4 decimals.

Usage: ``.venv/bin/python bench/train_cs_sentiment.py`` (a minute or two).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams.cs_sentiment import WEIGHTS_PATH, features  # noqa: E402
from streams.scoring import Scorer  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "sentiment-dev"
LABELS = ("negative", "neutral", "positive")

Example = tuple[str, int, float]
"""(text, label 0 negative / 1 neutral / 2 positive, sample weight)."""
Row = tuple[list[int], list[float]]
Scores = tuple[float, float, float]
Weights = tuple[list[float], list[float], list[float]]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def tweeteval_val(weight: float) -> list[Example]:
    """The TweetEval sentiment validation split."""
    folder = DATA / "tweeteval" / "sentiment"
    labels = _lines(folder / "val_labels.txt")
    return [
        (t, int(y), weight) for t, y in zip(_lines(folder / "val_text.txt"), labels, strict=True)
    ]


def auxiliary(emotion_weight: float) -> list[Example]:
    """The VADER tweet ratings (thresholded) and the TweetEval emotion splits (weak polarity)."""
    examples: list[Example] = []
    raw = (DATA / "vader" / "tweets_GroundTruth.txt").read_text(
        encoding="utf-8-sig", errors="replace"
    )
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            mean = float(parts[1])
            examples.append((parts[2], 0 if mean <= -0.5 else 2 if mean >= 0.5 else 1, 1.0))
    if emotion_weight > 0.0:
        folder = DATA / "tweeteval" / "emotion"  # 0 anger, 1 joy, 2 optimism, 3 sadness
        for split in ("train", "val", "test"):
            labels = _lines(folder / f"{split}_labels.txt")
            for text, y in zip(_lines(folder / f"{split}_text.txt"), labels, strict=True):
                examples.append((text, 0 if int(y) in (0, 3) else 2, emotion_weight))
    return examples


def index(
    feats: Sequence[dict[str, float]], vocab: dict[str, int] | None = None, min_count: int = 2
) -> tuple[list[Row], dict[str, int]]:
    """Feature dicts as index/value lists; the vocabulary is built (min_count) when not given."""
    if vocab is None:
        seen = Counter(name for f in feats for name in f)
        vocab = {}
        for name, count in sorted(seen.items()):
            if count >= min_count or name.startswith("_"):
                vocab[name] = len(vocab)
    rows: list[Row] = []
    for f in feats:
        pairs = [(vocab[n], v) for n, v in f.items() if n in vocab]
        rows.append(([i for i, _ in pairs], [v for _, v in pairs]))
    return rows, vocab


def train(
    rows: Sequence[Row],
    labels: Sequence[int],
    sample_weights: Sequence[float],
    size: int,
    *,
    epochs: int,
    rate: float,
    l2: float,
    seed: int,
) -> Weights:
    """AdaGrad on the class-balanced, sample-weighted multinomial log loss with L2."""
    totals = [0.0, 0.0, 0.0]
    for y, sw in zip(labels, sample_weights, strict=True):
        totals[y] += sw
    class_weight = [sum(totals) / (3.0 * t) for t in totals]
    w0, w1, w2 = [0.0] * size, [0.0] * size, [0.0] * size
    g0, g1, g2 = [1e-8] * size, [1e-8] * size, [1e-8] * size
    order = list(range(len(rows)))
    rng = random.Random(seed)
    sqrt, exp = math.sqrt, math.exp
    for _ in range(epochs):
        rng.shuffle(order)
        for k in order:
            idx, val = rows[k]
            y = labels[k]
            s0 = s1 = s2 = 0.0
            for i, v in zip(idx, val, strict=True):
                s0 += w0[i] * v
                s1 += w1[i] * v
                s2 += w2[i] * v
            top = max(s0, s1, s2)
            e0, e1, e2 = exp(s0 - top), exp(s1 - top), exp(s2 - top)
            total = e0 + e1 + e2
            c = class_weight[y] * sample_weights[k]
            d0 = c * (e0 / total - (y == 0))
            d1 = c * (e1 / total - (y == 1))
            d2 = c * (e2 / total - (y == 2))
            for i, v in zip(idx, val, strict=True):
                g = d0 * v + l2 * w0[i]
                g0[i] += g * g
                w0[i] -= rate * g / sqrt(g0[i])
                g = d1 * v + l2 * w1[i]
                g1[i] += g * g
                w1[i] -= rate * g / sqrt(g1[i])
                g = d2 * v + l2 * w2[i]
                g2[i] += g * g
                w2[i] -= rate * g / sqrt(g2[i])
    return w0, w1, w2


def score(weights: Weights, rows: Sequence[Row]) -> list[Scores]:
    """Class scores (before the softmax) of each row."""
    w0, w1, w2 = weights
    out: list[Scores] = []
    for idx, val in rows:
        out.append(
            (
                sum(w0[i] * v for i, v in zip(idx, val, strict=True)),
                sum(w1[i] * v for i, v in zip(idx, val, strict=True)),
                sum(w2[i] * v for i, v in zip(idx, val, strict=True)),
            )
        )
    return out


def predict(scores: Sequence[Scores], offsets: Scores = (0.0, 0.0, 0.0)) -> list[int]:
    """The best class of each row after adding ``offsets`` (ties go to the lower label)."""
    out = []
    for s in scores:
        shifted = [s[c] + offsets[c] for c in range(3)]
        out.append(max(range(3), key=lambda c: (shifted[c], -c)))
    return out


def macro_recall(gold: Sequence[int], predicted: Sequence[int]) -> tuple[float, list[float]]:
    """Macro-averaged recall and the recall of each class."""
    recalls = []
    for c in range(3):
        actual = sum(1 for g in gold if g == c)
        hit = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == c)
        recalls.append(hit / actual if actual else 0.0)
    return sum(recalls) / 3, recalls


def tune_offsets(scores: Sequence[Scores], gold: Sequence[int]) -> Scores:
    """Negative and positive score offsets (neutral's fixed at 0) in [-1.5, 1.5] by 0.1 that
    maximise macro-recall; the smallest total shift wins ties."""
    grid = [x / 10 for x in range(-15, 16)]
    best: tuple[float, float, Scores] = (-1.0, 0.0, (0.0, 0.0, 0.0))
    for b0 in grid:
        for b2 in grid:
            m, _ = macro_recall(gold, predict(scores, (b0, 0.0, b2)))
            key = (round(m, 9), -(abs(b0) + abs(b2)))
            if key > (round(best[0], 9), best[1]):
                best = (m, -(abs(b0) + abs(b2)), (b0, 0.0, b2))
    return best[2]


def fit(
    feats: Sequence[dict[str, float]],
    labels: Sequence[int],
    sample_weights: Sequence[float],
    args: argparse.Namespace,
    l2: float,
) -> tuple[Weights, dict[str, int]]:
    rows, vocab = index(feats, min_count=args.min_count)
    weights = train(
        rows,
        labels,
        sample_weights,
        len(vocab),
        epochs=args.epochs,
        rate=args.rate,
        l2=l2,
        seed=args.seed,
    )
    return weights, vocab


def cross_validate(
    val: Sequence[tuple[dict[str, float], int, float]],
    aux: Sequence[tuple[dict[str, float], int, float]],
    args: argparse.Namespace,
    l2: float,
) -> tuple[list[Scores], list[int]]:
    """Out-of-fold scores of the validation texts and the fold of each."""
    order = list(range(len(val)))
    random.Random(args.seed).shuffle(order)
    fold = [0] * len(val)
    for position, i in enumerate(order):
        fold[i] = position % args.folds
    oof: list[Scores] = [(0.0, 0.0, 0.0)] * len(val)
    for k in range(args.folds):
        train_part = [val[i] for i in range(len(val)) if fold[i] != k] + list(aux)
        weights, vocab = fit(
            [f for f, _, _ in train_part],
            [y for _, y, _ in train_part],
            [w for _, _, w in train_part],
            args,
            l2,
        )
        held = [i for i in range(len(val)) if fold[i] == k]
        rows, _ = index([val[i][0] for i in held], vocab)
        for i, s in zip(held, score(weights, rows), strict=True):
            oof[i] = s
    return oof, fold


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--l2", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--val-weight", type=float, default=2.0)
    parser.add_argument("--emotion-weight", type=float, default=0.25)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--offsets",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="tune per-class score offsets by CV (off by default: they did not transfer)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args()

    scorer = Scorer()
    val = [(features(t, scorer.vader(t)), y, w) for t, y, w in tweeteval_val(args.val_weight)]
    aux = [(features(t, scorer.vader(t)), y, w) for t, y, w in auxiliary(args.emotion_weight)]
    gold = [y for _, y, _ in val]
    print(f"{len(val)} TweetEval val + {len(aux)} other examples; {args.folds}-fold CV on val")

    best: tuple[float, float, list[Scores], list[int]] | None = None
    for l2 in args.l2:
        oof, fold = cross_validate(val, aux, args, l2)
        m, r = macro_recall(gold, predict(oof))
        print(
            f"  l2 {l2:g}: CV macro-recall {m:.4f} "
            f"(recall neg/neu/pos {r[0]:.3f}/{r[1]:.3f}/{r[2]:.3f})"
        )
        if best is None or m > best[0]:
            best = (m, l2, oof, fold)
    assert best is not None
    cv_plain, l2, oof, fold = best

    crossfit = [0] * len(val)
    for k in range(args.folds):
        others = [i for i in range(len(val)) if fold[i] != k]
        offsets_k = tune_offsets([oof[i] for i in others], [gold[i] for i in others])
        for i in range(len(val)):
            if fold[i] == k:
                crossfit[i] = predict([oof[i]], offsets_k)[0]
    cv_offsets, r = macro_recall(gold, crossfit)
    offsets = tune_offsets(oof, gold) if args.offsets else (0.0, 0.0, 0.0)
    print(
        f"  chosen l2 {l2:g}; with CV-tuned class offsets the cross-fitted CV macro-recall would "
        f"be {cv_offsets:.4f} (recall neg/neu/pos {r[0]:.3f}/{r[1]:.3f}/{r[2]:.3f}); offsets "
        + (f"applied: neg/neu/pos {offsets[0]:+.1f}/0/{offsets[2]:+.1f}" if args.offsets else "off")
    )

    everything = [*val, *aux]
    weights, vocab = fit(
        [f for f, _, _ in everything],
        [y for _, y, _ in everything],
        [w for _, _, w in everything],
        args,
        l2,
    )
    bias = vocab["_bias"]
    for k in range(3):
        weights[k][bias] += offsets[k]
    kept = {
        name: [round(weights[k][i], 4) for k in range(3)]
        for name, i in sorted(vocab.items())
        if max(abs(weights[k][i]) for k in range(3)) >= 0.005
    }
    document = {
        "model": "multinomial logistic regression, classes negative/neutral/positive",
        "trained_on": (
            "TweetEval sentiment val split + VADER tweet ratings + TweetEval emotion splits as "
            "weak polarity labels (no TweetEval sentiment test)"
        ),
        "examples": len(everything),
        "settings": {k: v for k, v in vars(args).items() if k != "output"} | {"chosen_l2": l2},
        "class_offsets": list(offsets),
        "cv_macro_recall": {"plain": round(cv_plain, 4), "crossfit_offsets": round(cv_offsets, 4)},
        "weights": kept,
    }
    args.output.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(everything)} examples, {len(kept)} features -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
