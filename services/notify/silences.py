"""Silences in the compacted ``silences`` topic (key: silence id): every notifier sees them.

Expiring a silence re-publishes it with ``ends_at`` set to now; the record stays so that
``listenwell silence list --all`` can still show it.
"""

from __future__ import annotations

from datetime import datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import ValidationError

from services.notify.core import Silence
from streams.clock import SYSTEM_CLOCK, Clock


class SilenceStore:
    """Reads and writes silences on one topic."""

    def __init__(self, bootstrap: str, topic: str, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._clock = clock
        self._consumer: KafkaConsumer | None = None
        self.silences: dict[str, Silence] = {}

    def put(self, silence: Silence) -> None:
        """Publish (or replace) a silence and wait until the broker has it."""
        producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
        try:
            producer.send(
                self._topic, key=silence.id.encode(), value=silence.model_dump_json().encode()
            ).get(timeout=30)
        finally:
            producer.close()

    def _open(self) -> KafkaConsumer:
        if self._consumer is None:
            consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
            )
            partitions = consumer.partitions_for_topic(self._topic) or {0}
            tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            self._consumer = consumer
        return self._consumer

    def poll(self, timeout_ms: int = 0) -> bool:
        """Read whatever is new; returns whether anything changed."""
        changed = False
        for messages in self._open().poll(timeout_ms=timeout_ms).values():
            for m in messages:
                if m.value is None:
                    self.silences.pop(m.key.decode(), None)
                    changed = True
                    continue
                try:
                    silence = Silence.model_validate_json(m.value)
                except ValidationError:
                    continue
                self.silences[silence.id] = silence
                changed = True
        return changed

    def load(self, timeout_s: float = 10.0) -> dict[str, Silence]:
        """Read the topic to its end (as of now) and return every silence by id."""
        consumer = self._open()
        tps = list(consumer.assignment())
        end = consumer.end_offsets(tps)
        deadline = self._clock.monotonic() + timeout_s
        while self._clock.monotonic() < deadline:
            self.poll(timeout_ms=200)
            if all(consumer.position(tp) >= end[tp] for tp in tps):
                break
        return self.silences

    def active(self, now: datetime) -> list[Silence]:
        return [s for s in self.silences.values() if s.active(now)]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
