"""Worker restart with a large state: how long until a restarted worker serves again.

Builds the state with the real worker: ``--mentions`` (100,000) synthetic mentions of
``--brands`` (1,000) brands, each mention by a customer of its own (so 100,000 customers), spread
over two hours of event time, go through one worker into its tables and their changelogs. That
worker is stopped; one more mention is produced; a new worker (same app id, same data directory)
is started and the time from its start to that mention being processed is the restart time: the
process starting, Faust recovering every table from its changelog, and the first batch (which
attaches the recovered customers and parts of its brand). Prints the changelog records the
restart read beside the goal of issue 15 (<= 10 s), and writes ``bench/results/restart.json``.

Usage: ``.venv/bin/python bench/restart.py [--brands 1000] [--mentions 100000]
[--bootstrap HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from connectors.producer import MentionProducer  # noqa: E402
from services.demo import child, scrape, total  # noqa: E402
from services.kafka_local import LocalKafka, create_topics, free_port  # noqa: E402
from streams import topics  # noqa: E402
from streams.records import Mention, MentionKind  # noqa: E402

RESULTS = REPO / "bench" / "results" / "restart.json"
WORKER = [sys.executable, "-m", "services.cli", "worker"]
GOAL_S = 10.0
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
    env = {
        **os.environ,
        "LISTENWELL_KAFKA_BOOTSTRAP": bootstrap,
        "LISTENWELL_TOPIC_PREFIX": prefix,
        "LISTENWELL_APP_ID": app_id,
        "LISTENWELL_WORKER_METRICS_PORT": str(port),
        "LISTENWELL_DATA_DIR": str(workdir),
        # Replayed event time: the wall-clock watermark stays off, as for any replay.
        "LISTENWELL_LIVE_HORIZON_S": "0",
    }
    mentions = synthetic(args.mentions, args.brands)
    figures: dict[str, object] = {"brands": args.brands, "mentions": len(mentions)}
    try:
        print(f"building the state: {len(mentions):,} mentions of {args.brands:,} brands …")
        with MentionProducer(bootstrap) as producer:
            for mention in mentions:
                producer.send(mention, topic=raw)
        began = time.perf_counter()
        with child(WORKER, env, workdir / "worker-build.log", cwd=REPO) as builder:
            done = wait_ingested(port, len(mentions), builder, patience_s=1800)
        print(f"  built in {done - began:.1f} s")
        records = changelog_records(bootstrap, app_id)
        figures["changelog_records"] = records
        print("  changelog records: " + ", ".join(f"{k} {v:,}" for k, v in records.items()))

        marker = mentions[0].model_copy(
            update={
                "id": "restart:marker",
                "customer_id": None,
                "created_at": mentions[-1].created_at + timedelta(seconds=1),
                "fetched_at": mentions[-1].created_at + timedelta(seconds=1),
            }
        )
        with MentionProducer(bootstrap) as producer:
            producer.send(marker, topic=raw)
        started = time.perf_counter()
        with child(WORKER, env, workdir / "worker-restart.log", cwd=REPO) as restarted:
            served = wait_ingested(port, 1, restarted, patience_s=600)
    finally:
        if broker is not None:
            broker.stop(wipe=True)
    seconds = served - started
    verdict = "met" if seconds <= GOAL_S else "not met"
    print()
    print(f"{'':46}{'value':>10}")
    print(f"{'brands / customers in state':46}{args.brands:>5,} / {len(mentions):,}")
    print(
        f"{'restart → serving again (s)':46}{seconds:>10.1f}   goal <= {GOAL_S:.0f} s ({verdict})"
    )
    figures.update({"restart_to_serving_s": round(seconds, 2), "goal_s": GOAL_S})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
