"""The worker's agent, thin: raw records in batches → :class:`BatchStep` → published and stored.

:class:`BatchStep` is one step per batch, in the spirit of arroyo's processing steps: recover any
records the consumer skipped, run the pure :class:`streams.pipeline.Pipeline`, publish its records,
store the states it changed, count it. It holds the worker's state lock for the whole step, so the
wall-clock watermark timer never interleaves with a batch on a brand's state.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

import faust

from streams.metrics import WorkerMetrics
from streams.offsets import SkippedRecordRecovery
from streams.pipeline import Pipeline, RawRecord
from streams.publish import Publisher
from streams.tables import BrandStore
from streams.watermark_timer import PartitionLiveness, WatermarkTimer

__all__ = ["EXIT_UNEXPECTED", "BatchStep", "declare_agent", "declare_timer", "raw_records"]

log = logging.getLogger(__name__)

EXIT_UNEXPECTED = 70
"""Exit status of a worker that stopped on an unexpected error (``EX_SOFTWARE``)."""


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


class BatchStep:
    """One batch: skipped records recovered, processed, published, stored, counted; how live
    each raw partition is goes to ``liveness`` (for the wall-clock watermark)."""

    def __init__(
        self,
        pipeline: Pipeline,
        store: BrandStore,
        publisher: Publisher,
        recovery: SkippedRecordRecovery,
        metrics: WorkerMetrics,
        lock: asyncio.Lock,
        liveness: PartitionLiveness | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._publisher = publisher
        self._recovery = recovery
        self._metrics = metrics
        self._lock = lock
        self._liveness = liveness

    async def __call__(self, records: list[RawRecord]) -> None:
        """Process ``records`` (one batch of ``mentions.raw``, in offset order per partition)."""
        metrics = self._metrics
        async with self._lock:
            with metrics.batch_seconds.time():
                records = await self._recovery.with_skipped(records)
                metrics.ingested.inc(len(records))
                result = self._pipeline.process(records, self._store.stored, self._store.brands_in)
                if self._liveness is not None:
                    self._liveness.observe(result.event_lag_s)
                await self._publisher.publish(result)
                await self._store.save(result)
                metrics.observe_batch(result)
        if result.erasures:
            log.info(
                "listenwell worker: applied %d erasure command(s): %d kept mentions and %d "
                "customers removed",
                result.erasures,
                result.erased_examples,
                result.erased_customers,
            )


def declare_agent(
    app: faust.App, raw_topic: faust.TopicT, step: BatchStep, *, batch_size: int, within_s: float
) -> Any:
    """Register the agent that feeds ``raw_topic`` to ``step`` in batches of up to
    ``batch_size`` records or ``within_s`` seconds."""

    @app.agent(raw_topic)
    async def score_mentions(stream: Any) -> None:
        async for events in stream.take_events(batch_size, within=within_s):
            try:
                await step(raw_records(events))
            except Exception:
                # Faust acks a batch even when the agent raises, which would lose it. Stop hard
                # instead: the batch's offsets are not committed, and a restart replays it.
                log.exception("listenwell worker: unexpected error, exiting so nothing is lost")
                os._exit(EXIT_UNEXPECTED)

    return score_mentions


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
        try:
            await timer.tick()
        except Exception:
            log.exception("listenwell worker: unexpected error, exiting so nothing is lost")
            os._exit(EXIT_UNEXPECTED)

    return advance_watermarks
