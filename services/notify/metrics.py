"""The notifier's metrics, on an injectable registry (one class for the one notifier process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class NotifierMetrics:
    """Metrics of the notifier process; ``notifications`` is by receiver and outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "listenwell_notifications_total",
            "Alert transitions handled by the notifier, by receiver and outcome "
            "(delivered, duplicate, parked, invalid).",
            ["receiver", "outcome"],
            registry=registry,
        )
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
