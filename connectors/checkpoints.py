"""Where connector instances resume: checkpoints and the stores that keep them.

A :class:`Checkpoint` is an instance's cursor, when it was saved and whether its source ended.
:class:`KafkaStateStore` keeps them in the compacted ``connectors.state`` topic (key = instance
name, value JSON ``{"cursor", "updated_at", "exhausted"}``) for ``listenwell connect``;
:class:`MemoryStateStore` keeps them in a dict for one-shot runs (``listenwell simulate`` and
``replay``, the demo), which have no instance to resume.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connectors.producer import ProducerError
from streams.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("listenwell.connectors")


@dataclass(frozen=True)
class Checkpoint:
    """Where an instance resumes: its cursor, when it was saved, and whether the source ended."""

    cursor: str | None
    updated_at: datetime
    exhausted: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "cursor": self.cursor,
                "updated_at": self.updated_at.isoformat(),
                "exhausted": self.exhausted,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """Parse a saved checkpoint; ``ValueError`` if it is not one."""
        try:
            raw = json.loads(data)
            cursor = raw["cursor"]
            if cursor is not None and not isinstance(cursor, str):
                raise ValueError("cursor must be a string or null")
            return cls(
                cursor=cursor,
                updated_at=datetime.fromisoformat(raw["updated_at"]),
                exhausted=bool(raw.get("exhausted", False)),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None


class StateStore(Protocol):
    """Where checkpoints live (``KafkaStateStore``, ``MemoryStateStore``)."""

    def load(self) -> dict[str, Checkpoint]:
        """The latest checkpoint of every instance."""
        ...

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        """Store durably; returns only once the store acknowledged it."""
        ...


class MemoryStateStore:
    """Checkpoints in a dict: for runs that start from the beginning and never resume."""

    def __init__(self) -> None:
        self.saved: dict[str, Checkpoint] = {}

    def load(self) -> dict[str, Checkpoint]:
        return dict(self.saved)

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        self.saved[instance] = checkpoint


class KafkaStateStore:
    """Checkpoints in the compacted ``connectors.state`` topic, key = instance name."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        timeout_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout_s = timeout_s
        self.clock = clock
        self._producer: Any = None
        self._lock = threading.Lock()

    def load(self) -> dict[str, Checkpoint]:
        """Read the topic from the beginning to its end; the last value of a key wins."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers.split(","),
            enable_auto_commit=False,
            client_id="listenwell-connector-state",
        )
        checkpoints: dict[str, Checkpoint] = {}
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in consumer.partitions_for_topic(self.topic) or ()
            ]
            if not partitions:
                raise ProducerError(
                    f"topic {self.topic!r} does not exist at {self.bootstrap_servers} "
                    "(create it: `listenwell kafka create-topics`)"
                )
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            deadline = self.clock.monotonic() + self.timeout_s
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                if self.clock.monotonic() > deadline:
                    raise ProducerError(f"timed out reading checkpoints from {self.topic!r}")
                for messages in consumer.poll(timeout_ms=500).values():
                    for message in messages:
                        if message.key is None:
                            continue
                        name = message.key.decode("utf-8", "replace")
                        if message.value is None:
                            checkpoints.pop(name, None)
                            continue
                        try:
                            checkpoints[name] = Checkpoint.from_json(message.value)
                        except ValueError as exc:
                            log.warning("ignoring checkpoint of %s: %s", name, exc)
        finally:
            consumer.close()
        return checkpoints

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            with self._lock:
                if self._producer is None:
                    self._producer = KafkaProducer(
                        bootstrap_servers=self.bootstrap_servers.split(","),
                        client_id="listenwell-connector-state",
                        acks="all",
                        enable_idempotence=True,
                    )
                producer = self._producer
            future = producer.send(
                self.topic, key=instance.encode("utf-8"), value=checkpoint.to_json()
            )
            future.get(timeout=self.timeout_s)
        except KafkaError as exc:
            raise ProducerError(
                f"cannot save checkpoint of {instance} to {self.topic!r}: {exc}"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
