"""The worker's pure core without Kafka: simulated crisis → ``Pipeline.process`` → outputs.

Feeds the crisis scenario (``generate("crisis", seed=7)``, optionally scaled) as raw records in
batches of 500 through :class:`streams.pipeline.Pipeline` with the worker's scorer
(``streams.brand_scoring.worker_scorer``: brand phrase overrides and the customer-service layer),
with an in-memory store, and does per
batch what the worker does besides Kafka I/O: serialise every record it publishes (scored
mentions, alerts, customer health, incidents, dead letters) and the changelog payload of every
brand record and changed customer state. Two store modes:

- ``worker`` (default): like the Faust tables, states stay live objects between batches and only
  their changelog payloads are serialised;
- ``roundtrip``: like ``tests/streams/test_pipeline.py``'s ``Store`` (a worker restarted before
  every batch): each brand record and its customers are read back from their changelog JSON.

The baseline is a bare ``vaderSentiment`` loop over the same texts, timed batch by batch between
the core's batches, so load on a shared machine hits both alike: the ratio (core mentions/s over
VADER texts/s) is the figure to compare, the median of ``--repeat`` runs, beside the goal of
issue 15 (``Pipeline.process`` at 1.5x VADER or faster; stretch 3x).

``--profile`` adds a cProfile run: the top 15 functions by own time and a breakdown table of where
the core's time goes (Markdown, with the recorded "before" column when ``core.json`` has one).
``--alerts FILE`` writes every output transition (alerts, customer health, incidents, one line of
JSON each, in order, and a digest of each batch's published bytes) so two versions of the code
can be compared with ``cmp``.

Usage: ``.venv/bin/python bench/core.py [--scale 3.0] [--repeat 3] [--mode worker|roundtrip]
[--alerts FILE] [--record before|after] [--profile] [--gc default|worker]``. With ``--record`` the
figures go to ``bench/results/core.json`` under ``<before|after>_<mode>`` (``_gc_worker`` added with
``--gc worker``).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import inspect
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import cramjam  # noqa: E402
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from connectors.simulate import generate  # noqa: E402
from streams.brand_scoring import worker_scorer  # noqa: E402
from streams.clock import FakeClock  # noqa: E402
from streams.cs_sentiment import CsSentiment  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pipeline import (  # noqa: E402
    BatchResult,
    BrandRecord,
    BucketKey,
    Pipeline,
    RawRecord,
)
from streams.records import CustomerTier, Mention  # noqa: E402
from streams.rules import load_rules  # noqa: E402
from streams.scoring import Scorer  # noqa: E402
from streams.state import CustomerState  # noqa: E402

RESULTS = REPO / "bench" / "results" / "core.json"
GOAL_RATIO = 1.5
STRETCH_RATIO = 3.0
GOAL_CHANGELOG_BYTES = 150
STRETCH_CHANGELOG_BYTES = 50
BEFORE_CHANGELOG_BYTES = 1_842
"""(81.4 MB of brand records + 12.8 MB of customer states) / 51,140 mentions, main at 9ee7687
(its producer did not compress): issue 15's "~1,800 bytes"."""
# Parts of the run as cProfile sees them: label → the function (matched by its code's file, line
# and name, so that ``Pipeline.process``, ``ScoringStage.process`` and ``BrandStage.process``, all
# "process" in pipeline.py, stay apart; cumulative time, nested parts overlap their parent).
BREAKDOWN_LABELS = (
    "Pipeline.process",
    "  scoring stage (ScoringStage.process)",
    "    parse and validate raw JSON (pipeline._parse)",
    "    redact, score and build the record (Scorer.score)",
    "      PII redaction (pii.redact)",
    "      sentiment, empathy, churn (Scorer.score_text)",
    "        customer-service layer (CsSentiment.compound)",
    "  brand stage (BrandStage.process)",
    "    windows and rules (Engine.process)",
    "      count into minute buckets (MinuteBucket.add)",
    "      a customer's new mention (CustomerTracker.mention)",
    "      closing minutes: rules, sweeps, baselines (Engine._close_minute)",
    "        customer re-scoring sweeps (CustomerTracker.sweep)",
    "    seen ids: pruning old chunks (SeenIds.prune)",
    "serialise what the worker publishes and stores",
)


def breakdown_functions() -> dict[str, Callable[..., object]]:
    """The function each breakdown label stands for."""
    from streams import pii, pipeline
    from streams.customers import CustomerTracker
    from streams.dedupe import SeenIds
    from streams.windows import MinuteBucket

    functions: list[Callable[..., object]] = [
        Pipeline.process,
        pipeline.ScoringStage.process,
        pipeline._parse,
        Scorer.score,
        pii.redact,
        Scorer.score_text,
        CsSentiment.compound,
        pipeline.BrandStage.process,
        Engine.process,
        MinuteBucket.add,
        CustomerTracker.mention,
        Engine._close_minute,
        CustomerTracker.sweep,
        SeenIds.prune,
        serialise,
    ]
    return dict(zip(BREAKDOWN_LABELS, functions, strict=True))


BATCH = 500
SCORER = "streams.brand_scoring.worker_scorer (brand phrase overrides, customer-service layer)"
"""What the core scores with (recorded with each run: runs before 7290b12 used a plain Scorer())."""
PARTITIONS = 4


RawFields = tuple[str, int, int, bytes, bytes]


def records_of(scale: float) -> tuple[list[RawFields], list[str]]:
    """The crisis scenario as raw records' fields (brands spread over partitions, dense offsets),
    and their texts.

    Plain tuples: the garbage collector stops tracking them, while 51,140 ``RawRecord`` objects
    held for the whole run would add to every full collection, which a worker (handed one batch at
    a time) does not have.
    """
    mentions = generate("crisis", seed=7, rate_scale=scale)
    return raw_fields(mentions), [m.text for m in mentions]


def raw_fields(mentions: list[Mention]) -> list[RawFields]:
    """``mentions`` as raw records' fields: brands spread over partitions, dense offsets."""
    brands = sorted({m.brand for m in mentions})
    partition = {b: i % PARTITIONS for i, b in enumerate(brands)}
    offsets = [0] * PARTITIONS
    records: list[RawFields] = []
    for m in mentions:
        p = partition[m.brand]
        records.append(("mentions.raw", p, offsets[p], m.brand.encode(), m.to_json()))
        offsets[p] += 1
    return records


def batch_of(records: list[RawFields], start: int) -> list[RawRecord]:
    """The batch starting at ``start``, as the consumer hands it over."""
    return [RawRecord(*fields) for fields in records[start : start + BATCH]]


class WorkerStore:
    """States kept as live objects (as in the Faust tables); changelog payloads serialised."""

    def __init__(self) -> None:
        self.brands: dict[str, BrandRecord] = {}

    def stored(self, brand: str) -> BrandRecord | None:
        return self.brands.get(brand)

    def brands_in(self, partition: int) -> list[str]:
        return [b for b, r in self.brands.items() if r.partition == partition]

    def save(self, result: BatchResult) -> tuple[list[bytes], list[bytes]]:
        """Changelog payloads written for the batch: (brand records and their seen-id chunks,
        customer states)."""
        customers = [
            state.to_json()
            for changes in result.customer_changes.values()
            for state in changes.upserts.values()
        ]
        brands = [v for seen in result.seen_changes.values() for v in seen.written.values()]
        brands += [v for closed in result.bucket_changes.values() for v in closed.written.values()]
        for brand, record in result.states.items():
            brands.append(record.to_changelog())
            self.brands[brand] = record
        return brands, customers


class RoundTripStore:
    """Everything read back from its changelog form before each batch (a restarted worker)."""

    def __init__(self) -> None:
        self.brands: dict[str, bytes] = {}
        self.customers: dict[str, dict[str, bytes]] = {}
        self.seen: dict[str, dict[int, bytes]] = {}
        self.buckets: dict[str, dict[BucketKey, bytes]] = {}

    def stored(self, brand: str) -> BrandRecord | None:
        if brand not in self.brands:
            return None
        record = BrandRecord.from_changelog(self.brands[brand])
        for name, value in self.seen.get(brand, {}).items():
            record.seen_ids.load_chunk(name, value)
        record.attach_closed_buckets(self.buckets.get(brand, {}))
        record.attach_customers(
            {
                c: CustomerState.model_validate_json(v)
                for c, v in self.customers.get(brand, {}).items()
            }
        )
        return record

    def brands_in(self, partition: int) -> list[str]:
        return [b for b, v in self.brands.items() if json.loads(v)["partition"] == partition]

    def save(self, result: BatchResult) -> tuple[list[bytes], list[bytes]]:
        """Changelog payloads written for the batch: (brand records, customer states)."""
        customers = []
        for brand, changes in result.customer_changes.items():
            kept = self.customers.setdefault(brand, {})
            for c, state in changes.upserts.items():
                kept[c] = state.to_json()
                customers.append(kept[c])
            for c in changes.deletes:
                del kept[c]
        brands = []
        for brand, seen in result.seen_changes.items():
            chunks = self.seen.setdefault(brand, {})
            chunks.update(seen.written)
            brands.extend(seen.written.values())
            for name in seen.deleted:
                del chunks[name]
        for brand, closed in result.bucket_changes.items():
            kept = self.buckets.setdefault(brand, {})
            kept.update(closed.written)
            brands.extend(closed.written.values())
            for key in closed.deleted:
                del kept[key]
        for brand, record in result.states.items():
            self.brands[brand] = record.to_changelog()
            brands.append(self.brands[brand])
        return brands, customers


def make_pipeline() -> Pipeline:
    engine = Engine(
        load_rules(REPO / "alert_rules" / "default.yaml"), allowed_lateness=timedelta(seconds=120)
    )
    # The worker's scorer (brand phrase overrides, the customer-service layer), as streams/app.py
    # builds it: until 16f29a9 this bench scored with a plain Scorer(), ~35 µs a mention less.
    scorer = worker_scorer(REPO / "alert_rules" / "default.yaml")
    return Pipeline(scorer, engine, clock=FakeClock(datetime(2026, 1, 6, tzinfo=UTC)))


def serialise(
    result: BatchResult, store: WorkerStore | RoundTripStore
) -> tuple[list[bytes], list[bytes], tuple[list[bytes], list[bytes]]]:
    """What the worker writes for a batch: published records (scored, dead letters), events
    (alerts, customer health, incidents) and the changelog bytes of the states it stores."""
    published = [d.to_json() for d in result.dead_letters]
    published += [s.to_json() for s in result.scored]
    events = [a.to_json() for a in result.alerts]
    events += [c.to_json() for c in result.customers]
    events += [i.to_json() for i in result.incidents]
    return published, events, store.save(result)


def run(
    records: list[RawFields],
    mode: str,
    transitions: IO[bytes] | None = None,
    texts: list[str] | None = None,
) -> dict[str, float]:
    """One pass over ``records``: seconds in ``process``, in serialising its outputs and, when
    ``texts`` (the records' texts) are given, in bare VADER over each batch's texts."""
    pipeline = make_pipeline()
    analyzer = SentimentIntensityAnalyzer()
    store: WorkerStore | RoundTripStore = WorkerStore() if mode == "worker" else RoundTripStore()
    # CPU seconds of this process (time.process_time) are the measure: on a shared machine wall
    # time also counts the waits for a core. Wall seconds are kept for reference.
    cpu = {"process": 0.0, "serialise": 0.0, "vader": 0.0}
    wall = {"process": 0.0, "serialise": 0.0, "vader": 0.0}
    brand_bytes = customer_bytes = compressed_bytes = 0
    alerts = 0
    clocks = (time.process_time, time.perf_counter)
    for start in range(0, len(records), BATCH):
        batch = batch_of(records, start)
        c0, w0 = (clock() for clock in clocks)
        result = pipeline.process(batch, store.stored, store.brands_in)
        c1, w1 = (clock() for clock in clocks)
        published, events, written = serialise(result, store)
        c2, w2 = (clock() for clock in clocks)
        if texts is not None:
            for text in texts[start : start + BATCH]:
                analyzer.polarity_scores(text)
        c3, w3 = (clock() for clock in clocks)
        for part, (c_from, c_to, w_from, w_to) in {
            "process": (c0, c1, w0, w1),
            "serialise": (c1, c2, w1, w2),
            "vader": (c2, c3, w2, w3),
        }.items():
            cpu[part] += c_to - c_from
            wall[part] += w_to - w_from
        brand_bytes += sum(map(len, written[0]))
        customer_bytes += sum(map(len, written[1]))
        # What the broker stores: the worker's producer sends zstd batches (level 3, one per
        # partition).
        compressed_bytes += len(cramjam.zstd.compress(b"".join(written[0] + written[1]), level=3))
        alerts += len(result.alerts)
        if transitions is not None:
            for line in events:
                transitions.write(line + b"\n")
            check_watched_index(result)
            # The scored records and the changelog payloads too, by digest (scored_at is the
            # injected clock).
            digest = hashlib.sha256(b"".join(published)).hexdigest()
            transitions.write(f"batch {start} scored {digest}\n".encode())
            changelog = hashlib.sha256(b"".join(written[0] + written[1])).hexdigest()
            transitions.write(f"batch {start} changelog {changelog}\n".encode())
    return {
        "process_s": cpu["process"],
        "serialise_s": cpu["serialise"],
        "vader_s": cpu["vader"],
        "process_wall_s": wall["process"],
        "serialise_wall_s": wall["serialise"],
        "vader_wall_s": wall["vader"],
        "changelog_brand_mb": brand_bytes / 1e6,
        "changelog_customer_mb": customer_bytes / 1e6,
        "changelog_compressed_mb": compressed_bytes / 1e6,
        "alerts": alerts,
    }


def check_watched_index(result: BatchResult) -> None:
    """The engine's index of watched customers, where built, matches the customers."""
    for record in result.states.values():
        state = record.engine
        built = state.__dict__.get("watched_customers")
        if built is None:
            continue
        actual = {
            c
            for c, cs in state.customers.items()
            if cs.firing or cs.pending or cs.tier is not CustomerTier.HEALTHY
        }
        assert built == actual, f"{state.brand}: index {sorted(built ^ actual)} out of date"


def profile(fn: Callable[[], object], top: int = 15) -> tuple[str, list[dict[str, Any]]]:
    """cProfile of ``fn``: the top functions by own time (text) and the breakdown shares."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    table: list[dict[str, Any]] = [
        {
            "function": f"{Path(f).name}:{line}({name})",
            "tottime_share": round(v[2] / total, 3),
            "cumtime_share": round(v[3] / total, 3),
        }
        for (f, line, name), v in rows
    ]
    # The profiled run's total is the sum of every function's own time; a part's share is its
    # function's cumulative time over that total (so a part is never above 100%).
    cumulative = {(Path(f).resolve(), line, name): v[3] for (f, line, name), v in raw.items()}
    shares: dict[str, float] = {}
    for label, function in breakdown_functions().items():
        code = inspect.unwrap(function).__code__
        place = (Path(code.co_filename).resolve(), code.co_firstlineno, code.co_name)
        shares[label] = round(cumulative.get(place, 0.0) / total, 3)
    table.append({"breakdown": shares})
    return out.getvalue(), table


def _label_text(label: str) -> str:
    return label.strip().split(" (")[0]


def breakdown_markdown(
    shares: dict[str, float], before: dict[str, float] | None, per_mention_us: dict[str, float]
) -> str:
    """The breakdown as a Markdown table: share of the run and µs per mention (after; and the
    recorded before, where there is one), parts indented under the part they belong to."""
    lines = []
    if before is None:
        lines.append("| part of the core run | share | µs per mention |")
        lines.append("|---|---:|---:|")
    else:
        lines.append(
            "| part of the core run | before: share | µs/mention | after: share | µs/mention |"
        )
        lines.append("|---|---:|---:|---:|---:|")
    for label, share in shares.items():
        depth = (len(label) - len(label.lstrip(" "))) // 2
        name = "&nbsp;&nbsp;" * depth + label.strip()
        after = f"{share:.0%} | {share * per_mention_us['after']:.1f}"
        if before is None:
            lines.append(f"| {name} | {after} |")
        else:
            was = before.get(label)
            if was is None:  # recorded under an older label: the same text before its "("
                was = next(
                    (v for k, v in before.items() if _label_text(k) == _label_text(label)), None
                )
            old = "—" if was is None else f"{was:.0%} | {was * per_mention_us['before']:.1f}"
            if was is None:
                old = "— | —"
            lines.append(f"| {name} | {old} | {after} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=3.0, help="crisis rate_scale (3: ~51,000 mentions)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", choices=("worker", "roundtrip"), default="worker")
    parser.add_argument("--alerts", type=Path, help="write output transitions to this file")
    parser.add_argument("--record", choices=("before", "after"), help="save to core.json")
    parser.add_argument("--profile", action="store_true", help="cProfile breakdown table")
    parser.add_argument(
        "--gc",
        choices=("default", "worker"),
        default="default",
        help="garbage collector settings: Python's defaults, or the worker process's "
        "(services.cli.tune_garbage_collector: gc.freeze() at start, threshold 10,000)",
    )
    args = parser.parse_args()
    if args.gc == "worker":
        from services.cli import tune_garbage_collector

        tune_garbage_collector()

    records, texts = records_of(args.scale)
    print(
        f"{len(records):,} crisis mentions (seed 7, scale {args.scale}), batches of {BATCH}, "
        f"store mode {args.mode}, garbage collector {args.gc}; bare VADER timed on each "
        "batch's texts between batches"
    )
    if args.alerts is not None:
        with args.alerts.open("wb") as f:
            run(records, args.mode, f)
        print(f"transitions written to {args.alerts}")
    runs = []
    n = len(records)
    for i in range(max(1, args.repeat)):
        figures = run(records, args.mode, texts=texts)
        runs.append(figures)
        per_mention = {k: figures[f"{k}_s"] / n * 1e6 for k in ("process", "serialise", "vader")}
        print(
            f"run {i + 1}: CPU µs per mention: process {per_mention['process']:.1f}, "
            f"serialisation {per_mention['serialise']:.1f}, bare VADER "
            f"{per_mention['vader']:.1f}; ratio {figures['vader_s'] / figures['process_s']:.2f} "
            f"(wall {figures['vader_wall_s'] / figures['process_wall_s']:.2f}), "
            f"{figures['alerts']:.0f} alerts",
            flush=True,
        )

    def median(key: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(key(r) for r in runs)

    us = {
        part: median(lambda r, part=part: r[f"{part}_s"] / n * 1e6)  # type: ignore[misc]
        for part in ("process", "serialise", "vader")
    }
    ratio = median(lambda r: r["vader_s"] / r["process_s"])
    ratio_total = median(lambda r: r["vader_s"] / (r["process_s"] + r["serialise_s"]))
    ratio_wall = median(lambda r: r["vader_wall_s"] / r["process_wall_s"])
    print()
    heading = f"median of {len(runs)} runs (CPU time)"
    print(f"{heading:44}{'µs/mention':>12}{'per core/s':>12}")
    for label, part in (
        ("core Pipeline.process", "process"),
        ("serialising outputs and changelog", "serialise"),
        ("bare vaderSentiment, same texts", "vader"),
    ):
        print(f"{label:44}{us[part]:>12.1f}{1e6 / us[part]:>12,.0f}")
    verdict = "met" if ratio >= GOAL_RATIO else "not met"
    print(
        f"{'ratio Pipeline.process / bare VADER':44}{ratio:>12.2f}   goal >= {GOAL_RATIO} "
        f"({verdict}), stretch >= {STRETCH_RATIO}"
    )
    print(f"{'ratio with serialisation / bare VADER':44}{ratio_total:>12.2f}")
    print(f"{'ratio Pipeline.process / VADER, wall time':44}{ratio_wall:>12.2f}")
    print(
        f"{'changelog: brand records and seen ids (MB)':44}{runs[0]['changelog_brand_mb']:>12.1f}"
    )
    print(f"{'changelog: customer states (MB)':44}{runs[0]['changelog_customer_mb']:>12.1f}")
    per_mention = (runs[0]["changelog_brand_mb"] + runs[0]["changelog_customer_mb"]) * 1e6 / n
    stored = runs[0]["changelog_compressed_mb"] * 1e6 / n
    print(
        f"{'changelog bytes per mention, payloads':44}{per_mention:>12,.0f}   goal <= "
        f"{GOAL_CHANGELOG_BYTES} ({'met' if per_mention <= GOAL_CHANGELOG_BYTES else 'not met'}), "
        f"stretch <= {STRETCH_CHANGELOG_BYTES} (before: {BEFORE_CHANGELOG_BYTES:,} on main 9ee7687)"
    )
    print(
        f"{'  as zstd batches (what the broker stores)':44}{stored:>12,.0f}   goal <= "
        f"{GOAL_CHANGELOG_BYTES} ({'met' if stored <= GOAL_CHANGELOG_BYTES else 'not met'}), "
        f"stretch <= {STRETCH_CHANGELOG_BYTES} "
        f"({'met' if stored <= STRETCH_CHANGELOG_BYTES else 'not met'})"
    )

    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    table: list[dict[str, Any]] = []
    if args.profile:
        text, table = profile(lambda: run(records, args.mode))
        print()
        print("cProfile (one more run, sorted by own time):")
        print(text)
        before = saved.get(f"before_{args.mode}", {})
        before_shares = None
        per_mention_us = {"after": us["process"] + us["serialise"]}
        for row in before.get("profile_top15_by_own_time", []):
            if "breakdown" in row and "us_process" in before:
                before_shares = row["breakdown"]
                per_mention_us["before"] = before["us_process"] + before["us_serialise"]
        print(
            "Where the time goes (cProfile shares of one run, nested parts indented; µs per "
            "mention: the share of the median CPU µs of process + serialisation"
            + (
                ", before: of the recorded before run's, scored with "
                + before.get("scorer", SCORER)
                if before_shares
                else ""
            )
            + ")"
        )
        print(breakdown_markdown(table[-1]["breakdown"], before_shares, per_mention_us))
    if args.record:
        saved["scenario"] = f"crisis, seed 7, rate_scale {args.scale}"
        saved["mentions"] = n
        saved["batch"] = BATCH
        saved["measure"] = (
            f"median of {len(runs)} runs; CPU time of the process (time.process_time); bare "
            "vaderSentiment over each batch's texts, timed between the core's batches; ratios "
            "are VADER's CPU time over the core's for the same mentions"
        )
        saved["goal_ratio_process_over_vader"] = GOAL_RATIO
        saved["stretch_ratio_process_over_vader"] = STRETCH_RATIO
        suffix = "" if args.gc == "default" else f"_gc_{args.gc}"
        saved[f"{args.record}_{args.mode}{suffix}"] = {
            "us_process": round(us["process"], 2),
            "us_serialise": round(us["serialise"], 2),
            "us_bare_vader": round(us["vader"], 2),
            "ratio_process": round(ratio, 3),
            "ratio_with_serialisation": round(ratio_total, 3),
            "ratio_process_wall_time": round(ratio_wall, 3),
            "changelog_brand_mb": round(runs[0]["changelog_brand_mb"], 2),
            "changelog_customer_mb": round(runs[0]["changelog_customer_mb"], 2),
            "runs": len(runs),
            "scorer": SCORER,
            "profile_top15_by_own_time": table,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
