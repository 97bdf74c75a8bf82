"""The worker's pure core without Kafka: simulated crisis → ``Pipeline.process`` → outputs.

Feeds the crisis scenario (``generate("crisis", seed=7)``, optionally scaled) as raw records in
batches of 500 through :class:`streams.pipeline.Pipeline`, with an in-memory store, and does per
batch what the worker does besides Kafka I/O: serialise every record it publishes (scored
mentions, alerts, customer health, incidents, dead letters) and the changelog payload of every
brand record and changed customer state. Two store modes:

- ``worker`` (default): like the Faust tables, states stay live objects between batches and only
  their changelog payloads are serialised;
- ``roundtrip``: like ``tests/streams/test_pipeline.py``'s ``Store`` (a worker restarted before
  every batch): each brand record and its customers are read back from their changelog JSON.

Prints, in one run, the core's mentions/s (median of ``--repeat`` runs) beside a bare
``vaderSentiment`` loop over the same texts, the ratio, and a cProfile top 15 of one more run.
``--alerts FILE`` writes every output transition (alerts, customer health, incidents, one line of
JSON each, in order) so two versions of the code can be compared with ``cmp``.

Usage: ``.venv/bin/python bench/core.py [--scale 1.0] [--repeat 3] [--mode worker|roundtrip]
[--alerts FILE] [--record before|after] [--no-profile]``. With ``--record`` the figures go to
``bench/results/core.json`` under that key.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from connectors.simulate import generate  # noqa: E402
from streams.clock import FakeClock  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pipeline import BatchResult, BrandRecord, Pipeline, RawRecord  # noqa: E402
from streams.records import CustomerTier  # noqa: E402
from streams.rules import load_rules  # noqa: E402
from streams.scoring import Scorer  # noqa: E402
from streams.state import CustomerState  # noqa: E402

RESULTS = REPO / "bench" / "results" / "core.json"
BREAKDOWN = {
    "parse and validate raw JSON (Pipeline._parse)": "pipeline._parse",
    "redact and score (Scorer.score)": "scoring.score",
    "windows and rules (Engine.process)": "engine.process",
    "  of which customer re-scoring sweeps (CustomerTracker.sweep)": "customers.sweep",
    "  of which a customer's new mention (CustomerTracker.mention)": "customers.mention",
    "  of which closing minutes (rules, sweeps, baselines)": "engine._close_minute",
    "dedupe-set pruning (Pipeline._prune_seen)": "pipeline._prune_seen",
    "changelog payloads (brand records, customers)": "core.save",
    "pydantic model_dump_json (outputs and changelog)": "main.model_dump_json",
}
BATCH = 500
PARTITIONS = 4


def records_of(scale: float) -> tuple[list[RawRecord], list[str]]:
    """The crisis scenario as raw records (brands spread over partitions, dense offsets)."""
    mentions = generate("crisis", seed=7, rate_scale=scale)
    brands = sorted({m.brand for m in mentions})
    partition = {b: i % PARTITIONS for i, b in enumerate(brands)}
    offsets = [0] * PARTITIONS
    records = []
    for m in mentions:
        p = partition[m.brand]
        records.append(RawRecord("mentions.raw", p, offsets[p], m.brand.encode(), m.to_json()))
        offsets[p] += 1
    return records, [m.text for m in mentions]


class WorkerStore:
    """States kept as live objects (as in the Faust tables); changelog payloads serialised."""

    def __init__(self) -> None:
        self.brands: dict[str, BrandRecord] = {}

    def stored(self, brand: str) -> BrandRecord | None:
        return self.brands.get(brand)

    def brands_in(self, partition: int) -> list[str]:
        return [b for b, r in self.brands.items() if r.partition == partition]

    def save(self, result: BatchResult) -> tuple[int, int]:
        """Changelog bytes written for the batch: (brand records, customer states)."""
        brands = customers = 0
        for changes in result.customer_changes.values():
            for state in changes.upserts.values():
                customers += len(state.model_dump_json().encode())
        for brand, record in result.states.items():
            brands += len(record.to_changelog())
            self.brands[brand] = record
        return brands, customers


class RoundTripStore:
    """Everything read back from its changelog form before each batch (a restarted worker)."""

    def __init__(self) -> None:
        self.brands: dict[str, bytes] = {}
        self.customers: dict[str, dict[str, bytes]] = {}

    def stored(self, brand: str) -> BrandRecord | None:
        if brand not in self.brands:
            return None
        record = BrandRecord.from_changelog(self.brands[brand])
        record.attach_customers(
            {
                c: CustomerState.model_validate_json(v)
                for c, v in self.customers.get(brand, {}).items()
            }
        )
        return record

    def brands_in(self, partition: int) -> list[str]:
        return [b for b, v in self.brands.items() if json.loads(v)["partition"] == partition]

    def save(self, result: BatchResult) -> tuple[int, int]:
        """Changelog bytes written for the batch: (brand records, customer states)."""
        brands = customers = 0
        for brand, changes in result.customer_changes.items():
            kept = self.customers.setdefault(brand, {})
            for c, state in changes.upserts.items():
                kept[c] = state.model_dump_json().encode()
                customers += len(kept[c])
            for c in changes.deletes:
                del kept[c]
        for brand, record in result.states.items():
            self.brands[brand] = record.to_changelog()
            brands += len(self.brands[brand])
        return brands, customers


def make_pipeline() -> Pipeline:
    engine = Engine(
        load_rules(REPO / "alert_rules" / "default.yaml"), allowed_lateness=timedelta(seconds=120)
    )
    return Pipeline(Scorer(), engine, clock=FakeClock(datetime(2026, 1, 6, tzinfo=UTC)))


def run(
    records: list[RawRecord], mode: str, transitions: IO[bytes] | None = None
) -> dict[str, float]:
    """One pass over ``records``; seconds spent in ``process`` and in serialising its outputs."""
    pipeline = make_pipeline()
    store: WorkerStore | RoundTripStore = WorkerStore() if mode == "worker" else RoundTripStore()
    process_s = serialise_s = 0.0
    brand_bytes = customer_bytes = 0
    alerts = 0
    for start in range(0, len(records), BATCH):
        t0 = time.perf_counter()
        result = pipeline.process(records[start : start + BATCH], store.stored, store.brands_in)
        t1 = time.perf_counter()
        published: list[bytes] = [d.to_json() for d in result.dead_letters]
        published += [s.to_json() for s in result.scored]
        events = [a.to_json() for a in result.alerts]
        events += [c.to_json() for c in result.customers]
        events += [i.to_json() for i in result.incidents]
        written = store.save(result)
        brand_bytes += written[0]
        customer_bytes += written[1]
        t2 = time.perf_counter()
        process_s += t1 - t0
        serialise_s += t2 - t1
        alerts += len(result.alerts)
        if transitions is not None:
            for line in events:
                transitions.write(line + b"\n")
            check_watched_index(result)
            # The scored records too, by digest (their scored_at is the injected clock).
            digest = hashlib.sha256(b"".join(published)).hexdigest()
            transitions.write(f"batch {start} scored {digest}\n".encode())
    return {
        "process_s": process_s,
        "serialise_s": serialise_s,
        "changelog_brand_mb": brand_bytes / 1e6,
        "changelog_customer_mb": customer_bytes / 1e6,
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


def bare_vader(texts: list[str]) -> float:
    analyzer = SentimentIntensityAnalyzer()
    began = time.perf_counter()
    for text in texts:
        analyzer.polarity_scores(text)
    return len(texts) / (time.perf_counter() - began)


def profile(fn: Callable[[], object], top: int = 15) -> tuple[str, list[dict[str, object]]]:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    table = [
        {
            "function": f"{Path(f).name}:{line}({name})",
            "tottime_share": round(v[2] / total, 3),
            "cumtime_share": round(v[3] / total, 3),
        }
        for (f, line, name), v in rows
    ]
    by_name: dict[str, float] = {}
    for (f, _, name), v in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{Path(f).stem}.{name}"
        if key in BREAKDOWN.values():
            by_name[key] = by_name.get(key, 0.0) + v[3]
    shares = {label: round(by_name.get(key, 0.0) / total, 3) for label, key in BREAKDOWN.items()}
    out.write("share of the run's time (cumulative, overlapping where nested):\n")
    for label, share in shares.items():
        out.write(f"  {label:58}{share:>6.0%}\n")
    table.append({"breakdown": shares})
    return out.getvalue(), table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=3.0, help="crisis rate_scale (3: ~51,000 mentions)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", choices=("worker", "roundtrip"), default="worker")
    parser.add_argument("--alerts", type=Path, help="write output transitions to this file")
    parser.add_argument("--record", choices=("before", "after"), help="save to core.json")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()

    records, texts = records_of(args.scale)
    print(
        f"{len(records):,} crisis mentions (seed 7, scale {args.scale}), batches of {BATCH}, "
        f"store mode {args.mode}"
    )
    if args.alerts is not None:
        with args.alerts.open("wb") as f:
            run(records, args.mode, f)
        print(f"transitions written to {args.alerts}")
    runs = []
    vaders = []
    for i in range(args.repeat):
        figures = run(records, args.mode)
        vaders.append(bare_vader(texts))
        runs.append(figures)
        with_output = figures["process_s"] + figures["serialise_s"]
        print(
            f"run {i + 1}: process {len(records) / figures['process_s']:,.0f}/s, with "
            f"serialisation {len(records) / with_output:,.0f}/s, "
            f"bare VADER {vaders[-1]:,.0f}/s, {figures['alerts']:.0f} alerts",
            flush=True,
        )
    core = statistics.median(len(records) / r["process_s"] for r in runs)
    total = statistics.median(len(records) / (r["process_s"] + r["serialise_s"]) for r in runs)
    vader = statistics.median(vaders)
    print()
    print(f"{'median of ' + str(args.repeat):40}{'value':>12}")
    print(f"{'core Pipeline.process (mentions/s)':40}{core:>12,.0f}")
    print(f"{'core + output serialisation (mentions/s)':40}{total:>12,.0f}")
    print(f"{'bare vaderSentiment (texts/s)':40}{vader:>12,.0f}")
    print(f"{'ratio core+serialisation / bare VADER':40}{total / vader:>12.2f}")
    print(f"{'changelog: brand records (MB)':40}{runs[0]['changelog_brand_mb']:>12.1f}")
    print(f"{'changelog: customer states (MB)':40}{runs[0]['changelog_customer_mb']:>12.1f}")
    table: list[dict[str, object]] = []
    if not args.no_profile:
        text, table = profile(lambda: run(records, args.mode))
        print()
        print("cProfile (one more run, sorted by own time):")
        print(text)
    if args.record:
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        saved["mentions"] = len(records)
        saved["batch"] = BATCH
        saved[f"{args.record}_{args.mode}"] = {
            "core_process_per_s": round(core),
            "core_with_serialisation_per_s": round(total),
            "bare_vader_texts_per_s": round(vader),
            "ratio_core_over_vader": round(total / vader, 3),
            "changelog_brand_mb": round(runs[0]["changelog_brand_mb"], 2),
            "changelog_customer_mb": round(runs[0]["changelog_customer_mb"], 2),
            "runs": args.repeat,
            "profile_top15_by_own_time": table,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
