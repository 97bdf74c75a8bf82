"""The one topic registry: every topic listenwell owns, with its record, key and layout.

Topic creation (``listenwell topics create``, ``make kafka-start``) and the Faust app both read this
registry, so a topic's partitions and cleanup policy are declared in exactly one place.

The topics the workers divide among themselves (``scales``: ``mentions.raw``, ``mentions.scored``,
``customers.health``, and the worker's table changelogs, which Faust creates to match) have as many
partitions as ``LISTENWELL_PARTITIONS`` says (:data:`DEFAULT_PARTITIONS`): that count is how many
workers a consumer group can use at once. The others have the count declared here.
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
    partitions: int = 1
    """The partition count of a topic that does not scale."""
    scales: bool = False
    """Whether the count is the configured one (``LISTENWELL_PARTITIONS``) instead."""
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = None

    def partition_count(self, scaled: int) -> int:
        """The topic's partition count when the scaling topics have ``scaled`` partitions."""
        return scaled if self.scales else self.partitions

    def config(self) -> dict[str, str]:
        """Topic-level configuration for the admin client."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


DEFAULT_PARTITIONS = 12
"""Partitions of the scaling topics unless ``LISTENWELL_PARTITIONS`` says otherwise: up to 12
workers per consumer group (issue 15's "sane default for growth").

It was 4 while a worker started with 12 stalled: its producer lost the metadata of its first
topics (see :mod:`streams.faust_app`); docs/operations.md, "Scaling out"."""

RawKey = Literal["brand", "id"]
"""What producers key ``mentions.raw`` by (``LISTENWELL_RAW_KEY``), see :func:`raw_key`."""


def raw_key(mention: Mention, key_by: RawKey = "brand") -> bytes:
    """The message key of ``mention`` on ``mentions.raw``.

    ``brand`` (the default): a brand's mentions share one raw partition, so the scoring stage
    publishes them to ``mentions.scored`` in the order they were produced and the brand stage
    folds them in that order, whatever the speed of replay. ``id``: a brand's mentions spread over
    every raw partition, so every scoring worker shares a hot brand; the brand stage then receives
    them interleaved from several scoring consumers, which is harmless while that interleaving
    stays within the allowed lateness in event time (live traffic), and drops mentions as late
    when it does not (a backlog or a fast replay). See docs/topology.md.
    """
    return (mention.id if key_by == "id" else mention.brand).encode()


MENTIONS_RAW = TopicSpec("mentions.raw", Mention, key="brand or mention id", scales=True)
MENTIONS_SCORED = TopicSpec("mentions.scored", ScoredMention, key="brand", scales=True)
MENTIONS_DLQ = TopicSpec("mentions.dlq", DeadLetter, key="source topic", partitions=1)
ALERTS = TopicSpec("alerts", Alert, key="fingerprint", partitions=1)
CUSTOMERS_HEALTH = TopicSpec(
    "customers.health", CustomerHealth, key="brand/customer", scales=True, cleanup_policy="compact"
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
