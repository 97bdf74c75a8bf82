"""Run many connector instances side by side: poll, produce, checkpoint, back off, report.

Each instance (``connectors.config.InstanceConfig``) gets its own ``InstanceRunner`` and thread, its
own producer and its own cursor; one failing instance never stops the others.

One ``InstanceRunner.step()`` is one poll::

    fetch(cursor) -> produce the page to mentions.raw -> flush (acks=all) -> save the next cursor

The cursor is saved to the compacted ``connectors.state`` topic (key = instance name, value JSON
``{"cursor", "updated_at", "exhausted"}``) only after the broker acknowledged every mention of the
page. A crash in between re-fetches the page on restart; mention ids are stable and the worker
dedupes them, so every item is scored exactly once in effect.

What a step does on failure:

* ``RateLimited`` waits as long as the service asked (``retry_after_s``), or backs off if unsaid;
* ``TransientError``, a Kafka failure or an unexpected error backs off exponentially with jitter
  (``delay = d/2 + uniform(0, d/2)``, ``d = min(cap, base * 2**(failures - 1))``);
* ``AuthError`` marks the instance failed and retries rarely (``auth_retry_s``).

``step()`` returns how long to wait before the next one, so tests drive it with no thread and no
clock; the wall clock and the pacing wait are injected.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.base import AuthError, RateLimited, Source, TransientError
from connectors.runner import MentionSink, ProducerError

log = logging.getLogger("listenwell.connectors")

OUTCOMES = ("ok", "rate_limited", "transient_error", "auth_error", "kafka_error", "error")
"""Values of the ``outcome`` label of ``listenwell_connector_fetches_total``."""


# --- checkpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """Where an instance resumes: its cursor, when it was saved, and whether the source ended."""

    cursor: str | None
    updated_at: datetime
    exhausted: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "cursor": self.cursor,
                "updated_at": self.updated_at.isoformat(),
                "exhausted": self.exhausted,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """Parse a saved checkpoint; ``ValueError`` if it is not one."""
        try:
            raw = json.loads(data)
            cursor = raw["cursor"]
            if cursor is not None and not isinstance(cursor, str):
                raise ValueError("cursor must be a string or null")
            return cls(
                cursor=cursor,
                updated_at=datetime.fromisoformat(raw["updated_at"]),
                exhausted=bool(raw.get("exhausted", False)),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None


class StateStore(Protocol):
    """Where checkpoints live (``KafkaStateStore``, or a dict in tests)."""

    def load(self) -> dict[str, Checkpoint]:
        """The latest checkpoint of every instance."""
        ...

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        """Store durably; returns only once the store acknowledged it."""
        ...


class KafkaStateStore:
    """Checkpoints in the compacted ``connectors.state`` topic, key = instance name."""

    def __init__(self, bootstrap_servers: str, topic: str, *, timeout_s: float = 30.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: Any = None
        self._lock = threading.Lock()

    def load(self) -> dict[str, Checkpoint]:
        """Read the topic from the beginning to its end; the last value of a key wins."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers.split(","),
            enable_auto_commit=False,
            client_id="listenwell-connector-state",
        )
        checkpoints: dict[str, Checkpoint] = {}
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in consumer.partitions_for_topic(self.topic) or ()
            ]
            if not partitions:
                raise ProducerError(
                    f"topic {self.topic!r} does not exist at {self.bootstrap_servers} "
                    "(create it: `listenwell kafka create-topics`)"
                )
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            deadline = time.monotonic() + self.timeout_s
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise ProducerError(f"timed out reading checkpoints from {self.topic!r}")
                for messages in consumer.poll(timeout_ms=500).values():
                    for message in messages:
                        if message.key is None:
                            continue
                        name = message.key.decode("utf-8", "replace")
                        if message.value is None:
                            checkpoints.pop(name, None)
                            continue
                        try:
                            checkpoints[name] = Checkpoint.from_json(message.value)
                        except ValueError as exc:
                            log.warning("ignoring checkpoint of %s: %s", name, exc)
        finally:
            consumer.close()
        return checkpoints

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            with self._lock:
                if self._producer is None:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self.bootstrap_servers.split(","),
                        client_id="listenwell-connector-state",
                        acks="all",
                        enable_idempotence=True,
                    )
                producer = self._producer
            future = producer.send(
                self.topic, key=instance.encode("utf-8"), value=checkpoint.to_json()
            )
            future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise ProducerError(
                f"cannot save checkpoint of {instance} to {self.topic!r}: {exc}"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


# --- metrics --------------------------------------------------------------------------------------


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


# --- one instance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait after failures."""

    base_s: float = 1.0
    cap_s: float = 300.0
    auth_retry_s: float = 900.0
    """Wait after an ``AuthError`` (credentials rarely fix themselves)."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with equal jitter: in ``[d/2, d]``, ``d`` capped at ``cap_s``."""
        exponent = min(max(failures, 1) - 1, 62)
        d = min(self.cap_s, self.base_s * 2.0**exponent)
        return d / 2.0 + rng.uniform(0.0, d / 2.0)


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


def _never_stop(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class InstanceRunner:
    """Polls one source: ``step()`` = fetch, produce, flush, checkpoint; returns the next wait."""

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
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] = _never_stop,
    ) -> None:
        self.name = name
        self.kind = kind
        self.source = source
        self.sink_factory = sink_factory
        self.state = state
        self.topic = topic
        self.metrics = metrics
        self.interval_s = interval_s
        self.speedup = speedup
        self.policy = policy or BackoffPolicy()
        self.rng = rng or random.Random()
        self.wall = wall
        self.clock = clock
        self.wait = wait
        """Pacing wait; returns True when the runner is being stopped."""
        self.status = InstanceStatus(name, kind)
        self.cursor: str | None = None
        self.done = False
        self.failures = 0
        self._sink: MentionSink | None = None
        self._skipped_seen = 0
        self._pace_start: tuple[float, datetime] | None = None

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

    def _fail(self, state: str, outcome: str, message: str, wait_s: float) -> float:
        self._count(outcome)
        self.status.state = state
        self.status.last_error = message
        self.status.wait_s = wait_s
        self.metrics.backoff.labels(self.name).set(wait_s)
        return wait_s

    def _backoff(self, state: str, outcome: str, message: str) -> float:
        self.failures += 1
        return self._fail(state, outcome, message, self.policy.delay(self.failures, self.rng))

    def step(self) -> float:
        """One poll; returns seconds to wait before the next (``math.inf`` when finished)."""
        if self.done:
            return math.inf
        self.status.fetches += 1
        try:
            page, next_cursor = self.source.fetch(self.cursor)
        except RateLimited as exc:
            if exc.retry_after_s is None:
                return self._backoff("rate_limited", "rate_limited", f"rate limited: {exc}")
            wait_s = max(exc.retry_after_s, 0.0)
            return self._fail("rate_limited", "rate_limited", f"rate limited: {exc}", wait_s)
        except TransientError as exc:
            return self._backoff("backoff", "transient_error", f"transient error: {exc}")
        except AuthError as exc:
            log.error("%s: credentials refused: %s", self.name, exc)
            return self._fail(
                "failed",
                "auth_error",
                f"credentials refused ({exc}); fix the settings and restart",
                self.policy.auth_retry_s,
            )
        except Exception as exc:  # a bug or bad cursor in one source must not stop the others
            log.warning("%s: fetch failed: %s: %s", self.name, type(exc).__name__, exc)
            return self._backoff("backoff", "error", f"{type(exc).__name__}: {exc}")
        self._count_skipped()
        try:
            stopped = self._produce(page)
            if stopped:
                self.status.state = "stopped"
                return math.inf
            exhausted = next_cursor is None
            saved = self.cursor if exhausted else next_cursor
            updated = datetime.fromtimestamp(self.wall(), UTC)
            self.state.save(self.name, Checkpoint(saved, updated, exhausted))
        except ProducerError as exc:
            self.close()
            return self._backoff("backoff", "kafka_error", str(exc))
        self._count("ok")
        self.metrics.produced.labels(self.kind, self.name).inc(len(page))
        self.metrics.last_success.labels(self.name).set(self.wall())
        self.metrics.backoff.labels(self.name).set(0.0)
        self.failures = 0
        self.status.produced += len(page)
        self.status.last_success = self.wall()
        self.status.last_error = None
        self.status.wait_s = 0.0
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

    def _produce(self, page: list[Any]) -> bool:
        """Send and flush a page; True if a stop interrupted pacing (nothing is checkpointed)."""
        if not page:
            return False
        if self._sink is None:
            self._sink = self.sink_factory(self.name)
        sink = self._sink
        self.status.state = "running"
        for mention in page:
            if self.speedup is not None:
                if self._pace_start is None:
                    self._pace_start = (self.clock(), mention.created_at)
                started, first = self._pace_start
                due = started + (mention.created_at - first).total_seconds() / self.speedup
                delay = due - self.clock()
                if delay > 0.001 and self.wait(delay):
                    sink.flush()
                    return True
            sink.send(mention, topic=self.topic)
        sink.flush()
        return False


# --- many instances -------------------------------------------------------------------------------


@dataclass
class Supervisor:
    """Runs every ``InstanceRunner`` in its own thread until stopped or all are done."""

    runners: list[InstanceRunner]
    state: StateStore
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def resume_all(self) -> None:
        """Load checkpoints once and hand each runner its own."""
        checkpoints = self.state.load()
        for runner in self.runners:
            runner.resume(checkpoints.get(runner.name))

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the supervisor is stopping."""
        return self._stop.wait(seconds)

    def _loop(self, runner: InstanceRunner) -> None:
        while not self._stop.is_set():
            try:
                delay = runner.step()
            except Exception as exc:  # never let one instance's thread die silently
                log.exception("%s: runner error", runner.name)
                runner.status.state = "backoff"
                runner.status.last_error = f"{type(exc).__name__}: {exc}"
                delay = runner.policy.cap_s
            if math.isinf(delay):
                break
            if delay > 0 and self._stop.wait(delay):
                break
        if not runner.done:
            runner.status.state = "stopped"
        runner.close()

    def start(self) -> None:
        """Resume from checkpoints and start one thread per instance."""
        self.resume_all()
        for runner in self.runners:
            runner.wait = self.wait
            thread = threading.Thread(
                target=self._loop, args=(runner,), name=f"connector-{runner.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def request_stop(self) -> None:
        """Ask every instance to stop (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask every instance to stop after its current step, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def finished(self) -> bool:
        """True when every thread has ended (all sources done, or stopped)."""
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def statuses(self) -> list[InstanceStatus]:
        return [runner.status for runner in self.runners]


def progress_lines(statuses: Iterable[InstanceStatus], now: float) -> list[str]:
    """One line per instance."""
    return [status.line(now) for status in statuses]
