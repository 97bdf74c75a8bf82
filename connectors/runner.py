"""Run a source into Kafka: pull its pages, optionally pace them by event time, produce them.

``MentionProducer`` wraps kafka-python's ``KafkaProducer`` with the settings the pipeline relies
on (``acks="all"``, idempotence, key = brand, value = ``Mention.to_json()``) and turns client
failures into ``ProducerError`` with a message that names the broker and topic. ``run_source`` is
the loop; its clock and sleep are injected so pacing is testable without waiting. Checkpointing
cursors and running many sources from YAML belong to a later runner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.base import ReportsSkipped, Source
from streams.records import Mention


class ProducerError(RuntimeError):
    """Producing to Kafka failed (broker unreachable, delivery failed or timed out)."""


class MentionSink(Protocol):
    """What ``run_source`` needs from a producer (``MentionProducer`` or a test double)."""

    def send(self, mention: Mention, *, topic: str | None = None) -> None: ...

    def flush(self) -> None: ...


class MentionProducer:
    """Produces ``Mention`` records to Kafka: key = brand (UTF-8), value = the mention's JSON.

    Use as a context manager; leaving the block flushes and closes. ``topic`` is the default topic
    for ``send``. Raises ``ProducerError`` when the broker cannot be reached within
    ``connect_timeout_s`` and, from ``send``/``flush``, when an earlier delivery failed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str | None = None,
        linger_ms: int = 5,
        connect_timeout_s: float = 10.0,
        client_id: str = "listenwell-connector",
        **config: Any,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.sent = 0
        self.delivered = 0
        self._error: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
                bootstrap_timeout_ms=int(connect_timeout_s * 1000),
                **config,
            )
        except KafkaError as exc:
            raise ProducerError(
                f"Kafka broker unreachable at {bootstrap_servers}: {exc} "
                "(is it running? try `make kafka-start`)"
            ) from exc

    def _on_success(self, _metadata: Any) -> None:
        self.delivered += 1

    def _on_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ProducerError(
                f"delivery to Kafka at {self.bootstrap_servers} failed: {self._error}"
            ) from self._error

    def send(self, mention: Mention, *, topic: str | None = None) -> None:
        """Queue one mention for delivery (asynchronous; ``flush`` waits for it)."""
        self._raise_if_failed()
        target = topic or self.topic
        if target is None:
            raise ValueError("no topic: pass topic= here or to MentionProducer()")
        try:
            future = self._producer.send(
                target, value=mention.to_json(), key=mention.brand.encode("utf-8")
            )
        except KafkaError as exc:
            raise ProducerError(
                f"cannot produce to {target!r} at {self.bootstrap_servers}: {exc}"
            ) from exc
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)
        self.sent += 1

    def send_raw(self, topic: str, *, key: bytes | None, value: bytes) -> None:
        """Queue arbitrary bytes (tests and the demo use it to produce malformed records)."""
        self._raise_if_failed()
        future = self._producer.send(topic, value=value, key=key)
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)
        self.sent += 1

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued mention is acknowledged by all in-sync replicas."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise ProducerError(
                f"flush to Kafka at {self.bootstrap_servers} failed after {self.delivered} of "
                f"{self.sent} mentions: {exc}"
            ) from exc
        self._raise_if_failed()

    def close(self, timeout_s: float | None = None) -> None:
        """Flush what is queued and release the connection."""
        self._producer.close(timeout=timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()


@dataclass(frozen=True)
class Progress:
    """A progress report of a running source."""

    produced: int
    seconds: float
    rate: float
    """Mentions per second since the run started."""
    event_time: datetime | None
    """``created_at`` of the latest mention produced."""

    def __str__(self) -> str:
        at = f", event time {self.event_time:%Y-%m-%d %H:%M}Z" if self.event_time else ""
        return f"produced {self.produced:,} in {self.seconds:.0f}s ({self.rate:,.0f}/s){at}"


@dataclass(frozen=True)
class RunStats:
    """The outcome of ``run_source``."""

    produced: int
    skipped: int
    seconds: float


def run_source(
    source: Source,
    producer: MentionSink,
    *,
    topic: str,
    speedup: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[Progress], None] | None = None,
    progress_every: int = 10_000,
    progress_interval_s: float = 1.0,
    poll_interval_s: float = 1.0,
    max_mentions: int | None = None,
) -> RunStats:
    """Pull ``source`` page by page until it is exhausted and produce every mention to ``topic``.

    With ``speedup`` (e.g. ``1000.0`` = a thousand times faster than real time) mentions are paced
    by event time: each is sent ``(created_at - first created_at) / speedup`` seconds after the
    first; without it they are sent as fast as the producer takes them. ``progress`` is called
    every ``progress_every`` mentions or ``progress_interval_s`` seconds, whichever comes first,
    and once at the end. An empty page with a cursor (a live source with nothing new) is polled
    again after ``poll_interval_s``. ``max_mentions`` stops early (for live sources, smoke runs).
    The producer is flushed before returning; its errors propagate as ``ProducerError``.
    """
    if speedup is not None and speedup <= 0.0:
        raise ValueError(f"speedup must be positive, got {speedup}")
    if max_mentions is not None and max_mentions < 0:
        raise ValueError(f"max_mentions must not be negative, got {max_mentions}")
    started = clock()
    produced = 0
    last_report_at, last_report_count = started, 0
    first_event: datetime | None = None
    latest_event: datetime | None = None

    def report(now: float) -> None:
        nonlocal last_report_at, last_report_count
        last_report_at, last_report_count = now, produced
        if progress is not None:
            elapsed = now - started
            rate = produced / elapsed if elapsed > 0 else 0.0
            progress(Progress(produced, elapsed, rate, latest_event))

    cursor: str | None = None
    done = max_mentions == 0
    while not done:
        page, next_cursor = source.fetch(cursor)
        if not page and next_cursor is not None:
            sleep(poll_interval_s)
            cursor = next_cursor
            continue
        for mention in page:
            if speedup is not None:
                if first_event is None:
                    first_event = mention.created_at
                due = started + (mention.created_at - first_event).total_seconds() / speedup
                wait = due - clock()
                # Tiny waits are skipped; the schedule is absolute so they cannot accumulate.
                if wait > 0.001:
                    sleep(wait)
            producer.send(mention, topic=topic)
            produced += 1
            latest_event = mention.created_at
            if progress is not None and (
                produced - last_report_count >= progress_every
                or clock() - last_report_at >= progress_interval_s
            ):
                report(clock())
            if max_mentions is not None and produced >= max_mentions:
                done = True
                break
        cursor = next_cursor
        if cursor is None:
            done = True
    producer.flush()
    finished = clock()
    report(finished)
    skipped = source.skipped if isinstance(source, ReportsSkipped) else 0
    return RunStats(produced=produced, skipped=skipped, seconds=finished - started)
