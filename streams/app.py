"""The Faust app: ``make_app(settings)`` builds the app, its topics, its table and its one agent.

The agent is thin: it batches raw records (``stream.take_events``), hands them to the pure
:class:`streams.pipeline.Pipeline`, stores the brand states it returns and publishes its records.

State lives in a plain Faust table keyed by brand (not a windowed table: see DESIGN.md, "Windows and
state"). The table uses the default partitioner on the brand's bytes, the same murmur2 partitioner
the producers use for ``mentions.raw``'s key, so a brand's state sits in the changelog partition
with the same number as its raw partition and moves with it on a rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
from faust.serializers import codecs
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams import topics
from streams.brand_scoring import scorer_for
from streams.cs_sentiment import CsSentiment
from streams.engine import Engine
from streams.metrics import WorkerMetrics
from streams.pipeline import (
    BatchResult,
    BrandRecord,
    CustomerChanges,
    OffsetGap,
    Pipeline,
    RawRecord,
    find_gaps,
)
from streams.rules import RuleSet, load_rules
from streams.settings import Settings
from streams.state import CustomerState
from streams.topic_reader import read_records

log = logging.getLogger(__name__)


class BrandRecordCodec(codecs.Codec):
    """Table values as JSON on the changelog, as :class:`BrandRecord` objects in memory."""

    def _dumps(self, obj: Any) -> bytes:
        assert isinstance(obj, BrandRecord)
        return obj.to_changelog()

    def _loads(self, s: bytes) -> Any:
        return BrandRecord.from_changelog(s)


class CustomerStateCodec(codecs.Codec):
    """One customer's engine state per table entry (see :class:`BrandRecord`)."""

    def _dumps(self, obj: Any) -> bytes:
        assert isinstance(obj, CustomerState)
        return obj.model_dump_json().encode()

    def _loads(self, s: bytes) -> Any:
        return CustomerState.model_validate_json(s)


codecs.register("listenwell_brand_record", BrandRecordCodec())
codecs.register("listenwell_customer_state", CustomerStateCodec())
CUSTOMER_KEY_SEPARATOR = "/"


@dataclass
class Worker:
    """The app and the objects tests and the CLI may want to reach."""

    app: faust.App
    pipeline: Pipeline
    metrics: WorkerMetrics
    rules: RuleSet


def make_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    rules: RuleSet | None = None,
) -> Worker:
    """Build the streams worker for ``settings`` (nothing connects until the app starts)."""
    rules = rules if rules is not None else load_rules(settings.rules_path)
    metrics = WorkerMetrics(registry if registry is not None else CollectorRegistry())
    pipeline = Pipeline(
        scorer_for(settings.rules_path, sentiment_layer=CsSentiment.load()),
        Engine(rules, allowed_lateness=timedelta(seconds=settings.allowed_lateness_s)),
        now=lambda: datetime.now(UTC),
        epoch_now=lambda: datetime.now(UTC).timestamp(),
    )
    partitions = topics.MENTIONS_RAW.partitions
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
        # Batch produce requests: with aiokafka's defaults (no linger, 16 KiB batches) the worker
        # spent ~40% of its time sending tiny requests (py-spy, bench/pipeline.py).
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        broker_commit_every=settings.batch_size,
        # Faust's default (60 s) keeps a crashed worker's partitions, and a restarted worker that
        # must wait for the dead member to leave the group, idle for a minute. The consumer
        # heartbeats from its own thread, so a busy agent does not make it miss heartbeats.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 3,
        datadir=str(_ensure_dir(settings.data_dir / "faust" / settings.app_id)),
    )

    def name(spec: topics.TopicSpec) -> str:
        return topics.topic_name(spec, settings.topic_prefix)

    def declare(spec: topics.TopicSpec) -> faust.TopicT:
        return app.topic(
            name(spec),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec.partitions,
            internal=False,
        )

    raw_topic = declare(topics.MENTIONS_RAW)
    scored_topic = declare(topics.MENTIONS_SCORED)
    dlq_topic = declare(topics.MENTIONS_DLQ)
    alerts_topic = declare(topics.ALERTS)
    customers_topic = declare(topics.CUSTOMERS_HEALTH)
    incidents_topic = declare(topics.INCIDENTS)

    # Keys are the brand's UTF-8 bytes, exactly the raw topic's message key: same partitioner, same
    # partition, and the same type before and after recovery from the changelog.
    brands = _table(app, "brands", partitions, "listenwell_brand_record", use_partitioner=True)
    # Customers live in the partition of their brand's raw records, written explicitly with that
    # partition number (their own key would hash elsewhere).
    customers = _table(app, "customers", partitions, "listenwell_customer_state")

    def stored(brand: str) -> BrandRecord | None:
        record: BrandRecord | None = brands.get(brand.encode())
        if record is not None and not record.customers_attached:
            prefix = (brand + CUSTOMER_KEY_SEPARATOR).encode()
            record.attach_customers(
                {
                    key[len(prefix) :].decode(): state
                    for key, state in customers.data.items()
                    if key.startswith(prefix)
                }
            )
        return record

    def brands_in(partition: int) -> list[str]:
        return [
            key.decode() for key, record in brands.data.items() if record.partition == partition
        ]

    async def store(
        table: Any, key: bytes, value: Any, payload: bytes | None, partition: int | None
    ) -> None:
        """Set (or, with ``value`` None, delete) a table entry and write it to the changelog.

        The write goes through the app's producer and is awaited, like every other output, so the
        producer flush that precedes each offset commit covers it. Faust's own table writes
        (``send_soon``) sit in a buffer whose flush gives up after 0.1 s without progress, so a
        commit can overtake them and a kill -9 then loses state for committed records.
        """
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        await app.producer.send(
            table.changelog_topic.get_topic_name(),
            key,
            payload,
            partition=partition,
            timestamp=None,
            headers=None,
        )

    async def store_customers(brand: str, changes: CustomerChanges) -> None:
        prefix = brand + CUSTOMER_KEY_SEPARATOR
        for customer_id, state in changes.upserts.items():
            key = (prefix + customer_id).encode()
            payload = state.model_dump_json().encode()
            await store(customers, key, state, payload, changes.partition)
        for customer_id in changes.deletes:
            key = (prefix + customer_id).encode()
            await store(customers, key, None, None, changes.partition)

    async def send(topic: faust.TopicT, key: bytes, value: bytes) -> None:
        # Straight to the app's producer: Faust's Topic.send adds a future and a channel hop per
        # record (~15% of the worker's time). Same producer, so Faust still flushes it before it
        # commits offsets.
        await app.producer.send(
            topic.get_topic_name(), key, value, partition=None, timestamp=None, headers=None
        )

    async def publish(result: BatchResult) -> None:
        for letter in result.dead_letters:
            await send(dlq_topic, letter.topic.encode(), letter.to_json())
            metrics.dead_lettered.labels(letter.reason).inc()
        for scored in result.scored:
            mention = scored.mention
            await send(scored_topic, mention.brand.encode(), scored.to_json())
            metrics.scored.labels(
                metrics.brand(mention.brand), metrics.source(mention.source), scored.sentiment.label
            ).inc()
            metrics.compound.labels(metrics.brand(mention.brand)).observe(scored.sentiment.compound)
            metrics.empathy.labels(metrics.brand(mention.brand)).observe(scored.empathy.score)
            metrics.compound_sum.labels(metrics.brand(mention.brand)).inc(scored.sentiment.compound)
            metrics.empathy_sum.labels(metrics.brand(mention.brand)).inc(scored.empathy.score)
            if scored.pii_redacted:
                metrics.pii_redactions.inc(scored.pii_redacted)
        for alert in result.alerts:
            await send(alerts_topic, alert.fingerprint.encode(), alert.to_json())
            metrics.alerts.labels(alert.alertname, alert.state).inc()
        for health in result.customers:
            key = f"{health.brand}/{health.customer_id}".encode()
            await send(customers_topic, key, health.to_json())
        for incident in result.incidents:
            await send(incidents_topic, incident.id.encode(), incident.to_json())
        metrics.observe_incidents(result.incidents)
        # Customers before their brand: if a crash keeps only some of these writes, a customer
        # ahead of its brand record is harmless (the engine skips mentions a customer already
        # holds when the batch is replayed); the reverse would lose those mentions.
        for brand, changes in result.customer_changes.items():
            await store_customers(brand, changes)
        for brand, state in result.states.items():
            # partition None: the producer's murmur2 partitioner on the brand key, as for raw.
            await store(brands, brand.encode(), state, state.to_changelog(), None)
        metrics.deduplicated.inc(result.duplicates)
        metrics.erased.labels("mention").inc(result.erased_examples)
        metrics.erased.labels("customer").inc(result.erased_customers)
        if result.erasures:
            log.info(
                "listenwell worker: applied %d erasure command(s): %d kept mentions and %d "
                "customers removed",
                result.erasures,
                result.erased_examples,
                result.erased_customers,
            )
        metrics.late.inc(result.late)
        for latency in result.latencies:
            metrics.latency.observe(latency)

    @app.agent(raw_topic)
    async def score_mentions(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
            try:
                await process(events)
            except Exception:
                # Faust acks a batch even when the agent raises, which would lose it. Stop hard
                # instead: the batch's offsets are not committed, and a restart replays it.
                log.exception("listenwell worker: unexpected error, exiting so nothing is lost")
                os._exit(70)

    logical = {name(spec): spec.name for spec in topics.REGISTRY}

    def committed_offset(tp: TP) -> int | None:
        """The group's committed offset (the next to read) as Faust last saw it, or None."""
        consumer: Any = app.consumer
        offset: int | None = consumer._committed_offset.get(tp)
        return offset

    end_offsets = EndOffsets(settings.kafka_bootstrap)

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        """Consumer lag per topic: end offset minus committed offset, summed over the partitions
        this worker is assigned.

        End offsets are asked of the broker: the high-water mark the consumer caches from fetch
        responses stops moving while fetching is paused for a backlog (the gauge read 25 during
        a burst thousands of records deep). They are asked by a client of their own, in a thread:
        Faust runs its consumer's calls through two worker slots, and a slow ListOffsets request
        there held up commits and fetches.
        """
        consumer: Any = app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic in logical]
        if not assigned:
            return
        try:
            ends = await asyncio.to_thread(end_offsets, assigned)
        except Exception:  # a rebalance or a broker restart: measure again next time
            log.debug("listenwell worker: end offsets unavailable", exc_info=True)
            return
        lag: dict[str, int] = {}
        for tp in assigned:
            topic = logical[tp.topic]
            behind = ends.get((tp.topic, tp.partition), 0) - (committed_offset(tp) or 0)
            lag[topic] = lag.get(topic, 0) + max(0, behind)
        for topic, value in lag.items():
            metrics.consumer_lag.labels(topic).set(value)

    raw_name = name(topics.MENTIONS_RAW)
    next_offsets: dict[int, int] = {}

    def raw_committed(partition: int) -> int | None:
        return committed_offset(TP(raw_name, partition))

    async def with_skipped(records: list[RawRecord]) -> list[RawRecord]:
        """``records``, preceded by any raw records the consumer skipped (see
        :func:`streams.pipeline.find_gaps`), read back from the topic directly."""
        gaps = find_gaps(records, next_offsets, raw_committed)
        if not gaps:
            return records
        for gap in gaps:
            log.warning(
                "listenwell worker: offsets %d-%d of %s partition %d never reached the agent; "
                "reading them directly",
                gap.start,
                gap.end - 1,
                raw_name,
                gap.partition,
            )
        recovered = await asyncio.to_thread(read_offsets, settings.kafka_bootstrap, raw_name, gaps)
        metrics.skipped_recovered.inc(len(recovered))
        return recovered + records

    async def process(events: list[Any]) -> None:
        with metrics.batch_seconds.time():
            records = [
                RawRecord(
                    topic=event.message.topic,
                    partition=event.message.partition,
                    offset=event.message.offset,
                    key=event.message.key,
                    value=event.message.value,
                    produced_at=event.message.timestamp,
                )
                for event in events
            ]
            records = await with_skipped(records)
            metrics.ingested.inc(len(records))
            result = pipeline.process(records, stored, brands_in)
            await publish(result)

    return Worker(app=app, pipeline=pipeline, metrics=metrics, rules=rules)


class EndOffsets:
    """End offsets of topic partitions from a plain kafka-python client, outside any group,
    created on first use and kept for the process. Blocking: call it in a thread."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._client: Any = None

    def __call__(self, partitions: list[TP]) -> dict[tuple[str, int], int]:
        from kafka import KafkaConsumer, TopicPartition

        if self._client is None:
            self._client = KafkaConsumer(
                bootstrap_servers=self._bootstrap.split(","),
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=15_000,
            )
        ends = self._client.end_offsets(
            [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        )
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


def read_offsets(
    bootstrap: str, topic: str, gaps: list[OffsetGap], *, patience_s: float = 60.0
) -> list[RawRecord]:
    """The records of ``topic`` in ``gaps``, read outside the consumer group.

    Raises ``TimeoutError`` if not all of them arrive (a poll waited ``patience_s`` for nothing);
    the agent then exits without acking its batch, so a restart replays it.
    """
    wanted = {(gap.partition, offset) for gap in gaps for offset in range(gap.start, gap.end)}
    ranges: dict[int, tuple[int, int]] = {}
    for gap in gaps:
        start, end = ranges.get(gap.partition, (gap.start, gap.end))
        ranges[gap.partition] = (min(start, gap.start), max(end, gap.end))
    records = [
        RawRecord(
            topic=topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            produced_at=message.timestamp / 1000.0,
        )
        for message in read_records(bootstrap, topic, ranges, timeout_s=patience_s)
        if (message.partition, message.offset) in wanted
    ]
    if len(records) < len(wanted):
        raise TimeoutError(f"read {len(records)} of the {len(wanted)} skipped records of {topic}")
    return records


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _table(
    app: faust.App, name: str, partitions: int, value_codec: str, *, use_partitioner: bool = False
) -> Any:
    """A table with raw byte keys and values in ``value_codec``, on the changelog and on recovery.

    Faust derives a table's serializers from key_type/value_type only (json otherwise) and builds
    the changelog topic, which also decodes it on recovery, in the constructor: set both here.
    """
    table: Any = app.Table(name, partitions=partitions, use_partitioner=use_partitioner)
    table.key_serializer = "raw"
    table.value_serializer = value_codec
    changelog: Any = table.changelog_topic
    changelog.key_serializer = changelog.schema.key_serializer = "raw"
    changelog.value_serializer = changelog.schema.value_serializer = value_codec
    return table
