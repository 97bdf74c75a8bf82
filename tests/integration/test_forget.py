"""``listenwell forget`` and ``POST /v1/forget`` against a real broker: tombstones for the
customer's compacted ``customers.health`` entries (in the partitions they live in), the person's
mentions erased from a running worker's tables, the request on ``erasures``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka import KafkaProducer
from pydantic import SecretStr

from connectors.producer import MentionProducer
from services.api import ApiSettings, KafkaEventSink, KafkaForget, make_api
from services.cli import main
from services.erasure import NOT_COVERED, customer_keys, scan
from streams import topics
from streams.records import Mention, MentionKind
from streams.topic_reader import read_topic
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration


def test_forget_tombstones_the_customer_and_records_the_erasure(
    run_factory: Callable[[str], Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_factory("forget")
    health = run.topic(topics.CUSTOMERS_HEALTH)
    producer = KafkaProducer(bootstrap_servers=run.bootstrap, acks="all")
    for key, partition in [(b"acme/c1", 2), (b"globex/c1", 0), (b"acme/c2", 2), (b"acme/c10", 1)]:
        value = json.dumps({"last_mentions": [{"id": "x:1", "text": "call me on +44 20"}]})
        producer.send(health, key=key, value=value.encode(), partition=partition)
    producer.flush()
    producer.close()
    monkeypatch.setenv("LISTENWELL_KAFKA_BOOTSTRAP", run.bootstrap)
    monkeypatch.setenv("LISTENWELL_TOPIC_PREFIX", run.prefix)

    assert main(["forget", "--author", "reddit:abc123", "--customer", "c1", "--dry-run"]) == 0
    assert all(live for _, live in scan(run.bootstrap, health).values())
    capsys.readouterr()

    assert main(["forget", "--author", "reddit:abc123", "--customer", "c1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["done"]["customers.health tombstones"] == ["acme/c1", "globex/c1"]
    keys = scan(run.bootstrap, health)
    assert keys[b"acme/c1"] == (2, False) and keys[b"globex/c1"] == (0, False)
    assert keys[b"acme/c2"] == (2, True) and keys[b"acme/c10"] == (1, True)
    assert customer_keys(keys, "c1", None) == []

    erasures = scan(run.bootstrap, run.topic(topics.ERASURES))
    assert list(erasures) == [printed["request_id"].encode()]
    assert printed["author"] == "reddit:abc123" and printed["not_covered"] == list(NOT_COVERED)


def test_post_v1_forget_on_the_api_does_what_the_cli_does(
    run_factory: Callable[[str], Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_factory("forget-api")
    health = run.topic(topics.CUSTOMERS_HEALTH)
    producer = KafkaProducer(bootstrap_servers=run.bootstrap, acks="all")
    for key, partition in [(b"acme/c7", 1), (b"globex/c7", 3), (b"acme/c8", 1)]:
        value = json.dumps({"last_mentions": [{"id": "x:2", "text": "mail me at a@b.example"}]})
        producer.send(health, key=key, value=value.encode(), partition=partition)
    producer.flush()
    producer.close()
    token = "api-token-integration-4c3b2a19"
    app = make_api(
        ApiSettings(),
        KafkaEventSink(run.bootstrap, run.topic(topics.MENTIONS_RAW)),
        secret=SecretStr("whsec-integration-0d9c8b7a6f5e"),
        token=SecretStr(token),
        forget=KafkaForget(run.bootstrap, run.prefix),
    )
    answers: list[tuple[int, dict[str, Any]]] = []

    async def scenario() -> None:
        async with TestClient(TestServer(app)) as client:
            for headers in ({}, {"Authorization": f"Bearer {token}"}):
                resp = await client.post(
                    "/v1/forget", json={"customer": "c7", "brand": "acme"}, headers=headers
                )
                answers.append((resp.status, await resp.json()))

    asyncio.run(scenario())

    (unauthorized, _), (status, answer) = answers
    assert unauthorized == 401 and status == 202
    assert answer["done"] == {
        "customers.health tombstones": ["acme/c7"],
        "mentions erased from the worker's tables": 0,
    }
    assert answer["author"] is None and answer["dry_run"] is False
    keys = scan(run.bootstrap, health)
    assert keys[b"acme/c7"] == (1, False)
    assert keys[b"globex/c7"] == (3, True) and keys[b"acme/c8"] == (1, True)
    erasures = scan(run.bootstrap, run.topic(topics.ERASURES))
    assert list(erasures) == [answer["request_id"].encode()]

    # The CLI, given the same request, finds nothing left to tombstone and the same request id.
    monkeypatch.setenv("LISTENWELL_KAFKA_BOOTSTRAP", run.bootstrap)
    monkeypatch.setenv("LISTENWELL_TOPIC_PREFIX", run.prefix)
    capsys.readouterr()
    assert main(["forget", "--customer", "c7", "--brand", "acme", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["request_id"] == answer["request_id"]
    assert printed["done"]["customers.health tombstones"] == []


def test_forget_erases_the_persons_mentions_from_a_running_workers_tables(
    run_factory: Callable[[str], Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_factory("forget-worker")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def said(n: int, author: str, text: str, customer: str | None = None) -> Mention:
        at = start + timedelta(seconds=20 * n)
        return Mention(
            id=f"test:{author}-{n}",
            source="test",
            kind=MentionKind.POST,
            brand="acme",
            text=text,
            author=author,
            customer_id=customer,
            created_at=at,
            fetched_at=at,
        )

    person = [
        said(n, "p1", f"Lost my bag {n}417 again, nobody cares, terrible service.", "c-p1")
        for n in range(0, 30, 10)
    ]
    others = [said(n, f"o{n}", "Awful delay, terrible staff, never again.") for n in range(40)]
    with MentionProducer(run.bootstrap) as producer:
        for mention in sorted([*person, *others], key=lambda m: m.created_at):
            producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))
    worker = run.start_worker()
    app_id = f"listenwell-{run.prefix.rstrip('.')}"

    def tables() -> dict[tuple[str, bytes | None], str]:
        latest = {}
        for name in ("brands", "customers"):
            for _, key, value in read_topic(run.bootstrap, f"{app_id}-{name}-changelog"):
                latest[name, key] = value
        return {k: v.decode() for k, v in latest.items() if v is not None}

    def text() -> str:
        return " ".join(tables().values())

    wait_for(
        lambda: "bag 0417" in text() and ("customers", b"acme/c-p1") in tables(),
        what="the person's mentions and customer state in the worker's tables",
    )
    wait_for(
        lambda: any(a.labels.get("customer") == "c-p1" for a in run.alerts()),
        what="CustomerAtRisk firing for c-p1",
    )

    monkeypatch.setenv("LISTENWELL_KAFKA_BOOTSTRAP", run.bootstrap)
    monkeypatch.setenv("LISTENWELL_TOPIC_PREFIX", run.prefix)
    capsys.readouterr()
    assert main(["forget", "--author", "p1", "--customer", "c-p1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["done"]["mentions erased from the worker's tables"] == 3

    wait_for(
        lambda: "Lost my bag" not in text() and ("customers", b"acme/c-p1") not in tables(),
        what="the person's mentions and customer state to leave the worker's tables",
    )
    assert "Awful delay" in text(), "other people's mentions stay"
    assert worker.metric("listenwell_erased_items_total", kind="customer") == 1
    assert worker.metric("listenwell_erased_items_total", kind="mention") >= 3
    last = [a for a in run.alerts() if a.labels.get("customer") == "c-p1"][-1]
    assert last.state == "resolved" and last.examples == (), "no alert left firing for c-p1"
