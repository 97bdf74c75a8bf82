"""The wall-clock watermark: quiet brands close minutes, resolve alerts and decay customer risk.

A brand's watermark normally moves only with its own mentions (latest event time minus the allowed
lateness), so a brand that goes quiet would keep its alert firing until its next mention. In live
operation the worker also advances every brand it owns to *wall time minus the allowed lateness*
(DESIGN.md, "Time and determinism"), every ``watermark_interval_s``.

Off for replays of old data. A backtest or a replay must give the same alerts at any speed; if
the timer advanced a brand whose event time is far behind the wall clock, every later replayed
mention would be dropped as late. So the timer only advances brands of *live* input partitions
(:class:`PartitionLiveness`): a partition is live once a batch delivered only mentions whose event
time is within ``live_horizon_s`` of the wall clock, and stops being live at the first batch with
one that is not. Liveness is kept in memory and forgotten on every rebalance, so a worker that
starts, or takes over a partition, with a backlog does not advance its brands before it has caught
up. Only partitions this worker actively consumes count (the table also holds standby copies).

Crash and replay. The timer's outputs go through the same publish and store path as a batch, under
the same lock (it never interleaves with a batch on a brand's state). Its alerts are tied to no
input offset, so the outbox/replay mechanism alone could not re-send them for a brand that receives
nothing more: they are published and their **delivery awaited before** the state that records
them is stored, and they enter the brand's outbox at its ``applied_offset``, so a replay of that
offset sends them again. A crash between delivery and the state write leaves the state as it was;
the next run advances it again and repeats the same transitions (the notifier dedupes them by
transition id), unless mentions that were still unprocessed at the crash are now counted first.

:func:`due_brands` and :class:`PartitionLiveness` are the pure decisions; :class:`WatermarkTimer`
is the step the Faust timer runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from streams.clock import Clock
from streams.metrics import WorkerMetrics
from streams.pipeline import BrandRecord, BrandStage
from streams.publish import Publisher
from streams.tables import BrandStore
from streams.windows import floor_minute

__all__ = ["PartitionLiveness", "WatermarkTimer", "due_brands"]

log = logging.getLogger(__name__)


class PartitionLiveness:
    """Which input partitions (of ``mentions.scored``) deliver live mentions (event time within
    ``horizon_s`` of the clock).

    A horizon of 0 turns liveness, and so the timer, off.
    """

    def __init__(self, horizon_s: float) -> None:
        if horizon_s < 0:
            raise ValueError("horizon_s must not be negative")
        self.horizon_s = horizon_s
        self._live: set[int] = set()

    def observe(self, event_lag_s: Mapping[int, float]) -> None:
        """Take one batch's largest event lag per partition
        (:attr:`streams.pipeline.BatchResult.event_lag_s`); partitions it has no mention of keep
        their state."""
        for partition, lag in event_lag_s.items():
            if self.horizon_s > 0 and lag <= self.horizon_s:
                self._live.add(partition)
            else:
                self._live.discard(partition)

    def forget(self) -> None:
        """Mark every partition not live (on a rebalance: this worker may now own a backlog)."""
        self._live.clear()

    @property
    def live(self) -> frozenset[int]:
        return frozenset(self._live)


def due_brands(
    records: Iterable[tuple[str, BrandRecord]], partitions: AbstractSet[int], watermark: datetime
) -> list[str]:
    """Brands of ``partitions`` with at least one minute ``watermark`` would close, sorted.

    Advancing a brand only when a minute closes keeps the changelog writes to one per brand and
    minute at most; within a minute nothing a later mention sees would change.
    """
    target = floor_minute(watermark)
    return sorted(
        brand
        for brand, record in records
        if record.partition in partitions
        and (record.engine.closed_until is None or record.engine.closed_until < target)
    )


class WatermarkTimer:
    """One run of the wall-clock watermark over the brands of live, owned partitions.

    ``owned()`` gives the ``mentions.scored`` partitions this worker actively consumes; ``lock``
    is the lock the brand step holds (see :class:`streams.agents.BrandStep`).
    """

    def __init__(
        self,
        *,
        pipeline: BrandStage,
        store: BrandStore,
        publisher: Publisher,
        liveness: PartitionLiveness,
        owned: Callable[[], AbstractSet[int]],
        allowed_lateness: timedelta,
        lock: asyncio.Lock,
        metrics: WorkerMetrics,
        clock: Clock,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._publisher = publisher
        self._liveness = liveness
        self._owned = owned
        self._allowed_lateness = allowed_lateness
        self._lock = lock
        self._metrics = metrics
        self._clock = clock

    async def tick(self) -> list[str]:
        """Advance the due brands; returns the brands whose state changed."""
        async with self._lock:
            live = self._liveness.live
            partitions = live & self._owned() if live else live
            self._metrics.live_partitions.set(len(partitions))
            if not partitions:
                return []
            watermark = self._clock.now() - self._allowed_lateness
            brands = due_brands(self._store.records(), partitions, watermark)
            if not brands:
                return []
            result = self._pipeline.advance(brands, watermark, self._store.stored)
            deliveries = await self._publisher.publish(result)
            # Delivered before the state that records them is stored: see the module docstring.
            await asyncio.gather(*deliveries)
            await self._store.save(result)
            self._metrics.observe_batch(result)
            self._metrics.watermark_advances.inc(len(result.states))
        if result.alerts:
            log.info(
                "listenwell worker: wall-clock watermark %s: %d alert transition(s) for %s",
                watermark.isoformat(),
                len(result.alerts),
                ", ".join(sorted({a.labels.get("brand", "?") for a in result.alerts})),
            )
        return list(result.states)
