"""End-to-end pipeline benchmark: simulated mentions → real Kafka → one worker process →
mentions.scored.

Prints, in one run:
- throughput: a backlog of >= 50,000 simulated mentions is produced first, then one worker drains
  it; mentions/s = backlog / (last processed − first ingested: from the first batch's start to the
  last batch done), read from the worker's own /metrics, and the worker's CPU time per mention over
  the same span;
- latency: afterwards a steady stream at half that rate; p50/p99 of (scored record's Kafka timestamp
  − raw record's Kafka timestamp), matched by mention id. By default the stream is *live* (each
  mention's event time is the time it is sent, as in production); ``--latency-stream replay`` sends
  a slice of another simulated day at the backlog's density instead, where event time runs
  thousands of times faster than the clock (every batch closes minutes and runs customer sweeps
  that a live worker runs once a minute or once an hour);
- the baseline: a bare ``vaderSentiment`` loop over the same texts (texts/s) and the ratio pipeline
  / VADER;
- with ``--profile``: where the worker process spends its time in each phase (py-spy on it, see
  ``bench/spy.py``), and where the pure core does (cProfile of ``Pipeline.process`` on the same
  records, in-process, no Kafka).

Usage: ``.venv/bin/python bench/pipeline.py [--mentions 50000] [--latency-stream live|replay]
[--bootstrap HOST:PORT] [--worker-env NAME=VALUE] [--profile]``. Figures also go to
``bench/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from connectors.producer import MentionProducer  # noqa: E402
from connectors.simulate import generate  # noqa: E402
from services.demo import scrape, stop_process, total, worker_env  # noqa: E402
from services.kafka_local import broker_unless_given, create_topics, free_port  # noqa: E402
from services.process import exit_on_sigterm  # noqa: E402
from streams import topics  # noqa: E402
from streams.brand_scoring import worker_scorer  # noqa: E402
from streams.clock import FakeClock  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pipeline import Pipeline, RawRecord  # noqa: E402
from streams.records import Mention  # noqa: E402
from streams.rules import load_rules  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from spy import Recorder, breakdown, breakdown_table  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pipeline.json"


def simulated(at_least: int, seed: int) -> tuple[list[Mention], float]:
    """The first ``at_least`` mentions of the crisis day scaled to have that many, and the scale."""
    scale = 1.0
    while True:
        mentions = generate("crisis", seed=seed, rate_scale=scale)
        if len(mentions) >= at_least:
            return mentions[:at_least], scale
        scale *= at_least / max(1, len(mentions)) * 1.05


def steady_stream(count: int, scale: float) -> list[Mention]:
    """``count`` mentions of another crisis day at the backlog's ``scale``, a contiguous slice
    from its middle, a day after the backlog, with ids of their own.

    Same event-time density as the backlog: the worker's work per mention depends on it (each
    event-time minute a batch passes is closed and evaluated for every brand and rule), so a
    stream that packed a whole day into ``count`` mentions would not be "half the load" of the
    backlog. Simulated ids are only unique within one seed: give them ids of their own, or the
    worker would dedupe them.
    """
    day = generate("crisis", seed=12, rate_scale=scale)
    middle = max(0, len(day) // 2 - count // 2)
    return [
        m.model_copy(
            update={
                "id": f"simulate:latency:{i}",
                "created_at": m.created_at + timedelta(days=1),
                "fetched_at": m.fetched_at + timedelta(days=1),
            }
        )
        for i, m in enumerate(day[middle : middle + count])
    ]


def bare_vader(texts: list[str]) -> tuple[float, float]:
    """Texts per second of a bare ``vaderSentiment`` loop over ``texts``, and its CPU seconds."""
    analyzer = SentimentIntensityAnalyzer()
    began, began_cpu = time.perf_counter(), time.process_time()
    for text in texts:
        analyzer.polarity_scores(text)
    return len(texts) / (time.perf_counter() - began), time.process_time() - began_cpu


def timestamps(bootstrap: str, topic: str) -> dict[str, int]:
    """Mention id → Kafka record timestamp (ms) for every record in ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    found: dict[str, int] = {}
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        for messages in consumer.poll(timeout_ms=500).values():
            for m in messages:
                record = json.loads(m.value)
                mention_id = record["mention"]["id"] if "mention" in record else record["id"]
                found.setdefault(mention_id, m.timestamp)
    consumer.close()
    return found


def scrape_named(port: int, names: tuple[str, ...]) -> dict[str, float]:
    """The sum of each of the metrics ``names`` over its labels, from the worker's /metrics
    asked for those only (``?name[]=``; :func:`services.demo.scrape` reads the whole page): polled
    every 0.1 s, the whole page (every brand's histograms) cost the worker ~5% of its drain."""
    query = urllib.parse.urlencode([("name[]", name) for name in names])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=5) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def wait_ingested(
    port: int,
    count: float,
    process: subprocess.Popen[bytes],
    on_first: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Poll the worker's metrics; return (first time ingested > 0, time ingested >= count).
    ``on_first`` is called as soon as ingested > 0 is seen."""
    first = None
    while True:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}")
        try:
            ingested = total(
                scrape_named(port, ("listenwell_mentions_ingested_total",)),
                "listenwell_mentions_ingested_total",
            )
        except OSError:
            ingested = 0.0
        now = time.perf_counter()
        if ingested > 0 and first is None:
            first = now
            if on_first is not None:
                on_first()
        if ingested >= count:
            assert first is not None
            return first, now
        time.sleep(0.1)


def wait_processed(port: int, count: float, process: subprocess.Popen[bytes]) -> float:
    """Poll the worker's metrics until ``count`` mentions are processed (scored and published,
    parked or dropped as duplicates: counted after a batch's state is stored, while
    ``listenwell_mentions_ingested_total`` counts a batch when it starts); return that time."""
    names = (
        "listenwell_mentions_scored_total",
        "listenwell_mentions_dead_lettered_total",
        "listenwell_mentions_deduplicated_total",
    )
    while True:
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}")
        try:
            metrics = scrape_named(port, names)
            processed = sum(total(metrics, name) for name in names)
        except OSError:
            processed = 0.0
        if processed >= count:
            return time.perf_counter()
        time.sleep(0.1)


WARM_UP = 200


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_bytes(data_dir: Path, changelog_prefix: str) -> int:
    """Bytes of the log segments of the topics named ``<prefix>…-changelog`` in the broker's data
    directory: what the worker's table writes cost on disk (zstd batches, not compacted: a
    benchmark's segments are never rolled)."""
    return sum(
        segment.stat().st_size
        for folder in data_dir.iterdir()
        if folder.is_dir()
        and folder.name.startswith(changelog_prefix)
        and folder.name.rsplit("-", 1)[0].endswith("-changelog")
        for segment in folder.glob("*.log")
    )


def send_paced(
    bootstrap: str, topic: str, mentions: list[Mention], rate: float, *, live: bool
) -> None:
    """Produce ``mentions`` at ``rate`` per second; ``live``: stamped with the time of sending."""
    with MentionProducer(bootstrap) as producer:
        began = time.perf_counter()
        for i, mention in enumerate(mentions):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if live:
                now = datetime.now(UTC)
                mention = mention.model_copy(update={"created_at": now, "fetched_at": now})
            producer.send(mention, topic=topic)


def histogram_delta(
    before: dict[str, float], after: dict[str, float], name: str
) -> list[tuple[float, float]]:
    """Cumulative share of observations per bucket bound of histogram ``name`` between two
    scrapes (``+Inf`` left out)."""
    counts: list[tuple[float, float]] = []
    for key, value in after.items():
        if key.startswith(name + "_bucket{") and 'le="+Inf"' not in key:
            le = float(key.split('le="')[1].split('"')[0])
            counts.append((le, value - before.get(key, 0.0)))
    counts.sort()
    n = total(after, name + "_count") - total(before, name + "_count")
    return [(le, c / n if n else 0.0) for le, c in counts]


def profile_core(mentions: list[Mention]) -> str:
    engine = Engine(
        load_rules(REPO / "alert_rules" / "default.yaml"), allowed_lateness=timedelta(seconds=120)
    )
    scorer = worker_scorer(REPO / "alert_rules" / "default.yaml")  # the worker's, as streams/app.py
    pipeline = Pipeline(scorer, engine, clock=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    records = [
        RawRecord("mentions.raw", 0, i, m.brand.encode(), m.to_json())
        for i, m in enumerate(mentions)
    ]
    states: dict[str, object] = {}
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for start in range(0, len(records), 500):
        result = pipeline.process(records[start : start + 500], states.get)  # type: ignore[arg-type]
        states.update(result.states)
        for state in result.states.values():
            state.to_changelog()  # what the table codec does for the changelog
        for scored in result.scored:
            scored.to_json()
    profiler.disable()
    seconds = time.perf_counter() - began
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    return f"pure core: {len(records) / seconds:,.0f} mentions/s (under cProfile)\n{out.getvalue()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--latency-mentions", type=int, default=10_000)
    parser.add_argument(
        "--latency-stream",
        choices=("live", "replay"),
        default="live",
        help="event time of the half-load stream: the time of sending (live, as in production: "
        "minutes close once a minute) or a replayed day at the backlog's density (event time "
        "runs thousands of times faster than the clock, so every batch closes minutes and runs "
        "customer sweeps)",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="mentions/s of the latency stream (default: half the drain's rate; a fixed rate "
        "compares two versions' latency at the same load)",
    )
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the worker, cProfile the core"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the worker (e.g. LISTENWELL_BATCH_WITHIN_S=0.05)",
    )
    args = parser.parse_args()

    mentions, scale = simulated(args.mentions, seed=11)
    texts = [m.text for m in mentions]
    print(
        f"{len(mentions):,} simulated mentions, mean text length "
        f"{statistics.fmean(len(t) for t in texts):.0f} chars"
    )

    with broker_unless_given(args.bootstrap) as (bootstrap, broker):
        prefix = f"bench-{int(time.time())}."
        create_topics(bootstrap, prefix)
        raw = topics.topic_name(topics.MENTIONS_RAW, prefix)
        port = free_port()
        workdir = REPO / ".listenwell" / "bench" / prefix.rstrip(".")
        workdir.mkdir(parents=True, exist_ok=True)
        env = worker_env(
            bootstrap,
            prefix,
            metrics_port=port,
            data_dir=workdir,
            **dict(item.split("=", 1) for item in args.worker_env),
        )
        worker = None
        profiles: dict[str, tuple[dict[str, float], int]] = {}
        try:
            print("producing the backlog …", flush=True)
            with MentionProducer(bootstrap) as producer:
                for mention in mentions:
                    producer.send(mention, topic=raw)
            with (workdir / "worker.log").open("wb") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "worker"],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                spy: Recorder | None = None
                worker_pid = worker.pid

                cpu_at_first = 0.0

                def drain_started() -> None:
                    # From the first batch on: start-up (imports, rebalance, table recovery) is
                    # not the drain, and it took a third of the samples when recorded with it.
                    nonlocal spy, cpu_at_first
                    cpu_at_first = cpu_seconds(worker_pid)
                    if args.profile:
                        spy = Recorder(worker_pid, workdir / "spy-drain.txt")

                first, last_started = wait_ingested(port, len(mentions), worker, drain_started)
                # To the backlog's last batch done, not started: ingested counts a batch when it
                # starts, and N mentions over the time to the last batch's start left that batch
                # out (by batch size / N: 2.5% with 20,000 mentions), of the rate and the CPU.
                last = wait_processed(port, len(mentions), worker)
                drain_cpu = cpu_seconds(worker_pid) - cpu_at_first
                if spy is not None:
                    profiles["drain"] = breakdown(spy.stop())
                throughput = len(mentions) / (last - first)
                print(
                    f"pipeline: drained {len(mentions):,} in {last - first:.1f} s → "
                    f"{throughput:,.0f} mentions/s (its last batch started at "
                    f"{last_started - first:.1f} s)",
                    flush=True,
                )
                at_drain = scrape(port)
                drain_batches = total(at_drain, "listenwell_batch_processing_seconds_count")
                drain_batch_s = total(at_drain, "listenwell_batch_processing_seconds_sum")
                per_batch = max(drain_batches, 1)
                print(
                    f"drain: {drain_batches:.0f} batches, {len(mentions) / per_batch:.0f} "
                    f"mentions and {drain_batch_s / per_batch * 1000:.0f} ms each on average; "
                    f"worker busy with batches {drain_batch_s / (last - first):.0%} of the drain",
                    flush=True,
                )

                rate = args.latency_rate or throughput / 2
                steady = steady_stream(args.latency_mentions + WARM_UP, scale)
                live = args.latency_stream == "live"
                if live:
                    # The first live mentions move every brand's watermark from the backlog's day to
                    # today (closing the gap, forgetting the backlog's customers): not counted, and
                    # waited for until processed (ingested counts a batch when it starts: a batch
                    # still closing the gap would hold up the first mentions measured).
                    gap_days = (datetime.now(UTC) - mentions[-1].created_at).total_seconds() / 86400
                    if args.profile:
                        spy = Recorder(worker.pid, workdir / "spy-warm-up.txt")
                    began = time.perf_counter()
                    send_paced(bootstrap, raw, steady[:WARM_UP], rate, live=True)
                    done = wait_processed(port, len(mentions) + WARM_UP, worker)
                    if spy is not None:
                        profiles["warm-up (gap)"] = breakdown(spy.stop())
                    print(
                        f"warm-up: {WARM_UP} live mentions {gap_days:,.0f} days after the "
                        f"backlog's last, processed {done - began:.1f} s after the first was sent",
                        flush=True,
                    )
                steady = steady[WARM_UP:]
                warm = WARM_UP if live else 0
                before_steady = scrape(port)
                print(
                    f"latency: producing {len(steady):,} mentions at {rate:,.0f}/s, event time "
                    + ("= the time they are sent (live)" if live else "of a replayed day")
                    + " …",
                    flush=True,
                )
                if args.profile:
                    spy = Recorder(worker.pid, workdir / "spy-steady.txt")
                send_paced(bootstrap, raw, steady, rate, live=live)
                wait_ingested(port, len(mentions) + warm + len(steady), worker)
                if spy is not None:
                    profiles["half load"] = breakdown(spy.stop())
                time.sleep(2)
                after_steady = scrape(port)
                batches = total(after_steady, "listenwell_batch_processing_seconds_count") - total(
                    before_steady, "listenwell_batch_processing_seconds_count"
                )
                batch_s = total(after_steady, "listenwell_batch_processing_seconds_sum") - total(
                    before_steady, "listenwell_batch_processing_seconds_sum"
                )
                inside = histogram_delta(
                    before_steady, after_steady, "listenwell_processing_latency_seconds"
                )
                print(
                    "latency phase, produced → scoring started, as the worker sees it: "
                    + ", ".join(f"<= {le:g} s: {n:.0%}" for le, n in inside),
                    flush=True,
                )
                print(
                    f"latency phase: {batches:.0f} batches, {len(steady) / max(batches, 1):.0f} "
                    f"mentions and {batch_s / max(batches, 1) * 1000:.0f} ms each on average; "
                    f"worker busy with batches {batch_s / (len(steady) / rate):.0%} of the phase",
                    flush=True,
                )
        finally:
            if worker is not None:
                stop_process(worker)  # type: ignore[arg-type]
        produced = timestamps(bootstrap, raw)
        scored = timestamps(bootstrap, topics.topic_name(topics.MENTIONS_SCORED, prefix))
        latencies = sorted(
            (scored[m.id] - produced[m.id]) / 1000
            for m in steady
            if m.id in scored and m.id in produced
        )
        changelog_bytes = None
        if broker is not None:
            changelog_bytes = stored_bytes(broker.data_dir, f"listenwell-{prefix.rstrip('.')}-")
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    vader, vader_cpu = bare_vader(texts)
    ratio = throughput / vader
    # Per mention on the CPU: steadier than the rates on a shared machine, where wall time also
    # counts the time a process waits for a core.
    worker_cpu_us = drain_cpu / len(mentions) * 1e6
    vader_cpu_us = vader_cpu / len(texts) * 1e6
    print()
    print(f"{'':34}{'value':>12}")
    print(f"{'pipeline throughput (mentions/s)':34}{throughput:>12,.0f}")
    print(f"{'latency p50 produced→scored (s)':34}{p50:>12.3f}")
    print(f"{'latency p99 produced→scored (s)':34}{p99:>12.3f}")
    print(f"{'bare vaderSentiment (texts/s)':34}{vader:>12,.0f}")
    print(f"{'ratio pipeline / bare VADER':34}{ratio:>12.2f}   goal >= 0.5, stretch >= 1.0")
    print(
        f"{'worker CPU per mention, drain (µs)':34}{worker_cpu_us:>12.1f}   bare VADER "
        f"{vader_cpu_us:.1f} µs CPU per text: ratio {vader_cpu_us / worker_cpu_us:.2f} "
        "(all the worker's threads, incl. answering the bench's /metrics scrapes)"
    )
    ingested_total = len(mentions) + len(steady) + (WARM_UP if live else 0)
    per_mention = None if changelog_bytes is None else changelog_bytes / ingested_total
    if per_mention is not None:
        print(
            f"{'changelog on the broker (B/mention)':34}{per_mention:>12,.0f}   goal <= 150, "
            f"stretch <= 50 (table changelogs' log segments / mentions ingested)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "mentions": len(mentions),
                "throughput_per_s": round(throughput, 1),
                "latency_p50_s": round(p50, 4),
                "latency_p99_s": round(p99, 4),
                "latency_rate_per_s": round(rate, 1),
                "latency_samples": len(latencies),
                "bare_vader_texts_per_s": round(vader, 1),
                "ratio_pipeline_over_vader": round(ratio, 3),
                "worker_cpu_us_per_mention_drain": round(worker_cpu_us, 1),
                "bare_vader_cpu_us_per_text": round(vader_cpu_us, 1),
                "changelog_bytes_per_mention_on_broker": (
                    None if per_mention is None else round(per_mention, 1)
                ),
                "latency_stream": args.latency_stream,
            },
            indent=2,
        )
        + "\n"
    )
    if args.profile:
        print()
        print("where the worker's time goes (py-spy on the worker process, share of samples):")
        print(breakdown_table(profiles))
        print()
        print(profile_core(mentions))
    return 0


if __name__ == "__main__":
    exit_on_sigterm()
    sys.exit(main())
