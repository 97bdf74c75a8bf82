"""Back-pressure and overload (issue 9, item 3) against real Kafka and real processes.

* A burst of 40x the sustained rate (beyond what the worker scores) into ``mentions.raw`` while a
  worker runs: the lag grows and drains, every mention reaches ``mentions.scored``, the worker's
  memory does not grow with the burst (a burst twice as long leaves the peak RSS where the first
  burst put it) and its metrics show all of it. ``bench/overload.py`` runs the same phases,
  longer, and prints the figures.
* A burst of alerts into ``alerts`` while the notifier runs: each transition printed exactly once,
  its memory flat as well.
* The webhook API with its broker stopped mid-test: 503 + ``Retry-After`` and nothing accepted that
  was not stored; accepted again once the broker is back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kafka import KafkaProducer
from pydantic import SecretStr

from bench.overload import Sampler, overload, rss_bytes
from services.api import ApiSettings, KafkaEventSink, make_api, sign
from services.demo import scrape, total
from services.kafka_local import LocalKafka, create_topics, free_port
from streams import topics
from streams.records import Mention
from tests.factories import alert
from tests.integration.harness import REPO, Run, read_all, wait_for

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
SUSTAINED_RATE = 300.0
"""Mentions per second the worker keeps up with easily (it scores ~1,500-2,500/s on 2 cores)."""
BURST_GROWTH_BOUND = 24 * MiB
"""How much higher a burst twice as long may push the worker's peak RSS than the first burst did:
a fixed allowance for allocator noise, far below what buffering the extra backlog would take
(~2 KiB per mention: the extra 12,000 mentions would be ~25 MiB more, growing with the burst)."""


def test_a_burst_beyond_capacity_is_absorbed_by_the_lag_with_nothing_lost_and_flat_memory(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("overload")
    # A session timeout well above the time a burst takes to produce: the worker is stopped
    # meanwhile (hold_bursts) and sends no heartbeats.
    worker = run.start_worker(LISTENWELL_SESSION_TIMEOUT_S="60")
    phases = overload(
        bootstrap=run.bootstrap,
        prefix=run.prefix,
        process=worker.process,
        metrics_port=worker.metrics_port,
        rate=SUSTAINED_RATE,
        # 12,000/s asked; the producer reaches ~6,000-8,000/s here, which one worker nearly keeps
        # up with since issue 15's speed-ups, so a burst produced live showed in the lag by a
        # margin the machine's load decided (it failed CI twice). The worker is stopped while a
        # burst is produced, so each burst is beyond its capacity whatever its speed: 12,000 and
        # 24,000 mentions waiting in Kafka when it continues.
        phases=[("sustained", 1.0, 3.0), ("burst", 40.0, 1.0), ("long-burst", 40.0, 2.0)],
        hold_bursts=True,
    )
    sustained, burst, long_burst = phases
    report = "\n".join(str(p) for p in phases)

    # Nothing dropped: every id of every phase is in mentions.scored, and the worker says so.
    assert [p.missing_from_scored for p in phases] == [0, 0, 0], report
    total_mentions = sum(p.mentions for p in phases)
    assert worker.metric("listenwell_mentions_ingested_total") == total_mentions
    assert worker.metric("listenwell_mentions_scored_total") == total_mentions
    assert worker.metric("listenwell_mentions_dead_lettered_total") == 0

    # The lag gauge shows the burst, and each phase ended with it back at 0 (run_phase waits for
    # that); a longer burst builds a longer backlog instead of more memory.
    # (At the sustained rate the gauge already shows the records between two commits.)
    floor = 2 * max(sustained.peak_lag, 100)
    assert burst.peak_lag > floor and long_burst.peak_lag > burst.peak_lag, report
    assert worker.metric("listenwell_consumer_lag_messages", topic="mentions.raw") == 0

    # Memory: twice the burst leaves the peak where the first burst put it, and the process's own
    # resident-memory metric agrees with /proc.
    assert long_burst.peak_rss_bytes - burst.peak_rss_bytes < BURST_GROWTH_BOUND, report
    reported = worker.metric("listenwell_process_resident_memory_bytes")
    assert abs(reported - rss_bytes(worker.process.pid)) < 16 * MiB


def alert_record(n: int) -> bytes:
    start = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=n)
    at_risk = alert("CustomerAtRisk", starts=start, value=0.9, baseline=None, severity=None,
                    brand="acme", customer=f"c{n}")  # fmt: skip
    return at_risk.to_json()


def delivered_all(port: int, expected: int) -> bool:
    """Whether the notifier on ``port`` reports exactly ``expected`` deliveries."""
    try:
        values = scrape(port)
    except OSError:
        return False
    return total(values, "listenwell_notifications_total", outcome="delivered") == expected


def test_a_burst_of_alerts_is_printed_once_each_with_flat_memory(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("overload-notifier")
    port = free_port()
    out_path = run.workdir / "notifier.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "notifier"],
            env=run.env(LISTENWELL_NOTIFIER_METRICS_PORT=str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    run.processes.append(process)

    sampler = Sampler(process.pid, port).start()
    try:
        wait_for(partial(delivered_all, port, 0), what="the notifier's /metrics")
        producer = KafkaProducer(bootstrap_servers=run.bootstrap, acks="all")
        peaks = []
        sent = 0
        for size in (200, 2_000):
            began = time.monotonic()
            for n in range(sent, sent + size):
                producer.send(run.topic(topics.ALERTS), key=b"acme", value=alert_record(n))
            producer.flush()
            sent += size
            wait_for(partial(delivered_all, port, sent), what=f"{sent} deliveries")
            peaks.append(max(s.rss for s in sampler.since(began)))
        producer.close()
    finally:
        sampler.stop()

    lines = [
        line
        for line in out_path.read_text().splitlines()
        if line.startswith("[firing] CustomerAtRisk")
    ]
    assert len(lines) == sent and len(set(lines)) == sent
    # Ten times the alerts: the peak moves by no more than the delivery log's id set
    # (~200 bytes an alert) plus allocator noise.
    assert peaks[1] - peaks[0] < 16 * MiB, [p / MiB for p in peaks]


SECRET = "whsec-overload-1f2e3d4c5b6a"


def event(event_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "type": "review",
            "brand": "northwind-air",
            "text": "Lost my bag again.",
            "rating": 1,
            "created_at": "2026-03-01T09:30:00+00:00",
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {
        "X-Listenwell-Timestamp": str(ts),
        "X-Listenwell-Signature": sign(SECRET, ts, body),
        "Content-Type": "application/json",
    }


def test_the_webhook_answers_503_while_its_broker_is_down_and_stores_everything_it_accepted(
    tmp_path: Path,
) -> None:
    broker = LocalKafka(free_port(), home=tmp_path / "kafka")
    broker.start()
    try:
        create_topics(broker.bootstrap, "hook.")
        raw = topics.topic_name(topics.MENTIONS_RAW, "hook.")
        settings = ApiSettings(kafka_timeout_s=3.0)
        sink = KafkaEventSink(broker.bootstrap, raw, timeout_s=settings.kafka_timeout_s)
        app = make_api(settings, sink, secret=SecretStr(SECRET))
        answers: list[tuple[str, int, str | None, dict[str, Any]]] = []

        async def post(client: TestClient[web.Request, web.Application], event_id: str) -> None:
            body = event(event_id)
            resp = await client.post("/v1/events", data=body, headers=signed(body))
            answers.append(
                (event_id, resp.status, resp.headers.get("Retry-After"), await resp.json())
            )

        async def scenario() -> None:
            async with TestClient(TestServer(app)) as client:
                await post(client, "before-1")
                await asyncio.to_thread(broker.stop)
                await post(client, "during-1")
                await post(client, "during-2")
                metrics = await (await client.get("/metrics")).text()
                answers.append(("metrics", 0, None, {"text": metrics}))
                await asyncio.to_thread(broker.start)
                # The client retries what got 503, as Retry-After tells it to.
                for event_id in ("during-1", "during-2"):
                    for _ in range(20):
                        await post(client, event_id)
                        if answers[-1][1] != 503:
                            break
                        await asyncio.sleep(float(answers[-1][2] or 1))

        asyncio.run(scenario())

        by_status = [(event_id, status, retry) for event_id, status, retry, _ in answers]
        assert by_status[:3] == [
            ("before-1", 202, None),
            ("during-1", 503, "5"),
            ("during-2", 503, "5"),
        ]
        assert answers[1][3] == {"error": "Kafka unavailable"}
        metrics_text = answers[3][3]["text"]
        assert 'listenwell_webhook_requests_total{outcome="unavailable"} 2.0' in metrics_text
        accepted = {event_id for event_id, status, _ in by_status if status == 202}
        assert accepted == {"before-1", "during-1", "during-2"}

        # Everything answered 202 is stored; a 503 answer stored nothing the client must not retry
        # (a record the producer got through after a 503 has the same id, and the worker dedupes).
        stored = [Mention.from_json(v).id for v in read_all(broker.bootstrap, raw)]
        assert {f"webhook:{i}" for i in accepted} == set(stored)
        assert stored.count("webhook:before-1") == 1
    finally:
        broker.stop(wipe=True)
