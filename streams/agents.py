"""The worker's agents, thin: batches of records → a step → published and stored.

Two steps, in the spirit of arroyo's processing steps:

- :class:`BatchStep`: a batch of the brand states' input → recover any records the consumer
  skipped, run the pure core, publish its records, store the states it changed, count it. The
  fused worker (the default) runs it on ``mentions.raw`` with :meth:`Pipeline.process`
  (scoring and brand stage in one step); the split deployment's brand stage on
  ``mentions.scored`` with :meth:`BrandStage.process_records`. It holds the worker's state lock
  for the whole step, so the wall-clock watermark timer never interleaves with a batch on a
  brand's state;
- :class:`ScoringStep` (split deployment): a batch of ``mentions.raw`` → recover skipped records,
  run the pure :class:`streams.pipeline.ScoringStage`, publish its records to ``mentions.scored``
  and ``mentions.dlq``, count it. Faust commits the raw offsets after the producer has flushed
  them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import faust

from streams.channel_batches import ChannelBatches
from streams.clock import SYSTEM_CLOCK, Clock
from streams.lag import StallWatchdog
from streams.metrics import WorkerMetrics
from streams.offsets import SkippedRecordRecovery
from streams.pipeline import BatchResult, BrandRecord, RawRecord, ScoringStage, StateTopicMismatch
from streams.publish import Publisher
from streams.tables import BrandStore
from streams.topics import MENTIONS_RAW
from streams.watermark_timer import PartitionLiveness, WatermarkTimer

__all__ = [
    "EXIT_CONFIG",
    "EXIT_UNEXPECTED",
    "BatchStep",
    "ScoringStep",
    "declare_agent",
    "declare_timer",
    "raw_records",
]

log = logging.getLogger(__name__)

EXIT_UNEXPECTED = 70
"""Exit status of a worker that stopped on an unexpected error (``EX_SOFTWARE``)."""

EXIT_CONFIG = 78
"""Exit status of a worker whose stored state belongs to another deployment (``EX_CONFIG``, see
:class:`streams.pipeline.StateTopicMismatch`)."""

Process = Callable[
    [Sequence[RawRecord], Callable[[str], BrandRecord | None], Callable[[int], Iterable[str]]],
    BatchResult,
]
"""One batch of input records, the stored states and the brands of a partition → a result:
:meth:`streams.pipeline.Pipeline.process` or :meth:`streams.pipeline.BrandStage.process_records`."""


def raw_records(events: Iterable[Any]) -> list[RawRecord]:
    """Faust events as :class:`RawRecord` (Faust's message timestamp is in epoch seconds)."""
    return [
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


class ScoringStep:
    """One batch of ``mentions.raw``: skipped records recovered, scored, published, counted."""

    def __init__(
        self,
        stage: ScoringStage,
        publisher: Publisher,
        recovery: SkippedRecordRecovery,
        metrics: WorkerMetrics,
        watchdog: StallWatchdog | None = None,
    ) -> None:
        self._stage = stage
        self._publisher = publisher
        self._recovery = recovery
        self._metrics = metrics
        self._watchdog = watchdog

    async def __call__(self, records: list[RawRecord]) -> None:
        """Score ``records`` (in offset order per partition) and queue what they became."""
        metrics = self._metrics
        with metrics.batch_seconds.time():
            records = await self._recovery.with_skipped(records)
            metrics.ingested.inc(len(records))
            result = self._stage.process(records)
            if self._watchdog is not None:
                # A long batch held the event loop: the watchdog's check must not take the wait
                # for it as a stall (see StallWatchdog.progressed).
                self._watchdog.progressed(MENTIONS_RAW.name)
            await self._publisher.publish_scoring(result)
            metrics.observe_batch(result.published())
        if self._watchdog is not None:
            self._watchdog.progressed(MENTIONS_RAW.name)
        if result.erasure_commands:
            log.info(
                "listenwell worker: forwarded %d erasure command(s) to every partition of "
                "mentions.scored",
                len(result.erasure_commands),
            )


class BatchStep:
    """One batch of ``input_topic`` (registry name): skipped records recovered, processed
    (``process``), published, stored, counted; how live each partition is goes to ``liveness``
    (for the wall-clock watermark). ``counts_ingested``: the step counts its records as ingested
    (the fused worker; in the split deployment the scoring step does)."""

    def __init__(
        self,
        process: Process,
        input_topic: str,
        store: BrandStore,
        publisher: Publisher,
        recovery: SkippedRecordRecovery,
        metrics: WorkerMetrics,
        lock: asyncio.Lock,
        liveness: PartitionLiveness | None = None,
        watchdog: StallWatchdog | None = None,
        *,
        counts_ingested: bool = False,
    ) -> None:
        self._process = process
        self._input_topic = input_topic
        self._counts_ingested = counts_ingested
        self._store = store
        self._publisher = publisher
        self._recovery = recovery
        self._metrics = metrics
        self._lock = lock
        self._liveness = liveness
        self._watchdog = watchdog

    async def __call__(self, records: list[RawRecord]) -> None:
        """Process ``records`` (one batch of the input topic, in offset order per partition)."""
        metrics = self._metrics
        async with self._lock:
            with metrics.batch_seconds.time():
                records = await self._recovery.with_skipped(records)
                if self._counts_ingested:
                    metrics.ingested.inc(len(records))
                result = self._process(records, self._store.stored, self._store.brands_in)
                if self._watchdog is not None:
                    # A long batch held the event loop: the watchdog's check must not take the
                    # wait for it as a stall (see StallWatchdog.progressed).
                    self._watchdog.progressed(self._input_topic)
                if self._liveness is not None:
                    self._liveness.observe(result.event_lag_s)
                await self._publisher.publish(result)
                await self._store.save(result)
                metrics.observe_batch(result)
        if self._watchdog is not None:
            self._watchdog.progressed(self._input_topic)
        if result.erasures:
            log.info(
                "listenwell worker: applied %d erasure command(s): %d kept mentions and %d "
                "customers removed",
                result.erasures,
                result.erased_examples,
                result.erased_customers,
            )


Step = Callable[[list[RawRecord]], Awaitable[None]]


@contextmanager
def _exit_on_error() -> Iterator[None]:
    """End the worker process on an error out of the block: ``EXIT_CONFIG`` for state written
    under other topics (:class:`StateTopicMismatch`), ``EXIT_UNEXPECTED`` for anything else.

    Stop hard rather than let Faust restart the agent or timer: the batch in hand is not acked,
    so its offsets are not committed, and the restarted worker replays it.
    """
    try:
        yield
    except StateTopicMismatch as exc:
        log.error("listenwell worker: %s", exc)
        os._exit(EXIT_CONFIG)
    except Exception:
        log.exception("listenwell worker: unexpected error, exiting so nothing is lost")
        os._exit(EXIT_UNEXPECTED)


def declare_agent(
    app: faust.App,
    name: str,
    topic: faust.TopicT,
    step: Step,
    *,
    batch_size: int,
    within_s: float,
    clock: Clock = SYSTEM_CLOCK,
) -> Any:
    """Register the agent ``name`` that feeds ``topic`` to ``step`` in batches of up to
    ``batch_size`` records gathered for up to ``within_s`` seconds (read from the agent's
    channel by :class:`~streams.channel_batches.ChannelBatches`, acked once the step returned).
    """

    @app.agent(topic, name=name)
    async def run_step(stream: Any) -> None:
        # The whole loop is guarded, not only the step: an error Faust throws into the stream
        # (e.g. a ValueDecodeError) comes out of the iteration, and must end the worker too.
        with _exit_on_error():
            async for events in ChannelBatches(stream, batch_size, within_s, clock=clock):
                await step(raw_records(events))

    return run_step


def declare_timer(
    app: faust.App, interval_s: float, timer: WatermarkTimer, liveness: PartitionLiveness
) -> Any:
    """Register the wall-clock watermark (see :mod:`streams.watermark_timer`) every
    ``interval_s`` seconds; like the agent, it stops the worker on an unexpected error. Every
    rebalance marks all partitions not live: it may hand this worker a backlog."""

    def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        liveness.forget()

    app.on_partitions_revoked.connect(forget)
    app.on_partitions_assigned.connect(forget)

    @app.timer(interval=interval_s)  # type: ignore[untyped-decorator]
    async def advance_watermarks() -> None:
        with _exit_on_error():
            await timer.tick()

    return advance_watermarks
