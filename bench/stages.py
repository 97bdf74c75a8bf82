"""What each stage of the two-stage topology costs per mention, without Kafka.

The crisis scenario (``bench/core.py``'s records: seed 7, ``--scale`` 3 gives 51,140 mentions)
in batches of 500 through :class:`streams.pipeline.ScoringStage`, the scored mentions serialised
as the scoring stage publishes them, decoded as the brand stage reads them
(:func:`streams.pipeline.decode_scored`; baseline: pydantic's ``ScoredMention.from_json`` on the
same bytes), and folded by :class:`streams.pipeline.BrandStage`
(states kept as live objects, as in the worker's tables). CPU seconds of this process per part,
µs per mention, and the one-step :class:`streams.pipeline.Pipeline` on the same records for
reference: the per-partition ceilings of docs/topology.md ("On paper") come from these.

Usage: ``.venv/bin/python bench/stages.py [--scale 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from core import BATCH, batch_of, make_pipeline, records_of  # noqa: E402

from streams.pipeline import BrandRecord, RawRecord, ScoredRecord, decode_scored  # noqa: E402
from streams.records import ERASURE_KEY, ErasureCommand, ScoredMention  # noqa: E402

T = TypeVar("T")


def decode_with_pydantic(records: list[RawRecord]) -> list[ScoredMention]:
    """The brand stage's decode before the msgspec fast path (the baseline, same records)."""
    return [ScoredMention.from_json(r.value or b"") for r in records if r.key != ERASURE_KEY]


def timed(cpu: dict[str, float], part: str, call: Callable[..., T], *args: object) -> T:
    start = time.process_time()
    value = call(*args)
    cpu[part] = cpu.get(part, 0.0) + time.process_time() - start
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=3.0)
    args = parser.parse_args()
    records, _ = records_of(args.scale)
    n = len(records)
    pipeline = make_pipeline()
    scoring, brands = pipeline.scoring, pipeline.brands
    cpu: dict[str, float] = {}
    states: dict[str, BrandRecord] = {}
    offsets: dict[int, int] = {}
    alerts = 0
    for start in range(0, n, BATCH):
        batch = batch_of(records, start)
        result = timed(cpu, "score", scoring.process, batch)

        def encode(items: list[ScoredRecord]) -> list[RawRecord]:
            out = []
            for item in items:
                value = item.value
                key = ERASURE_KEY if isinstance(value, ErasureCommand) else b""
                p = item.partition
                offsets[p] = offsets.get(p, -1) + 1
                out.append(RawRecord("mentions.scored", p, offsets[p], key, value.to_json()))
            return out

        published = timed(cpu, "encode scored", encode, result.scored)
        items, _ = timed(cpu, "decode scored", decode_scored, published)
        timed(cpu, "decode pydantic", decode_with_pydantic, published)
        folded = timed(cpu, "fold", brands.process, items, states.get)
        states.update(folded.states)
        alerts += len(folded.alerts)
    one_step = make_pipeline()
    kept: dict[str, BrandRecord] = {}
    one_alerts = 0
    for start in range(0, n, BATCH):
        batch = batch_of(records, start)
        whole = timed(cpu, "one step", one_step.process, batch, kept.get)
        kept.update(whole.states)
        one_alerts += len(whole.alerts)
    print(f"{n:,} crisis mentions (seed 7, scale {args.scale}), batches of {BATCH}; CPU µs/mention")
    rows = [
        ("scoring stage: decode, validate, redact, score", cpu["score"]),
        ("scoring stage: serialise scored mention", cpu["encode scored"]),
        ("brand stage: decode scored mention", cpu["decode scored"]),
        ("  baseline: the same with pydantic (before msgspec)", cpu["decode pydantic"]),
        ("brand stage: dedupe, windows, rules, customers", cpu["fold"]),
        ("one-step Pipeline.process (reference)", cpu["one step"]),
    ]
    for label, seconds in rows:
        print(f"  {label:52}{seconds / n * 1e6:8.1f}")
    print(f"alerts: two stages {alerts}, one step {one_alerts}")
    return 0 if alerts == one_alerts else 1


if __name__ == "__main__":
    sys.exit(main())
