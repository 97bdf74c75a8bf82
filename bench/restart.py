"""Worker restart with a large state: how long until a restarted worker serves again.

Builds the state with the real worker: ``--mentions`` (100,000) synthetic mentions of
``--brands`` (1,000) brands, each mention by a customer of its own (so 100,000 customers), spread
over two hours of event time, go through one worker (RocksDB table store) into its tables and
their changelogs, on a broker this bench starts. That worker is stopped, and each restart is
measured for a new mention produced just before: the time from a new worker's start to that
mention being processed (the process starting, the tables recovered, the first batch attaching the
recovered customers and parts of its brand). The restarts, in this order (``--cases``):

- ``same_disk``, ``rocksdb store, same data dir``: the builder's disk; recovery reads only the
  changelog written after the offsets its RocksDB databases hold;
- ``memory``, ``memory store (before; baseline)``: what every start read before, the whole
  changelogs;
- ``new_disk``, ``rocksdb store, new (empty) data dir``: a worker on a new machine or disk, the
  whole changelogs too, as written minutes ago (nothing compacted yet).

Then (``--compacted-runs`` N, default 1) the broker's log cleaner compacts the changelogs, as it
has in a deployment running for longer than the changelogs' segment time (10 min): their segment
settings are made small for the moment (``COMPACT_NOW``), a tombstone of an unused key rolls each
partition's active segment, and the bench waits for the cleaner's checkpoint to pass it and counts
the records left by reading them. ``compacted, new (empty) data dir`` is then a worker on a new
disk in a long-running deployment, measured N times; with ``--baseline-repo`` (a checkout with its
``.venv``, e.g. ``/work/main``) that checkout's worker restarts too, alternated with this one (and
once on the uncompacted new disk), for an A/B in the same run. ``--profile DIR`` has py-spy record
each restarted worker (collapsed stacks).

Prints each beside the goal of issue 15 (<= 10 s) with the changelog records it had to read, and
writes ``bench/results/restart.json``.

Usage: ``.venv/bin/python bench/restart.py [--brands 1000] [--mentions 100000]
[--cases same_disk,memory,new_disk] [--compacted-runs 1] [--baseline-repo PATH] [--profile DIR]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient  # noqa: E402

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


# What makes the broker's log cleaner compact the changelogs now rather than after the worker's
# own settings (a segment rolls after 10 min, streams/table_store.py): what a deployment running
# for longer than that holds.
COMPACT_NOW = {
    "segment.ms": "100",
    # Any dirty bytes: a changelog the cleaner compacted while the state was built (a segment
    # rolled after 10 min) may have a dirty tail far below 1% of its cleaned part.
    "min.cleanable.dirty.ratio": "0",
    "min.compaction.lag.ms": "0",
}
ROLL_KEY = b"__listenwell-bench-roll__"
"""Key of the tombstone written to each changelog partition to roll its active segment (a
segment only rolls on an append); no table has the key, so recovery's delete of it is a no-op."""


def changelog_partitions(bootstrap: str, app_id: str) -> list[TopicPartition]:
    """Every partition of the app's changelog topics."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return [
            TopicPartition(topic, partition)
            for topic in sorted(consumer.topics())
            if topic.startswith(app_id) and topic.endswith("-changelog")
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
    finally:
        consumer.close()


def count_records(bootstrap: str, app_id: str, parts: list[TopicPartition]) -> dict[str, int]:
    """Records the changelogs hold now, per table, counted by reading them (compaction keeps
    offsets, so end offsets do not tell)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000
    )
    try:
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        counts: dict[str, int] = {}
        left = {tp for tp in parts if ends[tp] > 0}
        while left:
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                name = tp.topic[len(app_id) + 1 : -len("-changelog")]
                counts[name] = counts.get(name, 0) + len(batch)
                if batch[-1].offset >= ends[tp] - 1:
                    left.discard(tp)
                    consumer.pause(tp)
        return counts
    finally:
        consumer.close()


def cleaned_to(log_dir: Path) -> dict[tuple[str, int], int]:
    """The broker's cleaner checkpoint: for each compacted partition, the offset below which its
    log cleaner has compacted the log."""
    path = log_dir / "cleaner-offset-checkpoint"
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text().splitlines()[2:]:
        topic, partition, offset = line.split()
        found[topic, int(partition)] = int(offset)
    return found


def compact_changelogs(
    bootstrap: str, parts: list[TopicPartition], log_dir: Path, patience_s: float = 600
) -> float:
    """Let the broker's log cleaner compact every changelog partition up to its current end
    (its segment settings made small for the moment, one tombstone each to roll the active
    segment) and wait for its checkpoint to say so; returns the seconds it took."""
    began = time.perf_counter()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, topic, configs=COMPACT_NOW)
                for topic in sorted({tp.topic for tp in parts})
            ]
        )
    finally:
        admin.close()
    time.sleep(1.0)  # older than segment.ms, so the next append rolls the segment
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        written = [tp for tp, end in consumer.end_offsets(parts).items() if end > 0]
    finally:
        consumer.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        rolled = {
            (tp.topic, tp.partition): producer.send(
                tp.topic, key=ROLL_KEY, value=None, partition=tp.partition
            )
            .get(timeout=30)
            .offset
            for tp in written
        }
    finally:
        producer.close()
    deadline = time.monotonic() + patience_s
    while True:
        done = cleaned_to(log_dir)
        if all(done.get(tp, -1) >= offset for tp, offset in rolled.items()):
            return time.perf_counter() - began
        if time.monotonic() > deadline:
            raise SystemExit(f"the log cleaner did not compact the changelogs in {patience_s} s")
        time.sleep(0.5)


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
    bootstrap: str,
    raw: str,
    env: dict[str, str],
    port: int,
    marker: Mention,
    log: Path,
    repo: Path = REPO,
    profile: Path | None = None,
) -> float:
    """Produce ``marker``, start a worker of ``repo`` with ``env``: seconds from its start to
    serving it. ``profile``: py-spy records the worker into this file (collapsed stacks)."""
    with MentionProducer(bootstrap) as producer:
        producer.send(marker, topic=raw)
    worker = [str(repo / ".venv" / "bin" / "python"), "-m", "services.cli", "worker"]
    started = time.perf_counter()
    with child(worker, env, log, cwd=repo) as restarted:
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "py-spy"), "record", "--pid", str(restarted.pid),
                 "--rate", "50", "--format", "raw", "--output", str(profile), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        served = wait_ingested(port, 1, restarted, patience_s=600)
    if spy is not None:
        spy.wait(timeout=60)  # py-spy writes its file when the worker has gone
    return served - started


CASES = {
    # name: (what it is, store, data dir under the bench's work dir)
    "same_disk": ("rocksdb store, same data dir", "rocksdb", "disk"),
    "memory": ("memory store (before; baseline)", "memory", "memory"),
    "new_disk": ("rocksdb store, new (empty) data dir", "rocksdb", "new-disk"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, default=1_000)
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="restarts before compaction, in this order (comma-separated; '' for none): "
        + ", ".join(CASES),
    )
    parser.add_argument(
        "--compacted-runs",
        type=int,
        default=1,
        help="restarts on a new disk after the changelogs are compacted (0: do not compact)",
    )
    parser.add_argument(
        "--baseline-repo",
        type=Path,
        help="a checkout (with its .venv) whose worker restarts too, alternated with this one "
        "on each compacted run: an A/B in the same run",
    )
    parser.add_argument("--profile", type=Path, help="py-spy profiles of each restart, here")
    args = parser.parse_args()
    cases = [name for name in args.cases.split(",") if name]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {list(CASES)}")

    mentions = synthetic(args.mentions, args.brands)
    # A log cleaner that looks for dirty logs every second (Kafka's default: every 15 s).
    broker = LocalKafka(free_port(), broker_settings={"log.cleaner.backoff.ms": "1000"})
    try:
        broker.start()
        bootstrap = broker.bootstrap
        prefix = f"restart-{int(time.time())}."
        app_id = f"listenwell-{prefix.rstrip('.')}"
        create_topics(bootstrap, prefix)
        raw = topics.topic_name(topics.MENTIONS_RAW, prefix)
        workdir = REPO / ".listenwell" / "bench" / prefix.rstrip(".")
        workdir.mkdir(parents=True, exist_ok=True)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
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
        figures: dict[str, object] = {"brands": args.brands, "mentions": len(mentions)}
        markers = itertools.count(1)

        def marker() -> Mention:
            moment = mentions[-1].created_at + timedelta(seconds=next(markers))
            update = {"id": f"restart:marker-{moment.timestamp():.0f}", "customer_id": None}
            return mentions[0].model_copy(
                update={**update, "created_at": moment, "fetched_at": moment}
            )

        rows: list[tuple[str, str, float, int]] = []  # name, what, seconds, records read

        def run(name: str, what: str, store: str, data_dir: Path, records: int, repo: Path) -> None:
            case_env = {
                **env,
                "LISTENWELL_TABLE_STORE": store,
                "LISTENWELL_DATA_DIR": str(data_dir),
            }
            log = workdir / f"worker-restart-{name}.log"
            profile = None if args.profile is None else args.profile / f"{name}.txt"
            seconds = restart(bootstrap, raw, case_env, port, marker(), log, repo, profile)
            rows.append((name, what, seconds, records))
            print(f"  {what}: {seconds:.1f} s, {records:,} changelog records to read", flush=True)

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
        for name in cases:
            what, store, folder = CASES[name]
            data_dir = workdir / folder
            read = to_read(changelog_ends(bootstrap, app_id), stored_offsets(data_dir))
            run(name, what, store, data_dir, read, REPO)
            if name == "new_disk" and args.baseline_repo is not None:
                data_dir = workdir / f"{folder}-baseline"
                read = to_read(changelog_ends(bootstrap, app_id), {})
                what = f"{what} ({args.baseline_repo.name})"
                run(f"{name}_baseline", what, store, data_dir, read, args.baseline_repo)
        if args.compacted_runs > 0:
            parts = changelog_partitions(bootstrap, app_id)
            took = compact_changelogs(bootstrap, parts, broker.data_dir)
            left = count_records(bootstrap, app_id, parts)
            figures["compacted_changelog_records"] = left
            print(
                f"  compacted in {took:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in left.items())
            )
            for n in range(1, args.compacted_runs + 1):
                sides = [("", REPO)]
                if args.baseline_repo is not None:
                    sides.append((f" ({args.baseline_repo.name})", args.baseline_repo))
                    if n % 2 == 0:
                        sides.reverse()
                for label, repo in sides:
                    key = "baseline" if repo != REPO else "this"
                    run(
                        f"compacted_new_disk_{key}_{n}",
                        f"compacted, new (empty) data dir{label}",
                        "rocksdb",
                        workdir / f"compacted-{key}-{n}",
                        sum(left.values()),
                        repo,
                    )
    finally:
        broker.stop(wipe=True)
    print()
    print(f"{'restart → serving again':52}{'seconds':>10}{'records read':>14}")
    print(f"{'brands / customers in state':52}{args.brands:>5,} / {len(mentions):,}")
    for _name, what, seconds, read in rows:
        verdict = "met" if seconds <= GOAL_S else "not met"
        print(f"{what:52}{seconds:>10.1f}{read:>14,}   goal <= {GOAL_S:.0f} s ({verdict})")
    figures.update(
        {
            "restart_to_serving_s": {name: round(seconds, 2) for name, _, seconds, _ in rows},
            "changelog_records_to_read": {name: read for name, _, _, read in rows},
            "goal_s": GOAL_S,
            "command": "bench/restart.py " + " ".join(sys.argv[1:]),
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    # A SIGTERM (a timeout, a kill) unwinds like Ctrl-C: the broker and workers started here stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
