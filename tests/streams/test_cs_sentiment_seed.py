"""The customer-service layer gives the same bits whatever the process's hash seed.

A ``set``'s iteration order depends on ``PYTHONHASHSEED``, and a float sum taken in another order
can change in its last bit: the layer once summed its words' weights over ``set(toks)``, and under
two seeds most development texts got probabilities differing in their last bits. Two interpreters
with different seeds score the same texts (the crisis scenario, every development sentiment text
when present, and texts dense in service-failure words, whose valences are made order-sensitive:
the real ones are multiples of 0.5, exact in any order) and must print the same ``float.hex`` of
every verdict, of the worker's ``score_text`` and of the training features.

Run as a module (``python -m tests.streams.test_cs_sentiment_seed``), it prints those lines.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path

import streams.cs_sentiment
from bench.scoring import DATA, RULES, load_texts, verdict_bits
from connectors.simulate import generate
from streams.brand_scoring import worker_scorer
from streams.cs_sentiment import SERVICE_FAILURES, CsSentiment, features

REPO = Path(__file__).resolve().parents[2]
SEEDS = ("1", "2")


def _failure_texts() -> list[str]:
    """Texts holding several service-failure words each (in varying order)."""
    rng = random.Random(15)
    words = sorted(SERVICE_FAILURES)
    return [" ".join(rng.sample(words, rng.randint(2, 8))) for _ in range(2000)]


def _lines() -> list[str]:
    """One line per text: the layer's verdict, the worker's scores and the training features,
    every float as its exact bits."""
    texts = [mention.text for mention in generate("crisis", seed=7)]
    if DATA.is_dir():
        texts += load_texts()
    layer = CsSentiment.load()
    worker = worker_scorer(RULES)
    lines: list[str] = []
    for text in texts:
        vader = worker.vader(text)
        score = worker.score_text(text)
        feats = [(name, value.hex()) for name, value in features(text, vader).items()]
        verdict = verdict_bits(layer.verdict(text, vader))
        lines.append(repr((verdict, score.compound.hex(), feats)))
    # order-sensitive service-failure valences (read by the rules at call time)
    streams.cs_sentiment.SERVICE_FAILURES = {
        word: -math.sqrt(i + 2) / 3 for i, word in enumerate(SERVICE_FAILURES)
    }
    for text in _failure_texts():
        lines.append(repr(verdict_bits(layer.verdict(text, (0.3, 0.2, 0.8, 0.0)))))
    return lines


def _run(seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-m", "tests.streams.test_cs_sentiment_seed"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_same_bits_under_two_hash_seeds() -> None:
    first, second = (_run(seed) for seed in SEEDS)
    assert len(first) == len(second) > 19_000
    differing = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
    assert differing == [], f"{len(differing)} texts differ, first: {first[differing[0]][:400]}"


if __name__ == "__main__":
    sys.stdout.write("".join(line + "\n" for line in _lines()))
