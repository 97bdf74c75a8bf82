"""Worker restart with a large state: how long until a restarted worker serves again.

Builds the state with the real worker: ``--mentions`` (100,000) synthetic mentions of
``--brands`` (1,000) brands, each mention by a customer of its own (so 100,000 customers), spread
over two hours of event time, go through one worker (RocksDB table store) into its tables and
their changelogs. That worker is stopped, and the restart is measured three times, each time for a
new mention produced just before: the time from a new worker's start to that mention being
processed (the process starting, Faust recovering the tables, the first batch attaching the
recovered customers and parts of its brand). The three restarts, in this order:

- ``rocksdb store, same data dir``: the builder's disk; recovery reads only the changelog written
  after the offsets its RocksDB databases hold;
- ``memory store (before; baseline)``: what every start read before, the whole changelogs;
- ``rocksdb store, new (empty) data dir``: a worker on a new machine or disk, the whole changelogs
  too (less once the broker's log cleaner has compacted them; not within this run).

Prints each beside the goal of issue 15 (<= 10 s) with the changelog records it had to read, and
writes ``bench/results/restart.json``.

Usage: ``.venv/bin/python bench/restart.py [--brands 1000] [--mentions 100000]
[--bootstrap HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from connectors.producer import MentionProducer  # noqa: E402
from services.demo import child, scrape, total, worker_env  # noqa: E402
from services.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams import topics  # noqa: E402
from streams.records import Mention, MentionKind  # noqa: E402

RESULTS = REPO / "bench" / "results" / "restart.json"
WORKER = [sys.executable, "-m", "services.cli", "worker"]
GOAL_S = 10.0
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps its changelog offset
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TEXTS = (
    "Waited two hours on hold, nobody answers. Really disappointed.",
    "Great service today, thanks for sorting out my order so quickly!",
    "The app keeps crashing when I try to pay my bill.",
    "Average experience, nothing special but it works.",
    "Still no refund after three weeks. I'm thinking of switching.",
)


def synthetic(count: int, brands: int) -> list[Mention]:
    """``count`` mentions of ``brands`` brands over two hours, one customer each."""
    step = 7200.0 / count
    return [
        Mention(
            id=f"restart:{i}",
            source="restart",
            kind=MentionKind.REVIEW,
            brand=f"brand-{i % brands:04d}",
            text=TEXTS[i % len(TEXTS)],
            author=f"author-{i}",
            customer_id=f"cust-{i}",
            created_at=T0 + timedelta(seconds=i * step),
            fetched_at=T0 + timedelta(seconds=i * step),
            rating=1 + i % 5,
        )
        for i in range(count)
    ]


def wait_ingested(
    port: int, count: float, process: subprocess.Popen[str], patience_s: float
) -> float:
    """Poll the worker's metrics until it has ingested ``count``; returns that moment."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}")
        try:
            if total(scrape(port), "listenwell_mentions_ingested_total") >= count:
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"worker did not ingest {count:.0f} mentions in {patience_s:.0f} s")


def changelog_records(bootstrap: str, app_id: str) -> dict[str, int]:
    """Records (end offsets summed over partitions) of each of the app's changelog topics."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        counts = {}
        for topic in sorted(consumer.topics()):
            if topic.startswith(app_id) and topic.endswith("-changelog"):
                parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
                counts[topic[len(app_id) + 1 :]] = sum(consumer.end_offsets(parts).values())
        return counts
    finally:
        consumer.close()


def stored_offsets(data_dir: Path) -> dict[str, int]:
    """Changelog offset each local RocksDB database holds (table-partition name → offset), read
    from ``data_dir`` while no worker runs; empty for a memory-store data directory."""
    import rocksdict

    found = {}
    for path in sorted(data_dir.glob("faust/**/tables/*.db")):
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        try:
            offset = db.get(OFFSET_KEY)
        finally:
            db.close()
        if offset is not None:
            found[path.stem] = int(offset)
    return found


def changelog_ends(bootstrap: str, app_id: str) -> dict[str, int]:
    """End offset of each changelog partition, named like the local databases (``table-N``)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = {}
        for topic in sorted(consumer.topics()):
            if topic.startswith(app_id) and topic.endswith("-changelog"):
                table = topic[len(app_id) + 1 : -len("-changelog")]
                parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
                for tp, end in consumer.end_offsets(parts).items():
                    ends[f"{table}-{tp.partition}"] = end
        return ends
    finally:
        consumer.close()


def to_read(ends: dict[str, int], stored: dict[str, int]) -> int:
    """Changelog records a worker starting from ``stored`` offsets must read (all without)."""
    return sum(end - stored.get(name, 0) for name, end in ends.items())


def restart(
    bootstrap: str, raw: str, env: dict[str, str], port: int, marker: Mention, log: Path
) -> float:
    """Produce ``marker``, start a worker with ``env``: seconds from its start to serving it."""
    with MentionProducer(bootstrap) as producer:
        producer.send(marker, topic=raw)
    started = time.perf_counter()
    with child(WORKER, env, log, cwd=REPO) as restarted:
        served = wait_ingested(port, 1, restarted, patience_s=600)
    return served - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=1_000)
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = LocalKafka(free_port())
        broker.start()
        bootstrap = broker.bootstrap
    prefix = f"restart-{int(time.time())}."
    app_id = f"listenwell-{prefix.rstrip('.')}"
    create_topics(bootstrap, prefix)
    raw = topics.topic_name(topics.MENTIONS_RAW, prefix)
    workdir = REPO / ".listenwell" / "bench" / prefix.rstrip(".")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = worker_env(
        bootstrap,
        prefix,
        metrics_port=port,
        data_dir=workdir / "disk",
        app_id=app_id,
        LISTENWELL_TABLE_STORE="rocksdb",
        # Replayed event time: the wall-clock watermark stays off, as for any replay.
        LISTENWELL_LIVE_HORIZON_S="0",
    )
    mentions = synthetic(args.mentions, args.brands)
    figures: dict[str, object] = {"brands": args.brands, "mentions": len(mentions)}

    def marker(n: int) -> Mention:
        moment = mentions[-1].created_at + timedelta(seconds=n)
        update = {"id": f"restart:marker-{n}", "customer_id": None}
        return mentions[0].model_copy(update={**update, "created_at": moment, "fetched_at": moment})

    cases = (
        # name, what it is, store, data dir
        ("same_disk", "rocksdb store, same data dir", "rocksdb", workdir / "disk"),
        ("memory", "memory store (before; baseline)", "memory", workdir / "memory"),
        ("new_disk", "rocksdb store, new (empty) data dir", "rocksdb", workdir / "new-disk"),
    )
    seconds: dict[str, float] = {}
    read: dict[str, int] = {}
    try:
        print(f"building the state: {len(mentions):,} mentions of {args.brands:,} brands …")
        with MentionProducer(bootstrap) as producer:
            for mention in mentions:
                producer.send(mention, topic=raw)
        began = time.perf_counter()
        with child(WORKER, env, workdir / "worker-build.log", cwd=REPO) as builder:
            done = wait_ingested(port, len(mentions), builder, patience_s=1800)
        print(f"  built in {done - began:.1f} s (rocksdb store)")
        records = changelog_records(bootstrap, app_id)
        figures["changelog_records"] = records
        print("  changelog records: " + ", ".join(f"{k} {v:,}" for k, v in records.items()))
        for n, (name, what, store, data_dir) in enumerate(cases, start=1):
            read[name] = to_read(changelog_ends(bootstrap, app_id), stored_offsets(data_dir))
            case_env = {
                **env,
                "LISTENWELL_TABLE_STORE": store,
                "LISTENWELL_DATA_DIR": str(data_dir),
            }
            log = workdir / f"worker-restart-{name}.log"
            seconds[name] = restart(bootstrap, raw, case_env, port, marker(n), log)
            print(f"  {what}: {seconds[name]:.1f} s, {read[name]:,} changelog records to read")
    finally:
        if broker is not None:
            broker.stop(wipe=True)
    print()
    print(f"{'restart → serving again':46}{'seconds':>10}{'records read':>14}")
    print(f"{'brands / customers in state':46}{args.brands:>5,} / {len(mentions):,}")
    for name, what, _store, _dir in cases:
        verdict = "met" if seconds[name] <= GOAL_S else "not met"
        print(
            f"{what:46}{seconds[name]:>10.1f}{read[name]:>14,}   goal <= {GOAL_S:.0f} s ({verdict})"
        )
    figures.update(
        {
            "restart_to_serving_s": {name: round(value, 2) for name, value in seconds.items()},
            "changelog_records_to_read": read,
            "goal_s": GOAL_S,
            "command": "bench/restart.py " + " ".join(sys.argv[1:]),
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
