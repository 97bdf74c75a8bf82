"""``listenwell forget``: erase a person's data from the state listenwell owns (right to erasure).

``listenwell forget --author ID [--customer CID] [--brand B] [--dry-run]``

* ``customers.health`` (compacted): a tombstone for every live entry of the customer (key
  ``<brand>/<customer id>``, in the partition the entry lives in), so compaction removes the
  customer's health history; ``--brand`` narrows it to one brand.
* ``erasures`` (compacted, key = request id): one record of the request and what was done,
  so the erasure itself is on record (``listenwell forget`` prints it too).

What it does not reach, and why, is listed in the record's ``not_covered`` field and in the README
("Right to erasure"): mentions on ``mentions.raw``, ``mentions.scored``, ``mentions.dlq`` and
``alerts`` (delete-policy topics: they age out with their retention), the worker's own tables (the
dedupe set holds only digests of mention ids; example texts in pending alert outboxes age out with
the outbox), and copies outside Kafka (delivered notifications, Prometheus, logs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from services.topic_reader import read_topic
from streams.settings import Settings

NOT_COVERED = (
    "mentions.raw, mentions.scored, mentions.dlq and alerts are delete-policy topics: the "
    "person's mentions there expire with the topics' retention",
    "the worker's brands table keeps digests of mention ids (no text) and up to 64 recent alerts "
    "whose examples may quote the person: they are replaced as new alerts fire",
    "notifications already delivered (Slack, e-mail, webhooks), Prometheus and log files",
)


def scan(bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> dict[bytes, tuple[int, bool]]:
    """Every key of ``topic`` → (its partition, whether its latest value is live, not a tombstone),
    read from the start to the end."""
    return {
        key: (partition, value is not None)
        for partition, key, value in read_topic(bootstrap, topic, timeout_s=timeout_s)
        if key is not None
    }


def customer_keys(
    keys: dict[bytes, tuple[int, bool]], customer: str, brand: str | None
) -> list[tuple[bytes, int]]:
    """Live ``customers.health`` keys (with their partition) of ``customer`` (of ``brand``)."""
    out = []
    for key, (partition, live) in sorted(keys.items()):
        text = key.decode("utf-8", "replace")
        key_brand, _, key_customer = text.partition("/")
        if live and key_customer == customer and (brand is None or key_brand == brand):
            out.append((key, partition))
    return out


def erasure_record(
    author: str, customer: str | None, brand: str | None, tombstones: list[str], at: datetime
) -> dict[str, Any]:
    """The record written to ``erasures`` (``request_id`` is stable for the same request)."""
    request_id = hashlib.sha256(f"{author}\0{customer or ''}\0{brand or ''}".encode()).hexdigest()
    return {
        "request_id": request_id[:32],
        "author": author,
        "customer_id": customer,
        "brand": brand,
        "requested_at": at.isoformat(),
        "done": {"customers.health tombstones": tombstones},
        "not_covered": list(NOT_COVERED),
    }


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Write the tombstones and the erasure record; print what was done."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from streams import topics

    health_topic = topics.topic_name(topics.CUSTOMERS_HEALTH, settings.topic_prefix)
    erasures_topic = topics.topic_name(topics.ERASURES, settings.topic_prefix)
    try:
        targets = (
            customer_keys(scan(settings.kafka_bootstrap, health_topic), args.customer, args.brand)
            if args.customer
            else []
        )
        record = erasure_record(
            args.author,
            args.customer,
            args.brand,
            [key.decode() for key, _ in targets],
            datetime.fromtimestamp(time.time(), UTC),
        )
        if not args.dry_run:
            producer = KafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap.split(","),
                acks="all",
                enable_idempotence=True,
            )
            try:
                for key, partition in targets:
                    producer.send(health_topic, key=key, value=None, partition=partition)
                producer.send(
                    erasures_topic,
                    key=record["request_id"].encode(),
                    value=json.dumps(record, sort_keys=True).encode(),
                )
                producer.flush(timeout=30)
            finally:
                producer.close(timeout=10)
    except KafkaError as exc:
        print(f"listenwell forget: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({**record, "dry_run": args.dry_run}, indent=2, sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``forget``."""
    p = sub.add_parser(
        "forget", help="erase a person's data from listenwell's own state (right to erasure)"
    )
    p.add_argument("--author", required=True, help="the person's author id, as in mentions")
    p.add_argument("--customer", help="their customer id: tombstone their customers.health entries")
    p.add_argument("--brand", help="only this brand's entries of the customer")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    p.set_defaults(func=cmd_forget)
