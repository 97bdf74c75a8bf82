"""What a jump of event time costs the worker's pure core: a day of backlog, then N days of gap.

The crisis day (``generate("crisis", seed=7)``, scaled) is fed through :class:`Pipeline` in
batches of 500, as ``bench/core.py`` does; then each brand gets one mention ``N`` days after its
last one (``--via mention``), or the wall-clock watermark advances every brand ``N`` days
(``--via timer``, :meth:`Pipeline.advance`). Printed per N, for the baseline (``before``: the engine
as it was, closing every minute of a silence while the brand has watched customers) and the
engine now, in the same run: the CPU time of that one step, the minutes the engine closed one by
one (each evaluates every rule of the brand), and what it published and stored (alert
transitions, customer health, incident updates, their bytes, and the changelog bytes). A gap
should cost what the rules need, not one evaluation per minute of it; both must publish the same
records (``--events FILE`` writes the engine's now, to compare with another version's).

This is the first step of ``bench/pipeline.py``'s live latency phase: the backlog is the crisis
day of 2026-01-05 and the live mentions are stamped with today's time, months later.

``--then-replay`` then feeds the backlog's day again (a day after the gap, new ids) and compares
everything both engines publish while processing it: what the gap did to the rules' state shows
there.

``--backlog pipeline`` takes ``bench/pipeline.py``'s backlog instead: the first ``--mentions``
(10,000) mentions of the crisis day of seed 11 scaled to hold them, which ends mid-crisis with
share alerts firing (the silence case: a brand whose share alert fires when its mentions stop).
``--only-now`` skips the ``before`` engine. ``--code PATH`` runs the pure core (``streams``,
``connectors`` and the shipped rules) of another checkout, e.g. main's, with this benchmark: run
it alternated with a run without it for an A/B of two versions on the same machine.

Usage: ``.venv/bin/python bench/gap.py [--scale 1.0] [--days 1 30 300] [--via mention|timer]
[--brand NAME] [--then-replay] [--events FILE] [--backlog crisis|pipeline] [--mentions N]
[--only-now] [--code PATH] [--rules FILE]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "gap.json"


def _code_path(argv: list[str]) -> Path:
    """The checkout whose core runs (``--code PATH``; this one by default). Read before the
    imports below: once ``streams`` is imported from it, its submodules come from it too."""
    for i, arg in enumerate(argv):
        if arg == "--code" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if arg.startswith("--code="):
            return Path(arg.split("=", 1)[1]).resolve()
    return REPO


CODE = _code_path(sys.argv)
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(CODE))
# The core's packages from CODE, before bench/core.py puts REPO first on the path.
importlib.import_module("connectors")
importlib.import_module("streams")

from core import (  # noqa: E402
    BATCH,
    RawFields,
    WorkerStore,
    batch_of,
    raw_fields,
    records_of,
    serialise,
)

from connectors.simulate import generate  # noqa: E402
from streams.clock import FakeClock  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pipeline import BatchResult, Pipeline, RawRecord  # noqa: E402
from streams.records import Mention  # noqa: E402
from streams.rules import load_rules  # noqa: E402
from streams.scoring import Scorer  # noqa: E402
from streams.state import BrandState, EngineOutput  # noqa: E402
from streams.windows import MINUTE  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="crisis rate_scale")
    parser.add_argument("--days", type=float, nargs="+", default=[1.0, 30.0, 300.0])
    parser.add_argument("--via", choices=("mention", "timer"), default="mention")
    parser.add_argument("--brand", help="only this brand's mentions (default: every brand)")
    parser.add_argument(
        "--then-replay",
        action="store_true",
        help="after the gap, feed the backlog's day again (a day after the gap) and compare "
        "everything published then too",
    )
    parser.add_argument(
        "--events", type=Path, help="write the gap step's records (one JSON a line) to FILE.N"
    )
    parser.add_argument(
        "--backlog",
        choices=("crisis", "pipeline"),
        default="crisis",
        help="crisis: the whole crisis day of seed 7 at --scale; pipeline: bench/pipeline.py's "
        "backlog (the first --mentions of seed 11's crisis day, cut mid-crisis)",
    )
    parser.add_argument("--mentions", type=int, default=10_000, help="with --backlog pipeline")
    parser.add_argument("--only-now", action="store_true", help="skip the 'before' engine")
    parser.add_argument(
        "--code", type=Path, default=REPO, help="run this checkout's core (default: this one)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"figures (JSON); default {RESULTS}"
    )
    parser.add_argument(
        "--rules", type=Path, help="rule file (default: the core's alert_rules/default.yaml)"
    )
    args = parser.parse_args()

    if args.backlog == "pipeline":
        records, scale = pipeline_records(args.mentions, seed=11)
        what = f"bench/pipeline.py's backlog (seed 11, first {len(records):,}, scale {scale:.3g})"
    else:
        records, _ = records_of(args.scale)
        what = f"crisis mentions (seed 7, scale {args.scale})"
    if args.brand:
        records = [r for r in records if r[3] == args.brand.encode()]
    print(f"core: {CODE} at {_head(CODE)}")
    print(f"backlog: {len(records):,} {what}, then a gap, via {args.via}")
    print(
        f"{'gap (days)':>10} {'engine':>7} {'CPU s':>8} {'minutes closed':>15} {'alerts':>7} "
        f"{'customers':>10} {'incidents':>10} {'incident KB':>12} {'events KB':>10} "
        f"{'changelog KB':>13}"
    )
    figures: list[dict[str, object]] = []
    for days in args.days:
        published: dict[str, list[bytes]] = {}
        engines: tuple[tuple[str, type[Engine]], ...] = (
            ("before", EveryMinuteWhileWatched),
            ("now", Engine),
        )
        for label, engine_class in engines[1:] if args.only_now else engines:
            then = day_again(records, timedelta(days=days + 1)) if args.then_replay else None
            row = gap_step(
                records, engine_class, timedelta(days=days), args.via, then, rules=args.rules
            )
            cpu, closed, result, events, written, afterwards = row
            published[label] = events
            incident_bytes = sum(len(i.to_json()) for i in result.incidents)
            published[f"{label} afterwards"] = afterwards
            figures.append(
                {
                    "gap_days": days,
                    "engine": label,
                    "cpu_s": round(cpu, 3),
                    "minutes_closed": closed,
                    "alerts": len(result.alerts),
                    "customer_health": len(result.customers),
                    "incidents": len(result.incidents),
                    "incident_bytes": incident_bytes,
                    "published_bytes": sum(map(len, events)),
                    "changelog_bytes": sum(map(len, written[0] + written[1])),
                }
            )
            if args.events is not None and engine_class is Engine:
                Path(f"{args.events}.{days:g}").write_bytes(b"".join(e + b"\n" for e in events))
            print(
                f"{days:>10g} {label:>7} {cpu:>8.2f} {closed:>15,} {len(result.alerts):>7,} "
                f"{len(result.customers):>10,} {len(result.incidents):>10,} "
                f"{incident_bytes / 1e3:>12,.1f} {sum(map(len, events)) / 1e3:>10,.1f} "
                f"{sum(map(len, written[0] + written[1])) / 1e3:>13,.1f}",
                flush=True,
            )
        if args.only_now:
            continue
        same = published["before"] == published["now"]
        print(f"{'':>10} the gap's records (alerts, customer health, incidents) identical: {same}")
        row_figures: dict[str, object] = {"gap_days": days, "records_identical": same}
        if args.then_replay:
            later_same = published["before afterwards"] == published["now afterwards"]
            print(
                f"{'':>10} then the day again: {len(published['now afterwards']):,} records, "
                f"identical: {later_same}"
            )
            row_figures["records_after_identical"] = later_same
        figures.append(row_figures)
    args.results.write_text(
        json.dumps(
            {
                "backlog": args.backlog,
                "code": _head(CODE),
                "scale": args.scale,
                "via": args.via,
                "mentions": len(records),
                "rows": figures,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


def _head(path: Path) -> str:
    """The checkout's commit (short), or "?" outside git."""
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


def pipeline_records(count: int, seed: int) -> tuple[list[RawFields], float]:
    """``bench/pipeline.py``'s backlog as raw records' fields (laid out as ``records_of`` does):
    the first ``count`` mentions of the crisis day of ``seed`` scaled to hold them."""
    scale = 1.0
    while True:
        mentions = generate("crisis", seed=seed, rate_scale=scale)
        if len(mentions) >= count:
            break
        scale *= count / max(1, len(mentions)) * 1.05
    return raw_fields(mentions[:count]), scale


class EveryMinuteWhileWatched(Engine):
    """The baseline: the engine as it was before a silence with watched customers was skipped
    (main at e0ef406 closed, and evaluated every rule at, every minute of it)."""

    def _skip_watched_silence(
        self, state: BrandState, start: datetime, resume: datetime, out: EngineOutput
    ) -> None:
        self._close_minute(state, start, out)
        state.closed_until = start + MINUTE


def gap_step(
    records: list[RawFields],
    engine_class: type[Engine],
    gap: timedelta,
    via: str,
    then: list[RawFields] | None = None,
    *,
    rules: Path | None = None,
) -> tuple[float, int, BatchResult, list[bytes], tuple[list[bytes], list[bytes]], list[bytes]]:
    """The backlog, then the gap: CPU seconds and minutes closed one by one by the gap step,
    what it produced, the records it publishes (events) and the changelog payloads it writes;
    and, when ``then`` is given, the records published while processing it after the gap."""
    closed = [0]

    class Counting(engine_class):  # type: ignore[valid-type,misc]
        def _close_minute(self, state: BrandState, minute: datetime, out: EngineOutput) -> None:
            closed[0] += 1
            super()._close_minute(state, minute, out)

    engine = Counting(
        load_rules(rules or CODE / "alert_rules" / "default.yaml"),
        allowed_lateness=timedelta(seconds=120),
    )
    pipeline = Pipeline(Scorer(), engine, clock=FakeClock(datetime(2026, 1, 6, tzinfo=UTC)))
    store = WorkerStore()

    def feed(fields: list[RawFields]) -> list[bytes]:
        """Process ``fields`` in batches; the records published."""
        events: list[bytes] = []
        for start in range(0, len(fields), BATCH):
            events += serialise(pipeline.process(batch_of(fields, start), store.stored), store)[1]
        return events

    feed(records)
    closed[0] = 0
    c0 = time.process_time()
    if via == "mention":
        result = pipeline.process(after_gap(records, gap), store.stored)
    else:
        latest = max(
            r.engine.max_event_time for r in store.brands.values() if r.engine.max_event_time
        )
        result = pipeline.advance(sorted(store.brands), latest + gap, store.stored)
    _published, events, written = serialise(result, store)
    cpu, closes = time.process_time() - c0, closed[0]
    return cpu, closes, result, events, written, feed(then or [])


def day_again(records: list[RawFields], shift: timedelta) -> list[RawFields]:
    """The backlog's mentions again, ``shift`` later, with ids and offsets of their own."""
    return [
        (topic, partition, offset + len(records) + 1, key, moved(value, "again", shift))
        for topic, partition, offset, key, value in records
    ]


def after_gap(records: list[RawFields], gap: timedelta) -> list[RawRecord]:
    """One mention per brand, ``gap`` after that brand's last mention, at the next offset."""
    last: dict[str, RawFields] = {}
    for fields in records:
        last[fields[3].decode()] = fields
    batch = []
    for _brand, (topic, partition, _offset, key, value) in sorted(last.items()):
        next_offset = max(f[2] for f in records if f[1] == partition) + 1
        batch.append(RawRecord(topic, partition, next_offset, key, moved(value, "after-gap", gap)))
    return batch


def moved(value: bytes, suffix: str, shift: timedelta) -> bytes:
    """The mention ``value``, ``shift`` later, with its id followed by ``:suffix``."""
    mention = Mention.model_validate_json(value)
    later = mention.model_copy(
        update={
            "id": f"{mention.id}:{suffix}",
            "created_at": mention.created_at + shift,
            "fetched_at": mention.fetched_at + shift,
        }
    )
    return later.to_json()


if __name__ == "__main__":
    raise SystemExit(main())
