"""``listenwell forget`` against a real broker: tombstones for the customer's compacted
``customers.health`` entries (in the partitions they live in), the request on ``erasures``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from kafka import KafkaProducer

from services.cli import main
from services.forget_cli import NOT_COVERED, customer_keys, scan
from streams import topics
from tests.integration.harness import Run

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
