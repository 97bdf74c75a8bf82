"""The incident room's metrics (in the API process's registry), declared in one place."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.room.model import Outcome, TopicKind

HELD_KINDS = ("brand", "incident", "alert", "customer", "mention", "minute", "erasure")
LOGIN_OUTCOMES = ("ok", "bad_token", "bad_form")


class RoomMetrics:
    """Read-model lag and size, records folded by outcome, logins by outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.lag = Gauge(
            "listenwell_room_consumer_lag_messages",
            "Records of a topic the room's read model has not read yet (every 2 s).",
            ["topic"],
            registry=registry,
        )
        self.items = Gauge(
            "listenwell_room_items",
            "Items the room's read model holds, by kind.",
            ["kind"],
            registry=registry,
        )
        self.records = Counter(
            "listenwell_room_records_total",
            "Records the room's read model read, by topic and what it did with them.",
            ["topic", "outcome"],
            registry=registry,
        )
        self.caught_up = Gauge(
            "listenwell_room_caught_up",
            "1 once the read model has read every topic to the end it had at start-up.",
            registry=registry,
        )
        self.logins = Counter(
            "listenwell_room_logins_total",
            "Room login attempts by outcome (ok, bad_token, bad_form).",
            ["outcome"],
            registry=registry,
        )
        for kind in TopicKind:
            self.lag.labels(kind.value)
            for outcome in Outcome:
                self.records.labels(kind.value, outcome.value)
        for held in HELD_KINDS:
            self.items.labels(held)
        for login in LOGIN_OUTCOMES:
            self.logins.labels(login)
