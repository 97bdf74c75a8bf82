"""What a jump of event time costs the worker's pure core: a day of backlog, then N days of gap.

The crisis day (``generate("crisis", seed=7)``, scaled) is fed through :class:`Pipeline` in
batches of 500, as ``bench/core.py`` does; then each brand gets one mention ``N`` days after its
last one (``--via mention``), or the wall-clock watermark advances every brand ``N`` days
(``--via timer``, :meth:`Pipeline.advance`). Printed per N: the CPU time of that one step, the
minutes the engine closed one by one (each evaluates every rule of the brand), and what it
published and stored (alert transitions, customer health, incident updates, their bytes, and the
changelog bytes). A gap should cost what the rules need, not one evaluation per minute of it.

This is the first step of ``bench/pipeline.py``'s live latency phase: the backlog is the crisis
day of 2026-01-05 and the live mentions are stamped with today's time, months later.

Usage: ``.venv/bin/python bench/gap.py [--scale 1.0] [--days 1 30 300] [--via mention|timer]
[--brand NAME]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from core import BATCH, RawFields, WorkerStore, batch_of, make_pipeline, records_of, serialise  # noqa: E402

from streams.engine import Engine  # noqa: E402
from streams.pipeline import RawRecord  # noqa: E402
from streams.records import Mention  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="crisis rate_scale")
    parser.add_argument("--days", type=float, nargs="+", default=[1.0, 30.0, 300.0])
    parser.add_argument("--via", choices=("mention", "timer"), default="mention")
    parser.add_argument("--brand", help="only this brand's mentions (default: every brand)")
    parser.add_argument(
        "--events", type=Path, help="write the gap step's records (one JSON a line) to FILE.N"
    )
    args = parser.parse_args()

    records, _ = records_of(args.scale)
    if args.brand:
        records = [r for r in records if r[3] == args.brand.encode()]
    print(
        f"backlog: {len(records):,} crisis mentions (seed 7, scale {args.scale}), then a gap, "
        f"via {args.via}"
    )
    print(
        f"{'gap (days)':>10} {'CPU s':>8} {'minutes closed':>15} {'alerts':>7} "
        f"{'customers':>10} {'incidents':>10} {'events KB':>10} {'changelog KB':>13}"
    )
    for days in args.days:
        pipeline = make_pipeline()
        store = WorkerStore()
        for start in range(0, len(records), BATCH):
            serialise(pipeline.process(batch_of(records, start), store.stored), store)
        closed = count_closed_minutes(pipeline._engine)
        gap = timedelta(days=days)
        c0 = time.process_time()
        if args.via == "mention":
            result = pipeline.process(after_gap(records, gap), store.stored)
        else:
            latest = max(
                r.engine.max_event_time for r in store.brands.values() if r.engine.max_event_time
            )
            result = pipeline.advance(sorted(store.brands), latest + gap, store.stored)
        _published, events, written = serialise(result, store)
        cpu = time.process_time() - c0
        if args.events is not None:
            Path(f"{args.events}.{days:g}").write_bytes(b"".join(e + b"\n" for e in events))
        print(
            f"{days:>10g} {cpu:>8.2f} {closed[0]:>15,} {len(result.alerts):>7,} "
            f"{len(result.customers):>10,} {len(result.incidents):>10,} "
            f"{sum(map(len, events)) / 1e3:>10,.1f} "
            f"{sum(map(len, written[0] + written[1])) / 1e3:>13,.1f}",
            flush=True,
        )
    return 0


def count_closed_minutes(engine: Engine) -> list[int]:
    """Count the engine's one-by-one minute closes from now on (a one-element list)."""
    count = [0]
    close = engine._close_minute

    def counted(*args: object, **kwargs: object) -> None:
        count[0] += 1
        close(*args, **kwargs)  # type: ignore[arg-type]

    engine._close_minute = counted  # type: ignore[method-assign]
    return count


def after_gap(records: list[RawFields], gap: timedelta) -> list[RawRecord]:
    """One mention per brand, ``gap`` after that brand's last mention, at the next offset."""
    last: dict[str, RawFields] = {}
    for fields in records:
        last[fields[3].decode()] = fields
    batch = []
    for _brand, (topic, partition, _offset, key, value) in sorted(last.items()):
        mention = Mention.model_validate_json(value)
        later = mention.model_copy(
            update={
                "id": f"{mention.id}:after-gap",
                "created_at": mention.created_at + gap,
                "fetched_at": mention.fetched_at + gap,
            }
        )
        next_offset = max(f[2] for f in records if f[1] == partition) + 1
        batch.append(RawRecord(topic, partition, next_offset, key, later.to_json()))
    return batch


if __name__ == "__main__":
    raise SystemExit(main())
