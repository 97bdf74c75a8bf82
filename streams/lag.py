"""The consumer-lag probe: end offset minus committed offset, per topic, into a gauge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from faust.types import TP
from prometheus_client import Gauge

from streams.clock import Clock
from streams.offsets import ConsumerPosition

__all__ = ["EndOffsets", "LagProbe", "StallWatchdog"]

log = logging.getLogger(__name__)

EndOffsetsOf = Callable[[list[TP]], dict[tuple[str, int], int]]
"""Blocking: the end offset of each ``(topic, partition)`` asked about."""


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


class LagProbe:
    """Consumer lag per topic: end offset minus committed offset, summed over the partitions
    this worker is assigned, set on ``gauge`` (labelled by registry name) at each :meth:`measure`.

    ``logical`` maps the topic names this worker reads (prefixed) to their registry names; other
    assigned topics (changelogs) are not measured.

    End offsets are asked of the broker: the high-water mark the consumer caches from fetch
    responses stops moving while fetching is paused for a backlog (the gauge read 25 during a
    burst thousands of records deep). They are asked by a client of their own, in a thread:
    Faust runs its consumer's calls through two worker slots, and a slow ListOffsets request there
    held up commits and fetches.
    """

    def __init__(
        self,
        consumer: ConsumerPosition,
        end_offsets: EndOffsetsOf,
        logical: Mapping[str, str],
        gauge: Gauge,
    ) -> None:
        self._consumer = consumer
        self._end_offsets = end_offsets
        self._logical = logical
        self._gauge = gauge

    async def measure(self) -> dict[str, int]:
        """Set the gauge for every measured topic this worker is assigned, and return the lag by
        registry name; a failure to get the end offsets (a rebalance, a broker restart) leaves
        the gauge as it was until the next call, and returns nothing."""
        assigned = sorted(tp for tp in self._consumer.assignment() if tp.topic in self._logical)
        if not assigned:
            return {}
        try:
            ends = await asyncio.to_thread(self._end_offsets, assigned)
        except Exception:
            log.debug("listenwell worker: end offsets unavailable", exc_info=True)
            return {}
        lag: dict[str, int] = {}
        for tp in assigned:
            topic = self._logical[tp.topic]
            behind = ends.get((tp.topic, tp.partition), 0) - (self._consumer.committed(tp) or 0)
            lag[topic] = lag.get(topic, 0) + max(0, behind)
        for topic, value in lag.items():
            self._gauge.labels(topic).set(value)
        return lag


class StallWatchdog:
    """Tells when one of the worker's inputs has had records waiting, at every measurement, for
    ``patience_s`` (monotonic seconds of ``clock``) with no batch of it completed meanwhile.

    A workaround, not a cure: in ``make chaos``, a brand-stage process restarted after a kill -9
    stopped receiving the records of ``mentions.scored`` after a minute of normal work, with
    nothing logged, in 3 runs of 3 (faust-streaming 0.15.3; the cause is not found, see
    docs/topology.md). The worker then exits (like on any unexpected error) and its supervisor
    restarts it: the restart replays from the last commit, which the effectively-once design makes
    safe. Lag must be seen at every measurement of the window: a reading taken during a rebalance
    (committed offsets not known yet) does not count as a stall on its own.
    """

    def __init__(self, patience_s: float, clock: Clock) -> None:
        self._patience_s = patience_s
        self._clock = clock
        self._progress: dict[str, float] = {}
        self._waiting_since: dict[str, float] = {}

    def reset(self) -> None:
        """Forget every waiting window (a rebalance or a table recovery is under way: records
        wait, and no batch can be done, without a stall)."""
        self._waiting_since.clear()

    def progressed(self, topic: str) -> None:
        """Work on ``topic`` (registry name) advanced: a batch was processed or completed.

        The steps call it when the synchronous core has processed a batch, and again when the
        batch is published and stored. The core runs on the event loop, so the lag check cannot
        run during it, and runs right after: without the first mark, a batch that took longer
        than the patience (a brand's catch-up after a long silence) would be taken for a stall,
        the worker would exit, and its restart would replay the same batch, again and again. A
        batch stuck after its core (waiting on the producer) is still found."""
        self._progress[topic] = self._clock.monotonic()

    def stalled(self, lag: Mapping[str, int]) -> list[str]:
        """The topics (registry names) stalled, given this measurement of their lag (a topic
        left out, or at 0, is not waiting)."""
        if self._patience_s <= 0:
            return []
        now = self._clock.monotonic()
        waiting = self._waiting_since
        for topic in list(waiting):
            if lag.get(topic, 0) <= 0:
                del waiting[topic]
        stalled = []
        for topic, behind in lag.items():
            if behind <= 0:
                continue
            since = max(waiting.setdefault(topic, now), self._progress.get(topic, 0.0))
            if now - since > self._patience_s:
                stalled.append(topic)
        return sorted(stalled)
