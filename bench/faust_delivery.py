"""A bare Faust agent on a real broker: the worker's consumer delivering records directly when it
can (``streams.faust_app.delivery_cannot_suspend``) against every record through Faust's
``wait_first``, alternated in the same run.

Each arm is a fresh worker process (the worker's ``ListenwellApp``, one partition, an agent that
takes batches of 500 records within 50 ms and does nothing with them) reading the same backlog of
``--records`` 100-byte records from the start; it prints the process's CPU time per record from its
first batch to the last record (all its threads: aiokafka's consumer thread included). The
``wait_first`` arm is the same code with ``delivery_cannot_suspend`` answering False.

Usage: ``.venv/bin/python bench/faust_delivery.py [--records 50000] [--pairs 4]``. Figures also
go to ``bench/results/faust_delivery.json``.
"""

from __future__ import annotations

import argparse
import json
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

RESULTS = REPO / "bench" / "results" / "faust_delivery.json"
TOPIC = "bare"
ARMS = ("wait_first", "direct")
MARK = '{"arm"'


def agent(arm: str, bootstrap: str, records: int) -> None:
    """The child: read ``records`` records of ``TOPIC`` with a bare agent, print the figures."""
    import streams.faust_app as faust_app

    if arm == "wait_first":
        faust_app.delivery_cannot_suspend = lambda *args: False  # type: ignore[assignment]
    app = faust_app.ListenwellApp(
        f"bare-{arm}-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=1,
        topic_replication_factor=1,
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-faust-delivery-"),
    )
    topic = app.topic(
        TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    seen: dict[str, float] = {"n": 0}

    @app.agent(topic)
    async def sink(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.05):
            if "cpu0" not in seen:
                seen.update(cpu0=time.process_time(), wall0=time.monotonic(), first=len(events))
            seen["n"] += len(events)
            if seen["n"] >= records:
                counted = seen["n"] - seen["first"]
                figures = {
                    "arm": arm,
                    "cpu_us_per_record": (time.process_time() - seen["cpu0"]) / counted * 1e6,
                    "records_per_s": counted / (time.monotonic() - seen["wall0"]),
                }
                # Faust's worker sends stdout to its log; the parent reads both.
                print(json.dumps(figures), flush=True)
                os._exit(0)

    from faust.worker import Worker

    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def run_arm(arm: str, bootstrap: str, records: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            arm,
            "--bootstrap",
            bootstrap,
            "--records",
            str(records),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    for line in (out.stdout + out.stderr).splitlines():
        if MARK in line:
            figures: dict[str, Any] = json.loads(line[line.index(MARK) :])
            return figures
    raise RuntimeError(f"the {arm} arm printed no figures:\n{out.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        agent(args.child, args.bootstrap, args.records)
        return 0

    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from services.kafka_local import broker_unless_given
    from services.process import exit_on_sigterm

    exit_on_sigterm()
    with broker_unless_given(None) as (bootstrap, _):
        KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(TOPIC, 1, 1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
        for i in range(args.records):
            producer.send(TOPIC, key=b"k%d" % (i % 100), value=b"x" * 100)
        producer.flush()
        producer.close()
        pairs = []
        for pair in range(args.pairs):
            order = ARMS if pair % 2 == 0 else ARMS[::-1]
            figures = {arm: run_arm(arm, bootstrap, args.records) for arm in order}
            ratio = (
                figures["direct"]["cpu_us_per_record"] / figures["wait_first"]["cpu_us_per_record"]
            )
            pairs.append({**{arm: figures[arm] for arm in ARMS}, "ratio": ratio})
            print(
                f"pair {pair + 1}: Faust's wait_first "
                f"{figures['wait_first']['cpu_us_per_record']:.1f} µs CPU/record "
                f"({figures['wait_first']['records_per_s']:,.0f}/s), direct "
                f"{figures['direct']['cpu_us_per_record']:.1f} µs "
                f"({figures['direct']['records_per_s']:,.0f}/s): ratio {ratio:.2f}",
                flush=True,
            )
    ratios = [pair["ratio"] for pair in pairs]
    print(
        f"direct / wait_first CPU per record: {min(ratios):.2f}-{max(ratios):.2f} "
        f"(median {statistics.median(ratios):.2f}) over {len(ratios)} alternated pairs"
    )
    RESULTS.write_text(json.dumps({"records": args.records, "pairs": pairs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
