"""A bare Faust agent on a real broker: CPU per record of the agent's batching, no work.

Compares Faust's ``stream.take_events`` (per event: the stream iterator, sensors, the take
buffer's processor coroutine, an ack coroutine) with reading the agent's channel queue in
batches (``--reader channel``), each with a no-op step, on the same pre-produced topic.

    .venv/bin/python bench/agent_batches.py --records 50000 --pairs 3

Each run is its own process and consumer group reading the topic from the start; the figure is
the process's CPU (all threads: Faust's consumer thread included) from the ``--warm``-th record
to the last, per record. Runs alternate take/channel so load changes hit both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.kafka_local import broker_unless_given  # noqa: E402
from services.process import exit_on_sigterm  # noqa: E402

PARTITIONS = 12


def produce(bootstrap: str, topic: str, records: int) -> None:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    value = b'{"id":"%08d","brand":"acme","text":"' + b"x" * 160 + b'"}'
    for i in range(records):
        producer.send(topic, key=b"k%d" % (i % 97), value=value % i)
    producer.flush()
    producer.close()


def worker(
    bootstrap: str, topic_name: str, reader: str, records: int, warm: int, out: Path, step_us: float
) -> None:
    """Run one Faust worker in this process until ``records`` are stepped and acked."""
    import faust

    from streams.faust_app import LeanMonitor, ListenwellApp

    app = ListenwellApp(
        f"agent-batches-{reader}-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        broker_commit_every=500,
        datadir=str(out.parent / "faust"),
        Monitor=LeanMonitor,
    )
    topic = app.topic(
        topic_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )
    seen = 0
    mark: dict[str, float] = {}

    async def step(events: list[Any]) -> None:
        nonlocal seen
        seen += len(events)
        if step_us:
            until = time.thread_time() + step_us * len(events) / 1e6
            while time.thread_time() < until:
                pass
        if seen >= warm and "cpu0" not in mark:
            mark.update(cpu0=time.process_time(), wall0=time.perf_counter(), n0=seen)

    def finish(stream: Any) -> None:
        cpu = time.process_time() - mark["cpu0"]
        wall = time.perf_counter() - mark["wall0"]
        n = seen - int(mark["n0"])
        consumer = app.consumer
        out.write_text(
            json.dumps(
                {
                    "reader": reader,
                    "records": n,
                    "cpu_us_per_record": cpu / n * 1e6 - step_us,
                    "wall_s": wall,
                    "unacked": len(consumer._unacked_messages),
                }
            )
        )
        os._exit(0)

    if reader == "take":

        @app.agent(topic, name="bare")
        async def bare(stream: Any) -> None:
            async for events in stream.take_events(500, within=0.1):
                await step(events)
                if seen >= records:
                    # take_events acks the batch when the loop asks for the next one
                    await asyncio.sleep(0)
                    finish(stream)
    else:
        from streams.channel_batches import ChannelBatches

        @app.agent(topic, name="bare")
        async def bare(stream: Any) -> None:
            async for events in ChannelBatches(stream, 500, 0.1):
                await step(events)
                if seen >= records:
                    finish(stream)

    logging.basicConfig(level=logging.WARNING)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument(
        "--warm", type=int, default=5_000, help="records read before timing starts (< --records)"
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument(
        "--step-us",
        type=float,
        default=0.0,
        help="CPU the step burns per record (its figure is subtracted)",
    )
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--topic", default=None, help="an existing topic of --records records")
    parser.add_argument("--worker", choices=["take", "channel"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.warm < args.records:
        parser.error(
            f"--warm ({args.warm}) must be at least 0 and less than --records ({args.records})"
        )
    if args.worker:
        worker(
            args.bootstrap, args.topic, args.worker, args.records, args.warm, args.out, args.step_us
        )
        return
    with broker_unless_given(args.bootstrap) as (bootstrap, _):
        topic = args.topic
        if topic is None:
            topic = f"agent-batches-{time.time_ns()}"
            produce(bootstrap, topic, args.records)
        results: dict[str, list[float]] = {"take": [], "channel": []}
        for pair in range(args.pairs):
            order = ["take", "channel"] if pair % 2 == 0 else ["channel", "take"]
            for reader in order:
                with tempfile.TemporaryDirectory(prefix="agent-batches-") as scratch:
                    out = Path(scratch) / "figures.json"
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--worker",
                            reader,
                            "--bootstrap",
                            bootstrap,
                            "--topic",
                            topic,
                            "--records",
                            str(args.records),
                            "--warm",
                            str(args.warm),
                            "--out",
                            str(out),
                            "--step-us",
                            str(args.step_us),
                        ],
                        check=True,
                        timeout=600,
                    )
                    figures = json.loads(out.read_text())
                print(json.dumps(figures), flush=True)
                results[reader].append(figures["cpu_us_per_record"])
        for reader, values in results.items():
            print(
                f"{reader}: CPU per record {', '.join(f'{v:.1f}' for v in values)} µs "
                f"(median {statistics.median(values):.1f})"
            )
        savings = [t - c for t, c in zip(results["take"], results["channel"], strict=True)]
        print(f"saving per pair: {', '.join(f'{s:.1f}' for s in savings)} µs per record")


if __name__ == "__main__":
    exit_on_sigterm()
    main()
