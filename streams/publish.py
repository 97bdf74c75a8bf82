"""Publishing: the one place that turns a stage's result into produce calls.

Keys: dead letters by the topic they came from, scored mentions by brand (so a brand's mentions
meet in one partition of ``mentions.scored``, the brand stage's input, whatever raw partitions
they were scored from), erasure commands under :data:`streams.records.ERASURE_KEY` on every
partition of ``mentions.scored``, alerts by fingerprint, customer health by ``brand/customer``
(a compacted topic), incidents by incident id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

from streams import topics
from streams.pipeline import BatchResult, ScoringResult
from streams.producer import RecordSink
from streams.records import ERASURE_KEY, DeadLetter, ErasureCommand, ScoredMention

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

    def __init__(self, sink: RecordSink, names: OutputTopics, scored_partitions: int = 1) -> None:
        self._sink = sink
        self._names = names
        self._scored_partitions = scored_partitions

    async def publish_scoring(self, result: ScoringResult) -> list[Awaitable[object]]:
        """Queue the scoring stage's records: dead letters, then scored mentions and forwarded
        erasure commands (one copy per partition of ``mentions.scored``) in raw order, so each
        brand partition receives a command after the mentions that preceded it on raw."""
        names = self._names
        send = self._sink.send
        deliveries = await self._send_dead_letters(result.dead_letters)
        for record in result.scored:
            value = record.value
            if isinstance(value, ErasureCommand):
                command = value.to_json()
                for partition in range(self._scored_partitions):
                    deliveries.append(
                        await send(names.scored, ERASURE_KEY, command, partition=partition)
                    )
            else:
                deliveries.append(await self._send_scored(value))
        return deliveries

    async def publish(self, result: BatchResult) -> list[Awaitable[object]]:
        """Queue every record of ``result``; returns their delivery futures, in send order.

        The batch path does not wait for them (Faust flushes the producer before it commits the
        batch's offsets); the watermark timer does (see :mod:`streams.watermark_timer`).
        """
        names = self._names
        send = self._sink.send
        deliveries = await self._send_dead_letters(result.dead_letters)
        for scored in result.scored:
            deliveries.append(await self._send_scored(scored))
        for alert in result.alerts:
            deliveries.append(await send(names.alerts, alert.fingerprint.encode(), alert.to_json()))
        for health in result.customers:
            key = f"{health.brand}/{health.customer_id}".encode()
            deliveries.append(await send(names.customers, key, health.to_json()))
        for incident in result.incidents:
            deliveries.append(await send(names.incidents, incident.id.encode(), incident.to_json()))
        return deliveries

    async def _send_dead_letters(self, letters: Iterable[DeadLetter]) -> list[Awaitable[object]]:
        """Queue dead letters, keyed by the topic they came from."""
        send = self._sink.send
        return [
            await send(self._names.dead_letters, letter.topic.encode(), letter.to_json())
            for letter in letters
        ]

    async def _send_scored(self, scored: ScoredMention) -> Awaitable[object]:
        """Queue a scored mention, keyed by its brand."""
        return await self._sink.send(
            self._names.scored, scored.mention.brand.encode(), scored.to_json()
        )
