"""The console notifier: a Kafka consumer of ``alerts`` that prints one line per alert transition.

Each line starts with ``[firing] <alertname>`` or ``[resolved] <alertname>``. A transition is
delivered at most once: its id is appended (and fsynced) to a delivery log before the offset is
committed, and a restarted notifier skips ids already in the log. The worker may re-send an alert
after a crash; the log is what makes that harmless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from streams.records import Alert, AlertState

log = logging.getLogger(__name__)


class NotifierMetrics:
    """Metrics of the notifier process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "listenwell_notifications_total",
            "Alert transitions handled by the notifier, by receiver and outcome "
            "(delivered, duplicate, parked, invalid).",
            ["receiver", "outcome"],
            registry=registry,
        )


class DeliveryLog:
    """Append-only file of delivered transition ids; survives restarts and kill -9."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._delivered: set[str] = set()
        if path.exists():
            self._delivered.update(line.strip() for line in path.read_text().splitlines() if line)

    def __contains__(self, transition_id: str) -> bool:
        return transition_id in self._delivered

    def record(self, transition_id: str) -> None:
        with self._path.open("a") as f:
            f.write(transition_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._delivered.add(transition_id)


def format_alert(alert: Alert) -> str:
    """One console line: ``[state] AlertName`` then who, value, baseline and one example."""
    parts = [f"[{alert.state}] {alert.alertname}"]
    for label in ("brand", "customer"):
        if label in alert.labels:
            parts.append(f"{label}={alert.labels[label]}")
    parts.append(f"value={alert.value:.2f}")
    if alert.baseline is not None:
        parts.append(f"baseline={alert.baseline:.2f}")
    when = (
        alert.ends_at if alert.state == AlertState.RESOLVED and alert.ends_at else alert.starts_at
    )
    parts.append(f"at={when:%Y-%m-%d %H:%M}Z")
    if alert.examples:
        text = " ".join(alert.examples[0].text.split())
        parts.append(f'example="{text[:120]}"')
    return " ".join(parts)


class ConsoleNotifier:
    """Turns alert records into console lines, once per transition."""

    receiver = "console"

    def __init__(
        self, delivery_log: DeliveryLog, metrics: NotifierMetrics, emit: Callable[[str], None]
    ) -> None:
        self._log = delivery_log
        self._metrics = metrics
        self._emit = emit

    def handle(self, value: bytes) -> None:
        """Deliver one alert record (invalid ones are logged with the reason and skipped)."""
        try:
            alert = Alert.from_json(value)
        except ValidationError as exc:
            log.warning("notifier: skipping an invalid alert record: %s", exc.errors()[:3])
            self._metrics.notifications.labels(self.receiver, "invalid").inc()
            return
        if alert.state == AlertState.PENDING:
            return
        if alert.transition_id in self._log:
            self._metrics.notifications.labels(self.receiver, "duplicate").inc()
            return
        self._emit(format_alert(alert))
        self._log.record(alert.transition_id)
        self._metrics.notifications.labels(self.receiver, "delivered").inc()

    def handle_all(self, values: Iterable[bytes]) -> None:
        for value in values:
            self.handle(value)
