"""Erasing a person's data from the state listenwell owns (right to erasure).

:func:`forget` carries out a :class:`ForgetRequest` (the person's author id and/or customer id);
``listenwell forget`` (``services/forget_cli.py``) and ``POST /v1/forget`` on the API
(``services/api.py``) both call it. What it does:

* ``customers.health`` (compacted): a tombstone for every live entry of the customer (key
  ``<brand>/<customer id>``, in the partition the entry lives in), so compaction removes the
  customer's health history; ``--brand`` narrows it to one brand.
* the worker's tables: the person's mentions are looked up on ``mentions.scored`` (by author id,
  and by customer id), and an :class:`~streams.records.ErasureCommand` with their ids and the
  customer id goes to every partition of ``mentions.raw``. Each partition's worker applies it in
  order with the mentions it already holds: every kept copy of those mentions (examples in minute
  buckets and rule states, pending alerts, a customer's recent mentions) and the customer's state
  leave its tables and their changelogs. In the split deployment (docs/topology.md) the scoring
  stage forwards each command to every partition of ``mentions.scored``, after the scored
  mentions that preceded it, and the brand stage applies it there.
* ``erasures`` (compacted, key = request id): one record of the request and what was done,
  so the erasure itself is on record (``listenwell forget`` prints it too).

What it does not reach, and why, is listed in the record's ``not_covered`` field and in
docs/security.md ("Right to erasure"): mentions on ``mentions.raw``, ``mentions.scored``,
``mentions.dlq`` and ``alerts`` (delete-policy topics: they age out with their retention), and
copies outside Kafka (delivered notifications, Prometheus, logs).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.clock import SYSTEM_CLOCK, Clock
from streams.topic_reader import read_topic

NOT_COVERED = (
    "mentions.raw, mentions.scored, mentions.dlq and alerts are delete-policy topics: the "
    "person's mentions there expire with the topics' retention",
    "mentions the person posts after the request, and any older than mentions.scored's retention "
    "(they cannot be looked up by author; the worker keeps examples for hours, not days)",
    "the resolved alert the worker sends for the customer's active at-risk alert names the "
    "customer id; it stays in the worker's outbox of recent alerts until newer alerts replace it",
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


def mention_ids(
    bootstrap: str, topic: str, author: str | None, customer: str | None, brand: str | None
) -> list[str]:
    """Ids of the mentions on ``topic`` (``mentions.scored``) by ``author`` or of ``customer``
    (of ``brand``), in topic order without repeats."""
    from streams.records import ScoredMention

    needles = [n.encode() for n in (author, customer) if n]
    found: dict[str, None] = {}
    for _, _, value in read_topic(bootstrap, topic):
        # Cheap filter before parsing: the id must appear in the record's bytes.
        if value is None or not any(n in value for n in needles):
            continue
        try:
            mention = ScoredMention.from_json(value).mention
        except ValueError:
            continue
        if brand is not None and mention.brand != brand:
            continue
        if (author and mention.author == author) or (customer and mention.customer_id == customer):
            found[mention.id] = None
    return list(found)


def erasure_commands(
    request_id: str, ids: list[str], customer: str | None, brand: str | None
) -> list[bytes]:
    """The :class:`ErasureCommand` values for the worker, ids split in chunks of
    ``MAX_ERASURE_IDS`` (at least one command, which carries the customer id)."""
    from streams.records import MAX_ERASURE_IDS, ErasureCommand

    chunks = [ids[i : i + MAX_ERASURE_IDS] for i in range(0, len(ids), MAX_ERASURE_IDS)] or [[]]
    return [
        ErasureCommand(
            request_id=request_id, mention_ids=tuple(chunk), customer_id=customer, brand=brand
        ).to_json()
        for chunk in chunks
    ]


def erasure_record(
    author: str | None,
    customer: str | None,
    brand: str | None,
    tombstones: list[str],
    at: datetime,
    erased_mentions: int = 0,
) -> dict[str, Any]:
    """The record written to ``erasures`` (``request_id`` is stable for the same request)."""
    request_id = hashlib.sha256(
        f"{author or ''}\0{customer or ''}\0{brand or ''}".encode()
    ).hexdigest()
    return {
        "request_id": request_id[:32],
        "author": author,
        "customer_id": customer,
        "brand": brand,
        "requested_at": at.isoformat(),
        "done": {
            "customers.health tombstones": tombstones,
            "mentions erased from the worker's tables": erased_mentions,
        },
        "not_covered": list(NOT_COVERED),
    }


class ForgetRequest(BaseModel):
    """One erasure request: the person's author id and/or customer id (at least one), optionally
    narrowed to one brand; ``dry_run`` reports what would be done and changes nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    author: str | None = Field(default=None, min_length=1, max_length=200)
    customer: str | None = Field(default=None, min_length=1, max_length=200)
    brand: str | None = Field(default=None, min_length=1, max_length=80)
    dry_run: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _someone(self) -> ForgetRequest:
        if self.author is None and self.customer is None:
            raise ValueError("give an author or a customer (or both)")
        return self


def forget(
    request: ForgetRequest,
    *,
    bootstrap: str,
    prefix: str = "",
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Carry out ``request`` against the broker at ``bootstrap`` (topics under ``prefix``): a
    tombstone for each live ``customers.health`` entry of the customer, the erasure commands for
    the workers on every ``mentions.raw`` partition, then the erasure record on ``erasures``, all
    acknowledged by the broker (acks=all) before this returns. Returns the
    record plus ``dry_run``. ``listenwell forget`` and ``POST /v1/forget`` both call this; it
    blocks, and raises ``kafka.errors.KafkaError`` when Kafka cannot be read or written."""
    from kafka import KafkaProducer

    from streams import topics
    from streams.records import ERASURE_KEY

    health_topic = topics.topic_name(topics.CUSTOMERS_HEALTH, prefix)
    erasures_topic = topics.topic_name(topics.ERASURES, prefix)
    targets = (
        customer_keys(scan(bootstrap, health_topic), request.customer, request.brand)
        if request.customer
        else []
    )
    ids = mention_ids(
        bootstrap,
        topics.topic_name(topics.MENTIONS_SCORED, prefix),
        request.author,
        request.customer,
        request.brand,
    )
    record = erasure_record(
        request.author,
        request.customer,
        request.brand,
        [key.decode() for key, _ in targets],
        clock.now(),
        erased_mentions=len(ids),
    )
    raw_topic = topics.topic_name(topics.MENTIONS_RAW, prefix)
    commands = erasure_commands(record["request_id"], ids, request.customer, request.brand)
    if not request.dry_run:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            acks="all",
            enable_idempotence=True,
        )
        try:
            futures = [
                producer.send(health_topic, key=key, value=None, partition=partition)
                for key, partition in targets
            ]
            for partition in sorted(producer.partitions_for(raw_topic)):
                futures.extend(
                    producer.send(raw_topic, key=ERASURE_KEY, value=command, partition=partition)
                    for command in commands
                )
            futures.append(
                producer.send(
                    erasures_topic,
                    key=record["request_id"].encode(),
                    value=json.dumps(record, sort_keys=True).encode(),
                )
            )
            producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=1)  # raises the delivery's error, if it failed
        finally:
            producer.close(timeout=10)
    return {**record, "dry_run": request.dry_run}
