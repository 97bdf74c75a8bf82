"""The one topic registry: every topic listenwell owns, with its record, key and layout.

Topic creation (``listenwell topics create``, ``make kafka-start``) and the Faust app both read this
registry, so a topic's partitions and cleanup policy are declared in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streams.records import (
    Alert,
    CustomerHealth,
    DeadLetter,
    Incident,
    Mention,
    Record,
    ScoredMention,
)


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name, the record it carries, what its key is, and how Kafka should keep it."""

    name: str
    record: type[Record] | None
    key: str
    partitions: int
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = None

    def config(self) -> dict[str, str]:
        """Topic-level configuration for the admin client."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


MENTIONS_RAW = TopicSpec("mentions.raw", Mention, key="brand", partitions=4)
MENTIONS_SCORED = TopicSpec("mentions.scored", ScoredMention, key="brand", partitions=4)
MENTIONS_DLQ = TopicSpec("mentions.dlq", DeadLetter, key="source topic", partitions=1)
ALERTS = TopicSpec("alerts", Alert, key="fingerprint", partitions=1)
CUSTOMERS_HEALTH = TopicSpec(
    "customers.health", CustomerHealth, key="brand/customer", partitions=4, cleanup_policy="compact"
)
INCIDENTS = TopicSpec(
    "incidents", Incident, key="incident id", partitions=1, cleanup_policy="compact"
)
CONNECTORS_STATE = TopicSpec(
    "connectors.state", None, key="source instance", partitions=1, cleanup_policy="compact"
)
SILENCES = TopicSpec("silences", None, key="silence id", partitions=1, cleanup_policy="compact")
NOTIFICATIONS_DLQ = TopicSpec("notifications.dlq", None, key="receiver", partitions=1)
ERASURES = TopicSpec("erasures", None, key="request id", partitions=1, cleanup_policy="compact")

REGISTRY: tuple[TopicSpec, ...] = (
    MENTIONS_RAW,
    MENTIONS_SCORED,
    MENTIONS_DLQ,
    ALERTS,
    CUSTOMERS_HEALTH,
    INCIDENTS,
    CONNECTORS_STATE,
    SILENCES,
    NOTIFICATIONS_DLQ,
    ERASURES,
)


def topic_name(spec: TopicSpec, prefix: str = "") -> str:
    """The topic's name on the broker; a prefix lets two runs share one broker."""
    return f"{prefix}{spec.name}"
