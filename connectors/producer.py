"""Producing mentions to Kafka: ``MentionProducer`` and the ``MentionSink`` the runner writes to.

``MentionProducer`` wraps kafka-python's ``KafkaProducer`` with the settings the pipeline relies
on (``acks="all"``, idempotence, key = brand or mention id as ``key_by`` says, value =
``Mention.to_json()``) and turns client
failures into ``ProducerError`` with a message that names the broker and topic.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, Self

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.records import Mention
from streams.topics import RawKey, raw_key


class ProducerError(RuntimeError):
    """Producing to Kafka failed (broker unreachable, delivery failed or timed out)."""


class MentionSink(Protocol):
    """What a runner needs from a producer (``MentionProducer`` or a test double)."""

    def send(self, mention: Mention, *, topic: str | None = None) -> None: ...

    def flush(self) -> None: ...


class MentionProducer:
    """Produces ``Mention`` records to Kafka: key = :func:`streams.topics.raw_key` (the brand, or
    with ``key_by="id"`` the mention id), value = the mention's JSON.

    Use as a context manager; leaving the block flushes and closes. ``topic`` is the default topic
    for ``send``. Raises ``ProducerError`` when the broker cannot be reached within
    ``connect_timeout_s`` and, from ``send``/``flush``, when an earlier delivery failed.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str | None = None,
        linger_ms: int = 5,
        connect_timeout_s: float = 10.0,
        client_id: str = "listenwell-connector",
        key_by: RawKey = "brand",
        **config: Any,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.key_by: RawKey = key_by
        self.sent = 0
        self.delivered = 0
        self._error: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
                bootstrap_timeout_ms=int(connect_timeout_s * 1000),
                **config,
            )
        except KafkaError as exc:
            raise ProducerError(
                f"Kafka broker unreachable at {bootstrap_servers}: {exc} "
                "(is it running? try `make kafka-start`)"
            ) from exc

    def _on_success(self, _metadata: Any) -> None:
        self.delivered += 1

    def _on_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ProducerError(
                f"delivery to Kafka at {self.bootstrap_servers} failed: {self._error}"
            ) from self._error

    def send(self, mention: Mention, *, topic: str | None = None) -> None:
        """Queue one mention for delivery (asynchronous; ``flush`` waits for it)."""
        self._raise_if_failed()
        target = topic or self.topic
        if target is None:
            raise ValueError("no topic: pass topic= here or to MentionProducer()")
        try:
            future = self._producer.send(
                target, value=mention.to_json(), key=raw_key(mention, self.key_by)
            )
        except KafkaError as exc:
            raise ProducerError(
                f"cannot produce to {target!r} at {self.bootstrap_servers}: {exc}"
            ) from exc
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)
        self.sent += 1

    def send_raw(self, topic: str, *, key: bytes | None, value: bytes) -> None:
        """Queue arbitrary bytes (tests and the demo use it to produce malformed records)."""
        self._raise_if_failed()
        future = self._producer.send(topic, value=value, key=key)
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)
        self.sent += 1

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued mention is acknowledged by all in-sync replicas."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise ProducerError(
                f"flush to Kafka at {self.bootstrap_servers} failed after {self.delivered} of "
                f"{self.sent} mentions: {exc}"
            ) from exc
        self._raise_if_failed()

    def close(self, timeout_s: float | None = None) -> None:
        """Flush what is queued and release the connection."""
        self._producer.close(timeout=timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
