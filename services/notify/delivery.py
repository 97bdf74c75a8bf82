"""Delivery guarantees: retries with backoff (honouring ``Retry-After``), a per-receiver token
bucket, a notification log that makes a restarted notifier skip what it already sent, dead
letters after the last attempt, and metrics by receiver and outcome. Time is injected."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.notify.core import Notification
from services.notify.metrics import NotifierMetrics
from services.notify.receivers import DeliveryError, Sender
from streams.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``wait()`` says how long until one is free."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self) -> float:
        """Seconds until a token is available (0 if one is now)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self._tokens -= 1


LEGACY_RECEIVER = "console"
"""The receiver of the plain transition-id lines an older console notifier wrote to its log."""


class NotificationLog:
    """Append-only, fsynced JSON lines: which content was sent to which receiver/group, and when.

    Like Alertmanager's nflog: a notification is a duplicate if the same content was sent to the
    same key less than ``repeat_interval`` ago (a digest or a single transition, ever). It survives
    kill -9. A line holding only a transition id (the log of the console notifier before it became
    a receiver) counts as that transition sent to the console.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._last: dict[str, tuple[str, float]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line and not line.startswith("{"):
                    self._last[f"{LEGACY_RECEIVER}/{line.strip()}"] = ("", 0.0)
                    continue
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
        if n.kind == "transition":
            return last is not None  # the key is the transition: its content cannot differ
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
    """Delivers notifications with retries, rate limits and the log; parks what keeps failing.

    A receiver's rate is ``rate_per_minute[name]`` (60 if not given; ``None``: not limited).
    """

    def __init__(
        self,
        senders: dict[str, Sender],
        nflog: NotificationLog,
        metrics: NotifierMetrics,
        park: Callable[[Notification, str], None],
        *,
        max_attempts: dict[str, int] | None = None,
        rate_per_minute: dict[str, float | None] | None = None,
        backoff: Backoff | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._senders = senders
        self._log = nflog
        self._metrics = metrics
        self._park = park
        self._attempts = max_attempts or {}
        self._backoff = backoff or Backoff()
        self._clock = clock
        rates = rate_per_minute or {}
        self._buckets: dict[str, TokenBucket] = {}
        for name in senders:
            rate = rates.get(name, 60.0)
            if rate is not None:
                self._buckets[name] = TokenBucket(rate / 60.0, max(1.0, rate / 6), clock)

    def deliver(self, n: Notification) -> str:
        """Send ``n`` (unless the log says it was sent); returns delivered, duplicate or parked."""
        receiver = n.receiver
        if self._log.already_sent(n):
            self._metrics.notifications.labels(receiver, "duplicate").inc()
            return "duplicate"
        sender = self._senders[receiver]
        started = self._clock.monotonic()
        attempts = self._attempts.get(receiver, 5)
        reason = ""
        for attempt in range(attempts):
            bucket = self._buckets.get(receiver)
            if bucket is not None:
                wait = bucket.wait()
                if wait > 0:
                    self._clock.sleep(wait)
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
                self._clock.sleep(delay)
                continue
            self._log.record(n, "delivered")
            self._metrics.notifications.labels(receiver, "delivered").inc()
            self._metrics.delivery_seconds.labels(receiver).observe(
                self._clock.monotonic() - started
            )
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
