"""Publishing: the one place that turns a :class:`streams.pipeline.BatchResult` into produce calls.

Keys: dead letters by the raw topic they came from, scored mentions by brand (like raw), alerts by
fingerprint, customer health by ``brand/customer`` (a compacted topic), incidents by incident id.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from streams import topics
from streams.pipeline import BatchResult
from streams.producer import RecordSink

__all__ = ["OutputTopics", "Publisher"]


@dataclass(frozen=True)
class OutputTopics:
    """Names of the topics the worker writes to."""

    dead_letters: str
    scored: str
    alerts: str
    customers: str
    incidents: str

    @classmethod
    def named(cls, prefix: str) -> OutputTopics:
        """The registry's topics under ``prefix`` (see :func:`streams.topics.topic_name`)."""
        return cls(
            dead_letters=topics.topic_name(topics.MENTIONS_DLQ, prefix),
            scored=topics.topic_name(topics.MENTIONS_SCORED, prefix),
            alerts=topics.topic_name(topics.ALERTS, prefix),
            customers=topics.topic_name(topics.CUSTOMERS_HEALTH, prefix),
            incidents=topics.topic_name(topics.INCIDENTS, prefix),
        )


class Publisher:
    """Sends a batch's records, in a fixed order: dead letters, scored mentions, alerts, customer
    health, incidents."""

    def __init__(self, sink: RecordSink, names: OutputTopics) -> None:
        self._sink = sink
        self._names = names

    async def publish(self, result: BatchResult) -> list[Awaitable[object]]:
        """Queue every record of ``result``; returns their delivery futures, in send order.

        The batch path does not wait for them (Faust flushes the producer before it commits the
        batch's offsets); the watermark timer does (see :mod:`streams.watermark_timer`).
        """
        names = self._names
        send = self._sink.send
        deliveries = [
            await send(names.dead_letters, letter.topic.encode(), letter.to_json())
            for letter in result.dead_letters
        ]
        for scored in result.scored:
            deliveries.append(
                await send(names.scored, scored.mention.brand.encode(), scored.to_json())
            )
        for alert in result.alerts:
            deliveries.append(await send(names.alerts, alert.fingerprint.encode(), alert.to_json()))
        for health in result.customers:
            key = f"{health.brand}/{health.customer_id}".encode()
            deliveries.append(await send(names.customers, key, health.to_json()))
        for incident in result.incidents:
            deliveries.append(await send(names.incidents, incident.id.encode(), incident.to_json()))
        return deliveries
