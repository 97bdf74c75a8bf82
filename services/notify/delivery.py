"""Delivery guarantees: retries with backoff (honouring ``Retry-After``), a per-receiver token
bucket, a notification log that makes a restarted notifier skip what it already sent, dead
letters after the last attempt, and metrics by receiver and outcome. Time is injected."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.notifier import NotifierMetrics
from services.notify.core import Notification
from services.notify.receivers import DeliveryError, Sender

log = logging.getLogger(__name__)


class DeliveryMetrics(NotifierMetrics):
    """Notifier metrics (on an injectable registry); ``notifications`` is by receiver and outcome
    (delivered, duplicate, parked, invalid)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.retries = Counter(
            "listenwell_notification_retries_total",
            "Delivery attempts retried after a failure, by receiver.",
            ["receiver"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "listenwell_notification_delivery_seconds",
            "Time to deliver one notification, retries and waits included, by receiver.",
            ["receiver"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.silenced = Counter(
            "listenwell_silenced_alerts_total",
            "Alert transitions that arrived while a silence muted them.",
            registry=registry,
        )


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``wait()`` says how long until one is free."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self) -> float:
        """Seconds until a token is available (0 if one is now)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


class NotificationLog:
    """Append-only, fsynced JSON lines: which content was sent to which receiver/group, and when.

    Like Alertmanager's nflog: a notification is a duplicate if the same content was sent to the
    same key less than ``repeat_interval`` ago (a digest, ever). It survives kill -9.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._last: dict[str, tuple[str, float]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self._last[entry["key"]] = (entry["hash"], float(entry["at"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash
        self._file = path.open("a")
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            self._file.write("\n")  # end a line torn by a crash, so the next entry stands alone

    def already_sent(self, n: Notification) -> bool:
        last = self._last.get(n.log_key)
        if last is None or last[0] != n.content_hash:
            return False
        if n.kind == "digest":
            return True
        return n.at.timestamp() < last[1] + n.repeat_interval.total_seconds()

    def record(self, n: Notification, outcome: str) -> None:
        entry = {
            "key": n.log_key,
            "hash": n.content_hash,
            "at": n.at.timestamp(),
            "outcome": outcome,
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._last[n.log_key] = (n.content_hash, n.at.timestamp())

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base * 2**attempt``, capped; a ``Retry-After`` wins (capped too)."""

    base_s: float = 0.5
    cap_s: float = 30.0
    retry_after_cap_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s)
        return min(self.cap_s, self.base_s * (1 << min(attempt, 30)))


class Deliverer:
    """Delivers notifications with retries, rate limits and the log; parks what keeps failing."""

    def __init__(
        self,
        senders: dict[str, Sender],
        nflog: NotificationLog,
        metrics: DeliveryMetrics,
        park: Callable[[Notification, str], None],
        *,
        max_attempts: dict[str, int] | None = None,
        rate_per_minute: dict[str, float] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._senders = senders
        self._log = nflog
        self._metrics = metrics
        self._park = park
        self._attempts = max_attempts or {}
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._sleep = sleep
        rates = rate_per_minute or {}
        self._buckets = {
            name: TokenBucket(
                rates.get(name, 60.0) / 60.0, max(1.0, rates.get(name, 60.0) / 6), clock
            )
            for name in senders
        }

    def deliver(self, n: Notification) -> str:
        """Send ``n`` (unless the log says it was sent); returns delivered, duplicate or parked."""
        receiver = n.receiver
        if self._log.already_sent(n):
            self._metrics.notifications.labels(receiver, "duplicate").inc()
            return "duplicate"
        sender = self._senders[receiver]
        started = self._clock()
        attempts = self._attempts.get(receiver, 5)
        reason = ""
        for attempt in range(attempts):
            bucket = self._buckets[receiver]
            wait = bucket.wait()
            if wait > 0:
                self._sleep(wait)
            bucket.take()
            try:
                sender.send(n)
            except DeliveryError as exc:
                reason = exc.reason
                if not exc.retryable or attempt == attempts - 1:
                    break
                self._metrics.retries.labels(receiver).inc()
                delay = self._backoff.delay(attempt, exc.retry_after)
                log.warning("%s: %s; retrying in %.1fs", receiver, exc.reason, delay)
                self._sleep(delay)
                continue
            self._log.record(n, "delivered")
            self._metrics.notifications.labels(receiver, "delivered").inc()
            self._metrics.delivery_seconds.labels(receiver).observe(self._clock() - started)
            return "delivered"
        log.error("%s: giving up on %s: %s", receiver, n.group_key, reason)
        self._park(n, reason)
        self._log.record(n, "parked")
        self._metrics.notifications.labels(receiver, "parked").inc()
        return "parked"


def dead_letter(n: Notification, reason: str, now: datetime) -> dict[str, object]:
    """The ``notifications.dlq`` record of a notification that could not be delivered."""
    return {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "kind": n.kind,
        "reason": reason,
        "parked_at": now.isoformat(),
        "alerts": [json.loads(a.model_dump_json()) for a in n.alerts],
    }
