"""Producing the worker's records: CPU per record of each way into aiokafka's batches, real broker.

The worker's producer (``streams.app.faust_app``'s, its settings: lz4, 20 ms linger, 512 KiB
batches, acks all) sends the same records, keyed like the worker's (a brand, ``brand/customer``)
with values of simulated mentions' JSON, to a topic of 12 partitions, three ways, alternated in
rounds:

- ``worker``: ``app.producer.send`` as the worker calls it (``streams.faust_app._Producer``);
- ``faust``: Faust's own ``Producer.send`` on the same producer (what the worker called before);
- ``aiokafka``: ``AIOKafkaProducer.send`` of the same aiokafka producer.

Each round sends ``--records`` records and flushes the producer: CPU time (the process's, so the
sender task's batching, lz4 and requests count too) per record, median over the rounds.

Usage: ``.venv/bin/python bench/produce.py [--records 20000] [--rounds 5]
[--bootstrap HOST:PORT]``. Figures also go to ``bench/results/produce.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faust.transport.drivers import aiokafka as faust_aiokafka  # noqa: E402

from connectors.simulate import generate  # noqa: E402
from services.kafka_local import broker_unless_given, create_topics  # noqa: E402
from services.process import exit_on_sigterm  # noqa: E402
from streams import topics  # noqa: E402
from streams.app import faust_app  # noqa: E402
from streams.settings import Settings  # noqa: E402

PARTITIONS = 12

Send = Callable[[str, bytes, bytes], Awaitable[Any]]


def records(count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (key, value) pairs: simulated mentions' JSON under their brand, and every third
    under ``brand/customer`` (the customers changelog's keys)."""
    mentions = generate(hours=24)
    rows = []
    for n in range(count):
        mention = mentions[n % len(mentions)]
        key = mention.brand if n % 3 else f"{mention.brand}/customer-{n % 5000}"
        rows.append((key.encode(), mention.to_json()))
    return rows


async def measure(
    bootstrap: str, prefix: str, rows: list[tuple[bytes, bytes]], rounds: int
) -> dict[str, list[float]]:
    topic = topics.topic_name(topics.MENTIONS_SCORED, prefix)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            app_id=f"{prefix}produce", kafka_bootstrap=bootstrap, data_dir=Path(data_dir)
        )
        producer: Any = faust_app(settings).producer
        await producer.start()
        try:
            aio = producer._producer
            await aio.client._wait_on_metadata(topic)

            async def worker(topic: str, key: bytes, value: bytes) -> Any:
                return await producer.send(topic, key, value, None, None, None)

            async def faust(topic: str, key: bytes, value: bytes) -> Any:
                return await faust_aiokafka.Producer.send(
                    producer, topic, key, value, None, None, None
                )

            async def aiokafka(topic: str, key: bytes, value: bytes) -> Any:
                return await aio.send(topic, value, key=key)

            ways: dict[str, Send] = {"worker": worker, "faust": faust, "aiokafka": aiokafka}
            cpu: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(rounds + 1):  # the first round warms up and is not counted
                for name, send in ways.items():
                    start = time.process_time()
                    for key, value in rows:
                        await send(topic, key, value)
                    await producer.flush()
                    cpu[name].append((time.process_time() - start) / len(rows) * 1e6)
            return {name: values[1:] for name, values in cpu.items()}
        finally:
            await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    rows = records(args.records)
    with broker_unless_given(args.bootstrap) as (bootstrap, _):
        prefix = f"bench-produce-{time.time_ns()}."
        create_topics(bootstrap, prefix, partitions=PARTITIONS)
        cpu = asyncio.run(measure(bootstrap, prefix, rows, args.rounds))
    mean_bytes = statistics.fmean(len(value) for _, value in rows)
    print(
        f"{args.records:,} records a round ({mean_bytes:.0f} B values, {PARTITIONS} partitions), "
        f"{args.rounds} rounds; CPU per record, send + flush, median (range):"
    )
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in cpu.items():
        print(
            f"  {name:9s} {medians[name]:6.2f} µs ({min(values):.2f}-{max(values):.2f})"
            f"   x{medians[name] / medians['faust']:.2f} of Faust's send"
        )
    results = {
        "records": args.records,
        "rounds": args.rounds,
        "cpu_us_per_record": cpu,
        "median_us_per_record": medians,
    }
    out = REPO / "bench" / "results" / "produce.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    exit_on_sigterm()
    main()
