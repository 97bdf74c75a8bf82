"""The Faust app: ``make_app(settings, stage=...)`` wires the worker's named parts together.

What one process runs (``stage``, docs/topology.md):

- **fused** (the default): one agent over ``mentions.raw`` keyed by brand runs the whole
  :class:`~streams.pipeline.Pipeline` per batch (validate, redact, score, then windows, rules,
  customers, outbox) → ``mentions.scored``, ``mentions.dlq``, ``alerts``, ``customers.health``,
  ``incidents``; the tables are co-partitioned with ``mentions.raw``. ``mentions.scored`` is an
  output only;
- the split deployment, two kinds of process in one consumer group (Faust's assignor groups
  topics by the members subscribed to them):

  - **scoring**: ``mentions.raw`` (keyed by brand, or by mention id so a hot brand's mentions
    spread over every partition: ``LISTENWELL_RAW_KEY``) → validate, redact, score →
    ``mentions.scored`` keyed by brand, ``mentions.dlq``. Stateless;
  - **brands**: ``mentions.scored`` → windows, rules, customers, outbox → ``alerts``,
    ``customers.health``, ``incidents``; the tables are co-partitioned with ``mentions.scored``.

Fused and split processes never share a group (and the brand states say which topic their
offsets count, :class:`~streams.pipeline.StateTopicMismatch`).

Where each part lives:

- ``streams/pipeline.py``: the pure core (:class:`~streams.pipeline.ScoringStage`,
  :class:`~streams.pipeline.BrandStage`), one batch in, records and states out;
- ``streams/agents.py``: the agents and their steps (one batch, end to end);
- ``streams/publish.py``: a batch's records as produce calls (through ``streams/producer.py``);
- ``streams/tables.py``: the ``brands`` and ``customers`` tables and their write order;
- ``streams/offsets.py``: the consumer adapter and recovery of raw records the consumer skipped;
- ``streams/lag.py``: the consumer-lag probe;
- ``streams/watermark_timer.py``: the wall-clock watermark, for live partitions only;
- ``streams/metrics.py``: metric declarations and what a batch adds to them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import faust
from mode.utils.logging import cry
from prometheus_client import CollectorRegistry

from streams import topics
from streams.agents import (
    EXIT_UNEXPECTED,
    BatchStep,
    Process,
    ScoringStep,
    declare_agent,
    declare_timer,
)
from streams.brand_scoring import worker_scorer
from streams.clock import SYSTEM_CLOCK, Clock
from streams.engine import Engine
from streams.faust_app import (
    LeanMonitor,
    ListenwellApp,
    NoStandbyAssignor,
    describe_kafka_clients,
)
from streams.lag import EndOffsets, LagProbe, StallWatchdog
from streams.metrics import WorkerMetrics
from streams.offsets import (
    FaustConsumerPosition,
    SkippedRecordRecovery,
    owned_partitions,
    read_offsets,
)
from streams.pipeline import BrandStage, Pipeline, ScoringStage
from streams.producer import FaustProducer
from streams.publish import OutputTopics, Publisher
from streams.rules import RuleSet, load_rule_paths
from streams.settings import Settings
from streams.table_store import claim_state_dir, store_url
from streams.tables import BrandStore, declare_tables
from streams.watermark_timer import PartitionLiveness, WatermarkTimer

__all__ = [
    "LAG_INTERVAL_S",
    "STAGES",
    "Stage",
    "StageSettingsError",
    "Worker",
    "faust_app",
    "make_app",
]

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 2.0

Stage = Literal["fused", "scoring", "brands"]
STAGES: tuple[Stage, ...] = ("fused", "scoring", "brands")
"""What one worker process runs: the fused worker (the default), or one stage of the split
deployment."""


class StageSettingsError(ValueError):
    """The settings do not fit the stage asked for (raised at start-up)."""


@dataclass
class Worker:
    """The app and the objects tests and the CLI may want to reach."""

    app: faust.App
    pipeline: Pipeline
    metrics: WorkerMetrics
    rules: RuleSet

    def changelog_topics(self) -> list[str]:
        """Names of the worker's table changelog topics (Faust creates them when missing)."""
        tables: Any = self.app.tables
        return sorted(table.changelog_topic.get_topic_name() for table in tables.values())


def make_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    rules: RuleSet | None = None,
    clock: Clock = SYSTEM_CLOCK,
    stage: Stage = "fused",
) -> Worker:
    """Build the streams worker for ``settings`` running ``stage`` (nothing connects until the
    app starts); raises :class:`StageSettingsError` if the settings do not fit ``stage``."""
    if stage == "fused" and settings.raw_key != "brand":
        raise StageSettingsError(
            f"LISTENWELL_RAW_KEY={settings.raw_key}: the fused worker needs mentions.raw keyed "
            "by brand (its brand tables are co-partitioned with mentions.raw); keying by id is "
            "for the split deployment (--stage scoring and --stage brands, docs/topology.md)"
        )
    rules = rules if rules is not None else load_rule_paths(settings.rules_path)
    metrics = WorkerMetrics(registry if registry is not None else CollectorRegistry())
    lateness = timedelta(seconds=settings.allowed_lateness_s)
    scorer = worker_scorer(settings.rules_path)
    engine = Engine(rules, allowed_lateness=lateness)
    pipeline = Pipeline(scorer, engine, clock=clock)
    # The split deployment keeps no standby table copies (see NoStandbyAssignor): a brand process
    # that takes over a partition recovers it from the changelog.
    app = faust_app(settings, standby_tables=stage == "fused", clock=clock)
    sink = FaustProducer(app)
    consumer = FaustConsumerPosition(app)
    watchdog = StallWatchdog(settings.stall_timeout_s, clock)
    publisher = Publisher(sink, OutputTopics.named(settings.topic_prefix), settings.partitions)
    raw_name = topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix)
    if stage == "fused":
        _declare_brand_states(
            app,
            settings,
            "score_mentions",
            raw_name,
            pipeline.process,
            pipeline.brands,
            publisher,
            consumer,
            metrics,
            clock,
            watchdog,
        )
    elif stage == "scoring":
        scoring = ScoringStep(
            ScoringStage(scorer, clock=clock),
            publisher,
            _recovery(settings, raw_name, consumer, metrics),
            metrics,
            watchdog,
        )
        declare_agent(
            app,
            "score_mentions",
            _input_topic(app, raw_name, settings.partitions),
            scoring,
            batch_size=settings.batch_size,
            within_s=settings.batch_within_s,
            clock=clock,
        )
    else:
        brands = BrandStage(engine, clock=clock)
        _declare_brand_states(
            app,
            settings,
            "fold_brands",
            topics.topic_name(topics.MENTIONS_SCORED, settings.topic_prefix),
            brands.process_records,
            brands,
            publisher,
            consumer,
            metrics,
            clock,
            watchdog,
        )

    logical = {topics.topic_name(s, settings.topic_prefix): s.name for s in topics.REGISTRY}
    probe = LagProbe(consumer, EndOffsets(settings.kafka_bootstrap), logical, metrics.consumer_lag)

    def restart_watch(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        watchdog.reset()

    # A rebalance, and the table recovery after it (a minute or more with a large state, see
    # bench/restart.py), leave records waiting with no batch done: not a stall.
    app.on_partitions_assigned.connect(restart_watch)

    @app.timer(interval=LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        lag = await probe.measure()
        if getattr(app, "in_recovery", False) or getattr(app, "rebalancing", False):
            watchdog.reset()
            return
        stalled = watchdog.stalled(lag)
        if stalled:
            evidence = _stall_evidence(app, settings.data_dir, clock)
            log.error(
                "listenwell worker: %s: records waiting and no batch done for %.0f s; exiting "
                "so a restart resumes from the last commit (see StallWatchdog); lag %s; %s",
                ", ".join(stalled),
                settings.stall_timeout_s,
                lag,
                evidence,
            )
            os._exit(EXIT_UNEXPECTED)

    return Worker(app=app, pipeline=pipeline, metrics=metrics, rules=rules)


def _stall_evidence(app: faust.App, data_dir: Path, clock: Clock) -> str:
    """Write what a stalled worker's Kafka clients hold, every thread's stack (mode's SIGUSR1
    dump) and the whole await chain of every task of the worker's and the consumer thread's
    event loops to a file under ``data_dir``; return the clients' state and the file's path, for
    the log line before the worker exits."""
    clients = describe_kafka_clients(app)
    path = data_dir / f"stall-{clock.now():%Y%m%dT%H%M%S}-{os.getpid()}.txt"
    loops = {"worker": asyncio.get_event_loop()}
    consumer_loop = getattr(getattr(app.consumer, "_thread", None), "thread_loop", None)
    if consumer_loop is not None:
        loops["consumer thread"] = consumer_loop
    try:
        with path.open("w") as dump:
            dump.write(clients + "\n\n")
            for name, loop in loops.items():
                dump.write(f"AWAIT CHAINS OF THE {name.upper()} LOOP'S TASKS\n")
                for task in asyncio.all_tasks(loop):
                    dump.write(f"{task.get_name()}\n")
                    for step in await_chain(task):
                        dump.write(f"    {step}\n")
            dump.write("\n")
            cry(file=dump)
    except Exception as exc:
        return f"{clients}\n(task dump not written to {path}: {exc!r})"
    return f"{clients}\ntask dump in {path}"


def await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where ``task`` waits: each coroutine or async generator it is suspended in, outermost
    first, as ``file:line in function``; and what the innermost one awaits. (asyncio's own task
    stack shows only the outermost frame.)"""
    steps: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(steps) < 100:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        frame = frame or getattr(awaited, "gi_frame", None)
        if frame is None:
            steps.append(f"awaits {awaited!r}"[:300])
            break
        code = frame.f_code
        steps.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = (
            getattr(awaited, "cr_await", None)
            or getattr(awaited, "ag_await", None)
            or getattr(awaited, "gi_yieldfrom", None)
        )
    return steps


def _declare_brand_states(
    app: faust.App,
    settings: Settings,
    agent: str,
    input_name: str,
    process: Process,
    stage: BrandStage,
    publisher: Publisher,
    consumer: FaustConsumerPosition,
    metrics: WorkerMetrics,
    clock: Clock,
    watchdog: StallWatchdog,
) -> None:
    """The tables, the agent that feeds ``input_name`` to ``process`` and the wall-clock
    watermark timer: the fused worker (``mentions.raw``, the whole pipeline) or the split
    deployment's brand stage (``mentions.scored``)."""
    brands, customers, seen = declare_tables(app, settings.partitions)
    store = BrandStore(brands, customers, FaustProducer(app), seen)

    def reindex(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        store.forget_index()

    app.on_partitions_assigned.connect(reindex)
    lock, liveness = asyncio.Lock(), PartitionLiveness(settings.live_horizon_s)
    step = BatchStep(
        process,
        stage.input_topic,
        store,
        publisher,
        _recovery(settings, input_name, consumer, metrics),
        metrics,
        lock,
        liveness,
        watchdog,
        counts_ingested=stage.input_topic == topics.MENTIONS_RAW.name,
    )
    declare_agent(
        app,
        agent,
        _input_topic(app, input_name, settings.partitions),
        step,
        batch_size=settings.batch_size,
        within_s=settings.batch_within_s,
        clock=clock,
    )
    if settings.live_horizon_s > 0:
        timer = WatermarkTimer(
            pipeline=stage,
            store=store,
            publisher=publisher,
            liveness=liveness,
            owned=functools.partial(owned_partitions, consumer, input_name),
            allowed_lateness=timedelta(seconds=settings.allowed_lateness_s),
            lock=lock,
            metrics=metrics,
            clock=clock,
        )
        declare_timer(app, settings.watermark_interval_s, timer, liveness)


def _input_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    topic: faust.TopicT = app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )
    return topic


def _recovery(
    settings: Settings, topic: str, consumer: FaustConsumerPosition, metrics: WorkerMetrics
) -> SkippedRecordRecovery:
    return SkippedRecordRecovery(
        topic,
        consumer,
        functools.partial(read_offsets, settings.kafka_bootstrap, topic),
        metrics.skipped_recovered,
    )


def faust_app(
    settings: Settings, *, standby_tables: bool = True, clock: Clock = SYSTEM_CLOCK
) -> faust.App:
    """The Faust app with the worker's consumer, producer and commit settings, on ``clock``;
    ``standby_tables``: other members keep a warm copy of each table partition (Faust's default:
    one), or none (:class:`~streams.faust_app.NoStandbyAssignor`)."""
    extra: dict[str, Any] = {} if standby_tables else {"PartitionAssignor": NoStandbyAssignor}
    return ListenwellApp(
        settings.app_id,
        fetch_max_wait_s=settings.fetch_max_wait_s,
        clock=clock,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store=store_url(settings.table_store),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
        # Batch produce requests: with aiokafka's defaults (no linger, 16 KiB batches) the worker
        # spent ~40% of its time sending tiny requests (py-spy, bench/pipeline.py).
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        # zstd batches (cramjam, level 3): the changelog entries of a batch repeat their JSON
        # field names, so the broker stores ~6x fewer bytes of state (bench/core.py). aiokafka
        # compresses lz4 at level 9 (lz4-HC), ~6x the CPU of zstd for ~20% more bytes
        # (docs/performance.md). Readers of the worker's topics (kafka-python) decode zstd with
        # the zstandard package, and lz4 (records written before) with the lz4 package.
        producer_compression_type="zstd",
        broker_commit_every=settings.batch_size,
        # Faust's default (60 s) keeps a crashed worker's partitions, and a restarted worker that
        # must wait for the dead member to leave the group, idle for a minute. The consumer
        # heartbeats from its own thread, so a busy agent does not make it miss heartbeats.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 3,
        datadir=str(_state_dir(settings)),
        Monitor=LeanMonitor,
        **extra,
    )


def _state_dir(settings: Settings) -> Path:
    """Faust's data dir: with the RocksDB store, a slot of its own (see claim_state_dir)."""
    base = settings.data_dir / "faust" / settings.app_id
    return claim_state_dir(base) if settings.table_store == "rocksdb" else _ensure_dir(base)


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
