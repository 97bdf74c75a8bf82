"""Train the customer-service sentiment model (``streams/cs_sentiment_weights.json``).

Training data (never the TweetEval *test* split, which ``bench/sentiment.py`` evaluates on):

- TweetEval sentiment **validation** split (2,000 tweets, negative/neutral/positive), weight
  ``--val-weight`` (2: the only in-domain three-way labels);
- the VADER tweet ratings (4,200 tweets, mean of 10 raters on -4..+4) and the VADER **Amazon**
  review-snippet ratings (3,708; product complaints: returns, broken parts, tech support), both
  graded labels cut into three: negative at <= -0.5, positive at >= 0.5, neutral between;
- TweetEval **emotion** train/val/test (5,052 tweets) as weak polarity labels: anger and sadness
  negative, joy and optimism positive, weight ``--emotion-weight`` (0.25).

The VADER movie and NYT ratings are left out, so ``bench/sentiment.py``'s correlations on them
stay held-out figures.

Model: multinomial logistic regression over :func:`streams.cs_sentiment.features` (VADER scores,
the rules' compound and hits, VADER lexicon valence bins, surface marks, negation/contrast/question
features, words and negated words), trained with AdaGrad and L2 in pure Python, classes weighted to
balance them. Cross-validation: ``--folds``-fold on each of the three three-way-labelled sets
(TweetEval val, VADER tweets, Amazon), each fold's model learning from all the other data; the L2
strength (best of ``--l2``) maximises the mean out-of-fold macro-F1.

Class offsets (the prior). Customer tweets to companies are mostly complaints, then questions,
with few thank-yous; TweetEval is mostly neutral. Per-class score offsets are chosen on the
out-of-fold scores for the macro-F1 the three sets would have if their classes came in the
proportions ``--target-mix`` (negative/neutral/positive, default 0.5/0.3/0.2: "mostly negative,
then neutral, positive fewest", a stated assumption, not a figure fitted to any test set); each
set's examples are re-weighted to that mix. The script prints the leave-one-set-out figure (offsets
tuned on two sets, scored on the third). ``--no-offsets`` keeps the balanced prior. Last session's
offsets, tuned on the TweetEval val split's own mix (41 % positive), did not transfer: the mix,
not the offsets, was the problem.

Deterministic: fixed seeds shuffle the examples and the folds. Features seen fewer than
``--min-count`` times are dropped, weights are rounded to 4 decimals.

Usage: ``.venv/bin/python bench/train_cs_sentiment.py`` (pure Python, a few minutes).
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
CV_SETS = ("tweeteval_val", "vader_tweets", "vader_amazon")

Example = tuple[str, int, float]
"""(text, label 0 negative / 1 neutral / 2 positive, sample weight)."""
Row = tuple[list[int], list[float]]
Scores = tuple[float, float, float]
Weights = tuple[list[float], list[float], list[float]]
Featured = tuple[dict[str, float], int, float]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def three_way(rating: float) -> int:
    """A -4..+4 mean rating as a label: negative at <= -0.5, positive at >= 0.5."""
    return 0 if rating <= -0.5 else 2 if rating >= 0.5 else 1


def tweeteval_val(weight: float) -> list[Example]:
    """The TweetEval sentiment validation split."""
    folder = DATA / "tweeteval" / "sentiment"
    labels = _lines(folder / "val_labels.txt")
    return [
        (t, int(y), weight) for t, y in zip(_lines(folder / "val_text.txt"), labels, strict=True)
    ]


def vader_rated(name: str) -> list[Example]:
    """One VADER ground-truth file (``tweets``, ``amazonReviewSnippets``, ...), cut three ways."""
    raw = (DATA / "vader" / f"{name}_GroundTruth.txt").read_text(
        encoding="utf-8-sig", errors="replace"
    )
    examples: list[Example] = []
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            examples.append((parts[2], three_way(float(parts[1])), 1.0))
    return examples


def emotion(weight: float) -> list[Example]:
    """The TweetEval emotion splits as weak polarity labels."""
    examples: list[Example] = []
    folder = DATA / "tweeteval" / "emotion"  # 0 anger, 1 joy, 2 optimism, 3 sadness
    for split in ("train", "val", "test"):
        labels = _lines(folder / f"{split}_labels.txt")
        for text, y in zip(_lines(folder / f"{split}_text.txt"), labels, strict=True):
            examples.append((text, 0 if int(y) in (0, 3) else 2, weight))
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


def macro(
    gold: Sequence[int], predicted: Sequence[int], mix: Sequence[float] | None = None
) -> tuple[float, float, list[float]]:
    """Macro-F1, macro-recall and per-class recall; with ``mix``, each example is weighted so that
    the classes come in those proportions (the figures the same texts would give in that mix)."""
    counts = [sum(1 for g in gold if g == c) for c in range(3)]
    weight = [(mix[c] / counts[c] if counts[c] else 0.0) if mix else 1.0 for c in range(3)]
    tp, fp, fn = [0.0] * 3, [0.0] * 3, [0.0] * 3
    for g, p in zip(gold, predicted, strict=True):
        w = weight[g]
        if g == p:
            tp[g] += w
        else:
            fn[g] += w
            fp[p] += w
    f1 = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) if tp[c] else 0.0 for c in range(3)]
    recall = [tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else 0.0 for c in range(3)]
    return sum(f1) / 3, sum(recall) / 3, recall


def tune_offsets(
    sets: Sequence[tuple[Sequence[Scores], Sequence[int]]], mix: Sequence[float]
) -> tuple[Scores, float]:
    """Negative and positive score offsets (neutral's fixed at 0) in [-1.5, 1.5] by 0.1 that
    maximise the mean over ``sets`` of the macro-F1 in class mix ``mix``; the smallest total
    shift wins ties. Returns the offsets and that mean."""
    grid = [x / 10 for x in range(-15, 16)]
    best: tuple[float, float, Scores] = (-1.0, 0.0, (0.0, 0.0, 0.0))
    for b0 in grid:
        for b2 in grid:
            offsets = (b0, 0.0, b2)
            m = sum(macro(g, predict(s, offsets), mix)[0] for s, g in sets) / len(sets)
            key = (round(m, 9), -(abs(b0) + abs(b2)))
            if key > (round(best[0], 9), best[1]):
                best = (m, key[1], offsets)
    return best[2], best[0]


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
    named: dict[str, list[Featured]],
    held_sets: Sequence[str],
    args: argparse.Namespace,
    l2: float,
) -> dict[str, list[Scores]]:
    """Out-of-fold scores of each set in ``held_sets`` (``--folds`` folds of that set held out in
    turn, the model learning from everything else)."""
    out: dict[str, list[Scores]] = {}
    for held in held_sets:
        examples = named[held]
        order = list(range(len(examples)))
        random.Random(args.seed).shuffle(order)
        fold = [0] * len(examples)
        for position, i in enumerate(order):
            fold[i] = position % args.folds
        oof: list[Scores] = [(0.0, 0.0, 0.0)] * len(examples)
        others = [e for name, part in named.items() if name != held for e in part]
        for k in range(args.folds):
            train_part = [examples[i] for i in range(len(examples)) if fold[i] != k] + others
            weights, vocab = fit(
                [f for f, _, _ in train_part],
                [y for _, y, _ in train_part],
                [w for _, _, w in train_part],
                args,
                l2,
            )
            held_ids = [i for i in range(len(examples)) if fold[i] == k]
            rows, _ = index([examples[i][0] for i in held_ids], vocab)
            for i, s in zip(held_ids, score(weights, rows), strict=True):
                oof[i] = s
        out[held] = oof
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--l2", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--val-weight", type=float, default=2.0)
    parser.add_argument("--emotion-weight", type=float, default=0.25)
    parser.add_argument("--amazon-weight", type=float, default=1.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--target-mix",
        type=float,
        nargs=3,
        default=[0.5, 0.3, 0.2],
        metavar=("NEG", "NEU", "POS"),
        help="class mix the offsets are tuned for (default: mostly complaints)",
    )
    parser.add_argument(
        "--offsets",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tune per-class score offsets for --target-mix by CV (default on)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args()
    total = sum(args.target_mix)
    mix = [m / total for m in args.target_mix]

    scorer = Scorer()

    def featured(examples: list[Example]) -> list[Featured]:
        return [(features(t, scorer.vader(t)), y, w) for t, y, w in examples]

    amazon = [(t, y, args.amazon_weight) for t, y, _ in vader_rated("amazonReviewSnippets")]
    named: dict[str, list[Featured]] = {
        "tweeteval_val": featured(tweeteval_val(args.val_weight)),
        "vader_tweets": featured(vader_rated("tweets")),
        "vader_amazon": featured(amazon),
        "emotion": featured(emotion(args.emotion_weight)) if args.emotion_weight > 0 else [],
    }
    gold = {name: [y for _, y, _ in named[name]] for name in CV_SETS}
    print(
        ", ".join(f"{len(v)} {k}" for k, v in named.items())
        + f"; {args.folds}-fold CV on each of {', '.join(CV_SETS)}"
    )

    def line(name: str, oof: Sequence[Scores], offsets: Scores) -> str:
        f1, rec, r = macro(gold[name], predict(oof, offsets))
        f1_mix, _, _ = macro(gold[name], predict(oof, offsets), mix)
        return (
            f"{name:14} macro-F1 {f1:.4f} macro-recall {rec:.4f} (recall neg/neu/pos "
            f"{r[0]:.3f}/{r[1]:.3f}/{r[2]:.3f}); macro-F1 in the target mix {f1_mix:.4f}"
        )

    best: tuple[float, float, dict[str, list[Scores]]] | None = None
    for l2 in args.l2:
        oofs = cross_validate(named, CV_SETS, args, l2)
        mean_f1 = sum(macro(gold[n], predict(oofs[n]))[0] for n in CV_SETS) / len(CV_SETS)
        print(f"  l2 {l2:g}: mean CV macro-F1 {mean_f1:.4f}")
        for name in CV_SETS:
            print("    " + line(name, oofs[name], (0.0, 0.0, 0.0)))
        if best is None or mean_f1 > best[0]:
            best = (mean_f1, l2, oofs)
    assert best is not None
    _, l2, oofs = best
    mix_label = "/".join(f"{m:.2f}" for m in mix)
    cv: dict[str, object] = {"target_mix": mix, "l2": l2, "sets": {}, "leave_one_set_out": {}}
    offsets: Scores = (0.0, 0.0, 0.0)
    if args.offsets:
        print(f"  class offsets for the target mix {mix_label}, leave one set out:")
        for held in CV_SETS:
            rest = [(oofs[n], gold[n]) for n in CV_SETS if n != held]
            tuned, _ = tune_offsets(rest, mix)
            plain_mix = macro(gold[held], predict(oofs[held]), mix)[0]
            with_mix = macro(gold[held], predict(oofs[held], tuned), mix)[0]
            print(
                f"    {held:14} offsets neg/pos {tuned[0]:+.1f}/{tuned[2]:+.1f} from the other "
                f"two: macro-F1 in the mix {plain_mix:.4f} -> {with_mix:.4f}"
            )
            cv["leave_one_set_out"][held] = {  # type: ignore[index]
                "offsets": [tuned[0], tuned[2]],
                "mix_macro_f1_plain": round(plain_mix, 4),
                "mix_macro_f1_offsets": round(with_mix, 4),
            }
        offsets, _ = tune_offsets([(oofs[n], gold[n]) for n in CV_SETS], mix)
        print(f"  offsets applied (all three sets): neg {offsets[0]:+.1f}, pos {offsets[2]:+.1f}")
    print(f"  chosen l2 {l2:g}; out-of-fold figures with the applied offsets:")
    for name in CV_SETS:
        print("    " + line(name, oofs[name], offsets))
        f1, rec, _ = macro(gold[name], predict(oofs[name], offsets))
        f1_mix = macro(gold[name], predict(oofs[name], offsets), mix)[0]
        cv["sets"][name] = {  # type: ignore[index]
            "texts": len(gold[name]),
            "macro_f1": round(f1, 4),
            "macro_recall": round(rec, 4),
            "macro_f1_target_mix": round(f1_mix, 4),
        }

    everything = [e for part in named.values() for e in part]
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
            "TweetEval sentiment val split + VADER tweet and Amazon ratings + TweetEval emotion "
            "splits as weak polarity labels (no TweetEval sentiment test, no VADER movie/NYT)"
        ),
        "examples": len(everything),
        "settings": {k: v for k, v in vars(args).items() if k != "output"} | {"chosen_l2": l2},
        "class_offsets": list(offsets),
        "cv": cv,
        "weights": kept,
    }
    args.output.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(everything)} examples, {len(kept)} features -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
