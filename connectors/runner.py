"""The connector runtime: one ``InstanceRunner`` polls one source into Kafka.

Every way of running a source goes through it: ``listenwell connect`` runs one per configured
instance under a ``connectors.supervisor.Supervisor`` (checkpoints in Kafka), and
:func:`run_source` (``listenwell simulate``, ``listenwell replay``, the demo) runs one source to its
end (checkpoints in memory, since such a run never resumes).

One ``InstanceRunner.step()`` is one poll::

    fetch(cursor) -> produce the page to mentions.raw -> flush (acks=all) -> save the next cursor

The cursor is saved only after the broker acknowledged every mention of the page. A crash in
between re-fetches the page on restart; mention ids are stable and the worker dedupes them, so
every item is scored exactly once in effect. With ``speedup`` the mentions of a page are paced by
event time (``connectors.pacing``).

What a step does on failure:

* ``RateLimited`` waits as long as the service asked (``retry_after_s``), or backs off if unsaid;
* ``TransientError``, a Kafka failure or an unexpected error backs off exponentially with jitter
  (``delay = d/2 + uniform(0, d/2)``, ``d = min(cap, base * 2**(failures - 1))``);
* ``AuthError`` marks the instance failed and retries rarely (``auth_retry_s``);
* after ``BackoffPolicy.give_up_after`` failed steps in a row the error is raised instead
  (one-shot runs give up on the first, as a command line tool should).

``step()`` returns how long to wait before the next one, so tests drive it with no thread; time
comes from an injected ``streams.clock.Clock``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.base import AuthError, RateLimited, ReportsSkipped, Source, TransientError
from connectors.checkpoints import Checkpoint, MemoryStateStore, StateStore
from connectors.pacing import EventTimePacer
from connectors.producer import MentionSink, ProducerError
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Mention

log = logging.getLogger("listenwell.connectors")

OUTCOMES = ("ok", "rate_limited", "transient_error", "auth_error", "kafka_error", "error")
"""Values of the ``outcome`` label of ``listenwell_connector_fetches_total``."""


class ConnectorMetrics:
    """The runner's metrics; instance names come from the config file, so labels stay bounded."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.fetches = Counter(
            "listenwell_connector_fetches_total",
            "Fetches from a source, by outcome",
            ["source", "instance", "outcome"],
            registry=self.registry,
        )
        self.produced = Counter(
            "listenwell_connector_mentions_produced_total",
            "Mentions produced to mentions.raw and acknowledged by the broker",
            ["source", "instance"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "listenwell_connector_items_skipped_total",
            "Items a source could not turn into mentions (malformed input)",
            ["source", "instance"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "listenwell_connector_last_success_timestamp_seconds",
            "Unix time of the last successful fetch (freshness = time() - this)",
            ["instance"],
            registry=self.registry,
        )
        self.backoff = Gauge(
            "listenwell_connector_backoff_seconds",
            "Current wait before the next attempt after a failure (0 when healthy)",
            ["instance"],
            registry=self.registry,
        )


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait after failures, and when to stop trying."""

    base_s: float = 1.0
    cap_s: float = 300.0
    auth_retry_s: float = 900.0
    """Wait after an ``AuthError`` (credentials rarely fix themselves)."""
    give_up_after: int | None = None
    """Failed steps in a row after which the step raises the error (``None``: never)."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with equal jitter: in ``[d/2, d]``, ``d`` capped at ``cap_s``."""
        exponent = min(max(failures, 1) - 1, 62)
        d = min(self.cap_s, self.base_s * 2.0**exponent)
        return d / 2.0 + rng.uniform(0.0, d / 2.0)


ONE_SHOT = BackoffPolicy(give_up_after=1)
"""The policy of a one-shot run: the first failure is raised to the caller."""


@dataclass
class InstanceStatus:
    """What an instance is doing, for the progress line."""

    name: str
    kind: str
    state: str = "starting"
    """starting, running, idle, rate_limited, backoff, failed, done or stopped."""
    produced: int = 0
    fetches: int = 0
    cursor: str | None = None
    last_success: float | None = None
    last_error: str | None = None
    wait_s: float = 0.0

    def line(self, now: float) -> str:
        """One human-readable line (never holds secrets: only names, counts and messages)."""
        cursor = "-" if self.cursor is None else self.cursor
        if len(cursor) > 24:
            cursor = cursor[:21] + "..."
        fresh = "never" if self.last_success is None else f"{now - self.last_success:.0f}s ago"
        text = (
            f"{self.name} [{self.kind}] {self.state}: {self.produced} produced, "
            f"cursor {cursor}, last ok {fresh}"
        )
        if self.state in ("rate_limited", "backoff", "failed"):
            text += f", retry in {self.wait_s:.1f}s"
        if self.last_error and self.state != "done":
            text += f" — {self.last_error}"
        return text


SinkFactory = Callable[[str], MentionSink]
"""Makes the producer of one instance (called lazily, again after a Kafka failure)."""


class InstanceRunner:
    """Polls one source: ``step()`` = fetch, produce, flush, checkpoint; returns the next wait.

    ``stop`` is the event that ends a pacing wait early (the supervisor sets its own); with
    ``flush_each_page=False`` pages are not flushed before their checkpoint, for stores that do not
    outlive the process (the caller flushes at the end).
    """

    def __init__(
        self,
        name: str,
        kind: str,
        source: Source,
        *,
        sink_factory: SinkFactory,
        state: StateStore,
        topic: str,
        metrics: ConnectorMetrics,
        interval_s: float = 60.0,
        speedup: float | None = None,
        policy: BackoffPolicy | None = None,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
        stop: threading.Event | None = None,
        flush_each_page: bool = True,
    ) -> None:
        self.name = name
        self.kind = kind
        self.source = source
        self.sink_factory = sink_factory
        self.state = state
        self.topic = topic
        self.metrics = metrics
        self.interval_s = interval_s
        self.pacer = None if speedup is None else EventTimePacer(speedup, clock)
        self.policy = policy or BackoffPolicy()
        self.rng = rng or random.Random()
        self.clock = clock
        self.stop = stop or threading.Event()
        self.flush_each_page = flush_each_page
        self.status = InstanceStatus(name, kind)
        self.cursor: str | None = None
        self.done = False
        self.failures = 0
        """Failures since the last success that back off (they grow the next delay)."""
        self.failed_steps = 0
        """Steps in a row that failed, whatever the reason (for ``give_up_after``)."""
        self._sink: MentionSink | None = None
        self._skipped_seen = 0

    def resume(self, checkpoint: Checkpoint | None) -> None:
        """Continue from a saved checkpoint (``None``: from the beginning)."""
        if checkpoint is None:
            return
        self.cursor = checkpoint.cursor
        self.status.cursor = checkpoint.cursor
        if checkpoint.exhausted:
            self.done = True
            self.status.state = "done"

    def _count(self, outcome: str) -> None:
        self.metrics.fetches.labels(self.kind, self.name, outcome).inc()

    def _fail(self, exc: Exception, state: str, outcome: str, message: str, wait_s: float) -> float:
        """Record a failed step; raise ``exc`` when the policy gives up, else return the wait."""
        self._count(outcome)
        self.failed_steps += 1
        self.status.state = state
        self.status.last_error = message
        self.status.wait_s = wait_s
        self.metrics.backoff.labels(self.name).set(wait_s)
        give_up = self.policy.give_up_after
        if give_up is not None and self.failed_steps >= give_up:
            raise exc
        return wait_s

    def _backoff(self, exc: Exception, state: str, outcome: str, message: str) -> float:
        self.failures += 1
        wait_s = self.policy.delay(self.failures, self.rng)
        return self._fail(exc, state, outcome, message, wait_s)

    def step(self) -> float:
        """One poll; returns seconds to wait before the next (``math.inf`` when finished)."""
        if self.done:
            return math.inf
        self.status.fetches += 1
        try:
            page, next_cursor = self.source.fetch(self.cursor)
        except RateLimited as exc:
            if exc.retry_after_s is None:
                return self._backoff(exc, "rate_limited", "rate_limited", f"rate limited: {exc}")
            wait_s = max(exc.retry_after_s, 0.0)
            return self._fail(exc, "rate_limited", "rate_limited", f"rate limited: {exc}", wait_s)
        except TransientError as exc:
            return self._backoff(exc, "backoff", "transient_error", f"transient error: {exc}")
        except AuthError as exc:
            message = f"credentials refused ({exc}); fix the settings and restart"
            wait_s = self._fail(exc, "failed", "auth_error", message, self.policy.auth_retry_s)
            log.error("%s: credentials refused: %s", self.name, exc)
            return wait_s
        except Exception as exc:  # a bug or bad cursor in one source must not stop the others
            wait_s = self._backoff(exc, "backoff", "error", f"{type(exc).__name__}: {exc}")
            log.warning("%s: fetch failed: %s: %s", self.name, type(exc).__name__, exc)
            return wait_s
        self._count_skipped()
        try:
            stopped = self._produce(page)
            if stopped:
                self.status.state = "stopped"
                return math.inf
            exhausted = next_cursor is None
            saved = self.cursor if exhausted else next_cursor
            self.state.save(self.name, Checkpoint(saved, self.clock.now(), exhausted))
        except ProducerError as exc:
            self.close()
            return self._backoff(exc, "backoff", "kafka_error", str(exc))
        self._succeeded(len(page))
        if next_cursor is None:
            self.done = True
            self.status.state = "done"
            return math.inf
        self.cursor = next_cursor
        self.status.cursor = next_cursor
        if page:
            self.status.state = "running"
            return 0.0
        self.status.state = "idle"
        return self.interval_s

    def _succeeded(self, produced: int) -> None:
        now = self.clock.time()
        self._count("ok")
        self.metrics.produced.labels(self.kind, self.name).inc(produced)
        self.metrics.last_success.labels(self.name).set(now)
        self.metrics.backoff.labels(self.name).set(0.0)
        self.failures = 0
        self.failed_steps = 0
        self.status.produced += produced
        self.status.last_success = now
        self.status.last_error = None
        self.status.wait_s = 0.0

    def close(self) -> None:
        """Release this instance's producer (a new one is made when needed)."""
        sink, self._sink = self._sink, None
        close = getattr(sink, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing a broken producer must not hide the first error
                log.debug("%s: closing the producer failed: %s", self.name, exc)

    def _count_skipped(self) -> None:
        skipped = getattr(self.source, "skipped", 0)
        if isinstance(skipped, int) and skipped > self._skipped_seen:
            self.metrics.skipped.labels(self.kind, self.name).inc(skipped - self._skipped_seen)
            self._skipped_seen = skipped

    def _produce(self, page: list[Mention]) -> bool:
        """Send and flush a page; True if a stop interrupted pacing (nothing is checkpointed)."""
        if not page:
            return False
        if self._sink is None:
            self._sink = self.sink_factory(self.name)
        sink = self._sink
        self.status.state = "running"
        for mention in page:
            if self.pacer is not None:
                delay = self.pacer.delay(mention.created_at)
                if delay > 0 and self.clock.wait(self.stop, delay):
                    sink.flush()
                    return True
            sink.send(mention, topic=self.topic)
        if self.flush_each_page:
            sink.flush()
        return False


# --- one source to its end ------------------------------------------------------------------------


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


class _MeteredSink:
    """Passes mentions on to the caller's producer, counting them and reporting progress.

    It has no ``close``: the caller owns the producer, so the runner never closes it.
    """

    def __init__(
        self,
        sink: MentionSink,
        clock: Clock,
        progress: Callable[[Progress], None] | None,
        every: int,
        interval_s: float,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._progress = progress
        self._every = every
        self._interval_s = interval_s
        self.started = clock.monotonic()
        self.produced = 0
        self.latest: datetime | None = None
        self._reported_at, self._reported_count = self.started, 0

    def send(self, mention: Mention, *, topic: str | None = None) -> None:
        self._sink.send(mention, topic=topic)
        self.produced += 1
        self.latest = mention.created_at
        if self._progress is not None and (
            self.produced - self._reported_count >= self._every
            or self._clock.monotonic() - self._reported_at >= self._interval_s
        ):
            self.report()

    def flush(self) -> None:
        self._sink.flush()

    def report(self) -> float:
        """Report progress now; returns the seconds since the run started."""
        now = self._clock.monotonic()
        self._reported_at, self._reported_count = now, self.produced
        elapsed = now - self.started
        if self._progress is not None:
            rate = self.produced / elapsed if elapsed > 0 else 0.0
            self._progress(Progress(self.produced, elapsed, rate, self.latest))
        return elapsed


class _FirstMentions:
    """``source`` cut after ``limit`` mentions (its last page then has a ``None`` cursor)."""

    def __init__(self, source: Source, limit: int) -> None:
        self.name = source.name
        self._source = source
        self._left = limit

    @property
    def skipped(self) -> int:
        return self._source.skipped if isinstance(self._source, ReportsSkipped) else 0

    def check(self) -> list[str]:
        return self._source.check()

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        if self._left <= 0:
            return [], None
        page, next_cursor = self._source.fetch(cursor)
        if len(page) >= self._left:
            page, next_cursor = page[: self._left], None
        self._left -= len(page)
        return page, next_cursor


def run_source(
    source: Source,
    producer: MentionSink,
    *,
    topic: str,
    speedup: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    progress: Callable[[Progress], None] | None = None,
    progress_every: int = 10_000,
    progress_interval_s: float = 1.0,
    poll_interval_s: float = 1.0,
    max_mentions: int | None = None,
) -> RunStats:
    """Run ``source`` to its end through an ``InstanceRunner`` and produce every mention to
    ``topic`` (checkpoints in memory: such a run starts from the beginning).

    With ``speedup`` (e.g. ``1000.0`` = a thousand times faster than real time) mentions are paced
    by event time; without it they are sent as fast as the producer takes them. ``progress`` is
    called every ``progress_every`` mentions or ``progress_interval_s`` seconds, whichever comes
    first, and once at the end. An empty page with a cursor (a live source with nothing new) is
    polled again after ``poll_interval_s``. ``max_mentions`` stops early (live sources, smoke
    runs). The producer is flushed before returning; the first failure is raised (a
    ``ProducerError`` from Kafka, or what the source raised).
    """
    if speedup is not None and speedup <= 0.0:
        raise ValueError(f"speedup must be positive, got {speedup}")
    if max_mentions is not None and max_mentions < 0:
        raise ValueError(f"max_mentions must not be negative, got {max_mentions}")
    meter = _MeteredSink(producer, clock, progress, progress_every, progress_interval_s)
    runner = InstanceRunner(
        source.name,
        source.name.partition(":")[0],
        source if max_mentions is None else _FirstMentions(source, max_mentions),
        sink_factory=lambda _name: meter,
        state=MemoryStateStore(),
        topic=topic,
        metrics=ConnectorMetrics(),
        interval_s=poll_interval_s,
        speedup=speedup,
        policy=ONE_SHOT,
        clock=clock,
        flush_each_page=False,
    )
    while not math.isinf(delay := runner.step()):
        if delay > 0:
            clock.sleep(delay)
    producer.flush()
    seconds = meter.report()
    skipped = source.skipped if isinstance(source, ReportsSkipped) else 0
    return RunStats(produced=meter.produced, skipped=skipped, seconds=seconds)
