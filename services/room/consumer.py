"""The Kafka shell of the room's read model: one kafka-python consumer in a thread.

kafka-python (already the project's client for the API's producer, the notifier and the topic
reader) in a daemon thread rather than aiokafka: the fold is CPU work under a lock that would
block the event loop anyway, and a thread keeps the API's request handling independent of how
fast the topics are read. No consumer group: every API replica reads every partition itself.

At start it reads the compacted topics (``incidents``, ``customers.health``, ``erasures``) from
the beginning to their end, so incidents and erasures are known before the events that refer to
them, then adds the event topics (``alerts``, ``mentions.scored``) from the offsets of
``lookback_s`` ago by record timestamp, and follows all of them. Topics that do not exist yet are
picked up when they appear.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from services.room.metrics import RoomMetrics
from services.room.model import Outcome, RoomModel, TopicKind
from streams import topics
from streams.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("listenwell.room")

SPECS: dict[TopicKind, topics.TopicSpec] = {
    TopicKind.INCIDENTS: topics.INCIDENTS,
    TopicKind.CUSTOMERS: topics.CUSTOMERS_HEALTH,
    TopicKind.ERASURES: topics.ERASURES,
    TopicKind.ALERTS: topics.ALERTS,
    TopicKind.SCORED: topics.MENTIONS_SCORED,
}
COMPACTED = (TopicKind.INCIDENTS, TopicKind.CUSTOMERS, TopicKind.ERASURES)
EVENTS = (TopicKind.ALERTS, TopicKind.SCORED)


class RoomFeed:
    """The model behind a lock, with its metrics; what the pages read."""

    def __init__(self, model: RoomModel, metrics: RoomMetrics) -> None:
        self.model = model
        self.metrics = metrics
        self.lock = threading.Lock()
        self.caught_up = threading.Event()
        self.behind = 0
        """Records not yet read, at the last lag check."""

    def apply(self, kind: TopicKind, key: bytes | None, value: bytes | None) -> Outcome:
        with self.lock:
            outcome = self.model.apply(kind, key, value)
        self.metrics.records.labels(kind.value, outcome.value).inc()
        return outcome

    def read(self, query: Callable[[RoomModel], Any]) -> Any:
        """``query(model)`` under the lock."""
        with self.lock:
            return query(self.model)

    def update_held(self) -> None:
        with self.lock:
            held = self.model.held()
        for kind, count in held.items():
            self.metrics.items.labels(kind).set(count)

    def mark_caught_up(self) -> None:
        self.caught_up.set()
        self.metrics.caught_up.set(1)


class RoomConsumer:
    """Feeds a :class:`RoomFeed` from the topics under ``prefix`` until :meth:`stop`."""

    def __init__(
        self,
        feed: RoomFeed,
        bootstrap: str,
        prefix: str = "",
        *,
        lookback_s: float = 25 * 3600,
        clock: Clock = SYSTEM_CLOCK,
        lag_every_s: float = 2.0,
    ) -> None:
        self.feed = feed
        self.bootstrap = bootstrap
        self.names = {kind: topics.topic_name(spec, prefix) for kind, spec in SPECS.items()}
        self.kinds = {name: kind for kind, name in self.names.items()}
        self.lookback_s = lookback_s
        self.clock = clock
        self.lag_every_s = lag_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="room-consumer", daemon=True)
        self._consumer: Any = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        from kafka import KafkaConsumer

        while not self._stop.is_set():
            try:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap.split(","),
                    client_id="listenwell-room",
                    group_id=None,
                    enable_auto_commit=False,
                )
                self._follow()
                return
            except Exception:
                log.exception("room consumer failed; reconnecting")
                self.clock.wait(self._stop, 2.0)
            finally:
                if self._consumer is not None:
                    self._consumer.close()
                    self._consumer = None

    def _partitions(self, kinds: tuple[TopicKind, ...]) -> list[Any]:
        from kafka import TopicPartition

        found = []
        for kind in kinds:
            name = self.names[kind]
            for p in sorted(self._consumer.partitions_for_topic(name) or ()):
                found.append(TopicPartition(name, p))
        return found

    def _assign(self, wanted: list[Any], positions: dict[Any, int]) -> None:
        """Assign ``wanted`` keeping the positions already reached; new partitions start at the
        beginning (compacted) or ``lookback_s`` ago (events)."""
        consumer = self._consumer
        for tp in consumer.assignment():
            positions[tp] = consumer.position(tp)
        consumer.assign(wanted)
        since_ms = int((self.clock.time() - self.lookback_s) * 1000)
        fresh_events = [
            tp for tp in wanted if tp not in positions and self.kinds[tp.topic] in EVENTS
        ]
        starts = consumer.offsets_for_times(dict.fromkeys(fresh_events, since_ms))
        ends = consumer.end_offsets(fresh_events) if fresh_events else {}
        for tp in wanted:
            if tp in positions:
                consumer.seek(tp, positions[tp])
            elif tp in fresh_events:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
            else:
                consumer.seek_to_beginning(tp)

    def _follow(self) -> None:
        consumer = self._consumer
        positions: dict[Any, int] = {}
        # Compacted topics first, to their end: incidents and erasures before the events.
        compacted = self._partitions(COMPACTED)
        if compacted:
            self._assign(compacted, positions)
            self._read_to(consumer.end_offsets(compacted))
        assigned = self._partitions(COMPACTED + EVENTS)
        self._assign(assigned, positions)
        start_ends = consumer.end_offsets(assigned) if assigned else {}
        next_check = self.clock.monotonic()
        while not self._stop.is_set():
            self._poll()
            if self.clock.monotonic() >= next_check:
                next_check = self.clock.monotonic() + self.lag_every_s
                now_assigned = self._partitions(COMPACTED + EVENTS)
                if set(now_assigned) != set(assigned):
                    assigned = now_assigned
                    self._assign(assigned, positions)
                self._measure(assigned, start_ends)

    def _read_to(self, ends: dict[Any, int]) -> None:
        while not self._stop.is_set() and any(
            self._consumer.position(tp) < end for tp, end in ends.items()
        ):
            self._poll()

    def _poll(self) -> None:
        batches = self._consumer.poll(timeout_ms=500)
        for tp, messages in batches.items():
            kind = self.kinds[tp.topic]
            for message in messages:
                outcome = self.feed.apply(kind, message.key, message.value)
                if outcome is Outcome.INVALID:
                    log.warning(
                        "room: invalid record on %s partition %d offset %d (skipped)",
                        tp.topic,
                        tp.partition,
                        message.offset,
                    )

    def _measure(self, assigned: list[Any], start_ends: dict[Any, int]) -> None:
        if not assigned:
            self.feed.mark_caught_up()  # nothing to read yet
            return
        ends = self._consumer.end_offsets(assigned)
        lag = dict.fromkeys(TopicKind, 0)
        for tp in assigned:
            lag[self.kinds[tp.topic]] += max(0, ends[tp] - self._consumer.position(tp))
        for kind, behind in lag.items():
            self.feed.metrics.lag.labels(kind.value).set(behind)
        self.feed.behind = sum(lag.values())
        self.feed.update_held()
        if not self.feed.caught_up.is_set() and all(
            self._consumer.position(tp) >= end for tp, end in start_ends.items()
        ):
            self.feed.mark_caught_up()
