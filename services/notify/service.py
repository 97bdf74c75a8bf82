"""The notifier process: consume ``alerts``, dispatch, deliver, commit only what is done.

One service, with or without routes. The console receiver (``console=``) gets every alert
transition as it arrives, one line each, at most once; with a route tree the ``Dispatcher``
groups transitions for the receivers of ``routes.yaml`` too (silences, timers, digests). Every
notification goes through the same ``Deliverer`` and notification log.

An alert record's offset is committed only after every notification carrying it was delivered to
its receiver or parked in ``notifications.dlq``; a restarted notifier re-reads the rest, and the
notification log turns what it had already sent into duplicates it skips. For the same reason a
commit the group refuses (``CommitFailedError`` after a rebalance or a broker restart: the member
left the group; ``RebalanceInProgressError`` and the group's member/generation errors while it is
rebalancing; ``KafkaTimeoutError`` when no coordinator answered within the request timeout) is
logged and retried on the next round, never fatal: the consumer rejoins on its next poll and
re-reads from the last commit, and what it re-reads was already sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.notify.config import RouteTree
from services.notify.console import ConsoleSender
from services.notify.core import Dispatcher, Notification
from services.notify.delivery import Deliverer, NotificationLog, dead_letter
from services.notify.metrics import NotifierMetrics
from services.notify.receivers import Sender, build_sender
from services.notify.silences import SilenceStore
from streams import topics
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Alert, AlertState

log = logging.getLogger(__name__)

COMMIT_REFUSED = (
    CommitFailedError,
    RebalanceInProgressError,
    IllegalGenerationError,
    UnknownMemberIdError,
    KafkaTimeoutError,
)
"""What a group that is rebalancing (or lost this member) answers a commit with: kafka-python
raises ``CommitFailedError`` for some and the broker's own error for others (``bench/chaos.py``
saw ``RebalanceInProgressError`` end the notifier when a worker pair was killed); and
``KafkaTimeoutError``, raised when the group's coordinator could not be reached within the
consumer's request timeout (a broker down that long): the commit is made on a later round.
Any other error kafka-python marks retriable (``KafkaConnectionError`` when the broker went away
during the commit, also seen in ``bench/chaos.py``) is retried the same way: see
:func:`commit_refused`."""


COMMIT_TIMEOUT_S = 5.0
"""How long a commit may wait for the group's coordinator. kafka-python's own limit is the
consumer's request timeout (30 s): while the broker is down each round's commit held every due
notification that long; after this the commit raises ``KafkaTimeoutError`` and is made again on a
later round."""


def commit_refused(exc: KafkaError) -> bool:
    """Whether a commit that raised ``exc`` should be made again on a later round (the offsets
    stay pending) rather than end the notifier."""
    return isinstance(exc, COMMIT_REFUSED) or bool(getattr(exc, "retriable", False))


CONSOLE = "console"
"""The name (and metrics label) of the receiver that gets every transition as it arrives."""


class NotifierService:
    """The thin Kafka shell around ``Dispatcher`` and ``Deliverer``; ``run(stopping)`` loops.

    ``tree`` is the route tree (``None``: no routes, only the console); ``console`` is where the
    console receiver writes its lines (``None``: no console receiver). The notification log is
    ``log_path``, or ``<data_dir>/<group>.nflog``.
    """

    def __init__(
        self,
        tree: RouteTree | None,
        *,
        bootstrap: str,
        prefix: str,
        group: str,
        data_dir: Path,
        registry: CollectorRegistry,
        console: Callable[[str], None] | None = None,
        log_path: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        """``consumer_config`` overrides the alerts consumer's settings (kafka-python names, e.g.
        ``max_poll_interval_ms``)."""
        self._clock = clock
        self._dispatcher = Dispatcher(tree) if tree is not None else None
        self.metrics = NotifierMetrics(registry)
        self._http = httpx.Client(timeout=10.0)
        routed = tree.receivers.values() if tree is not None else ()
        senders: dict[str, Sender] = {
            r.name: build_sender(r, self._http, console or print) for r in routed
        }
        rates: dict[str, float | None] = {r.name: r.config.rate_limit_per_minute for r in routed}
        attempts = {r.name: r.config.max_attempts for r in routed}
        self._console = console is not None
        if console is not None:
            senders[CONSOLE] = ConsoleSender(CONSOLE, console)
            rates[CONSOLE] = None  # a terminal keeps up: every transition, as it arrives
        self._nflog = NotificationLog(log_path or data_dir / f"{group}.nflog")
        self._bootstrap = bootstrap
        self._dlq_topic = topics.topic_name(topics.NOTIFICATIONS_DLQ, prefix)
        self._producer: KafkaProducer | None = None
        self._deliverer = Deliverer(
            senders,
            self._nflog,
            self.metrics,
            self._park,
            max_attempts=attempts,
            rate_per_minute=rates,
            clock=clock,
        )
        self._alerts_topic = topics.topic_name(topics.ALERTS, prefix)
        self._silences = (
            SilenceStore(bootstrap, topics.topic_name(topics.SILENCES, prefix), clock=clock)
            if tree is not None
            else None
        )
        consumer: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            # a notifier killed with -9 holds its partition until its session expires
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 3_000,
        }
        consumer.update(consumer_config or {})
        self._consumer = KafkaConsumer(self._alerts_topic, **consumer)
        self._refs: dict[int, tuple[TopicPartition, int]] = {}
        self._next_ref = 0
        self._seen: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def _park(self, n: Notification, reason: str) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
        record = dead_letter(n, reason, self._clock.now())
        self._producer.send(
            self._dlq_topic, key=n.receiver.encode(), value=json.dumps(record).encode()
        ).get(timeout=30)

    def _deliver(self, n: Notification) -> str:
        outcome = self._deliverer.deliver(n)
        log.info("notification %s → %s: %s", n.group_key, n.receiver, outcome)
        return outcome

    def _ingest(self, tp: TopicPartition, offset: int, value: bytes) -> None:
        self._seen[tp] = offset + 1
        try:
            alert = Alert.from_json(value)
        except ValidationError as exc:
            log.warning("notifier: skipping an invalid alert record: %s", exc.errors()[:3])
            if self._console:
                self.metrics.notifications.labels(CONSOLE, "invalid").inc()
            return
        if self._console and alert.state != AlertState.PENDING:
            self._deliver(Notification.transition(CONSOLE, alert, self._clock.now()))
        if self._dispatcher is None:
            return
        ref = self._next_ref
        self._next_ref += 1
        self._refs[ref] = (tp, offset)
        if self._dispatcher.ingest(alert, self._clock.now(), ref):
            self.metrics.silenced.inc()

    def _commit(self) -> None:
        pending = self._dispatcher.low_watermark() if self._dispatcher is not None else None
        held: dict[TopicPartition, int] = {}
        for ref, (tp, offset) in self._refs.items():
            if pending is not None and ref >= pending:
                held[tp] = min(held.get(tp, offset), offset)
        # refs below the watermark are done
        if pending is None:
            self._refs.clear()
        else:
            for ref in [r for r in self._refs if r < pending]:
                del self._refs[ref]
        offsets = {}
        for tp, seen in self._seen.items():
            upto = held.get(tp, seen)
            if upto > self._committed.get(tp, -1):
                offsets[tp] = OffsetAndMetadata(upto, "", -1)
        if offsets:
            try:
                self._consumer.commit(offsets, timeout_ms=int(COMMIT_TIMEOUT_S * 1000))
            except KafkaError as exc:
                if not commit_refused(exc):
                    raise
                # The group rebalanced (or the broker restarted) since the last poll: this member
                # is no longer known. The next poll rejoins; the offsets stay pending and are
                # committed on a later round, and records re-read meanwhile were sent already.
                log.warning("notifier: commit refused, retrying after the group rejoins: %s", exc)
                return
            for tp, meta in offsets.items():
                self._committed[tp] = meta.offset

    def step(self, poll_ms: int = 200) -> int:
        """One round: silences, new alerts, due notifications, commit; returns how many of the
        routed notifications were sent."""
        silences, dispatcher = self._silences, self._dispatcher
        if silences is not None and dispatcher is not None and silences.poll(timeout_ms=0):
            dispatcher.silences = list(silences.silences.values())
        batches = self._consumer.poll(timeout_ms=poll_ms)
        for tp, messages in batches.items():
            for m in messages:
                self._ingest(tp, m.offset, m.value)
        sent = 0
        if self._dispatcher is not None:
            for n in self._dispatcher.due(self._clock.now()):
                sent += self._deliver(n) == "delivered"
                self._dispatcher.done(n)
        self._commit()
        return sent

    def replay_committed(self, timeout_s: float = 30.0) -> int:
        """Rebuild the groups from the alerts already committed (offsets before the group's
        committed offset), so a restarted notifier keeps repeating what is still firing.

        What they lead to was sent before: the notification log turns it into duplicates, and
        only repeats that are due go out. Returns the number of records read (0 without routes).
        """
        if self._dispatcher is None:
            return 0
        reader = KafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        read = 0
        try:
            topic = self._alerts_topic
            tps = [
                TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())
            ]
            ends = {tp: self._consumer.committed(tp) or 0 for tp in tps}
            tps = [tp for tp in tps if ends[tp] > 0]
            if not tps:
                return 0
            reader.assign(tps)
            reader.seek_to_beginning(*tps)
            deadline = self._clock.monotonic() + timeout_s
            while any(reader.position(tp) < ends[tp] for tp in tps):
                if self._clock.monotonic() > deadline:
                    log.warning("notifier: gave up replaying committed alerts after %ss", timeout_s)
                    break
                for tp, messages in reader.poll(timeout_ms=200).items():
                    for m in messages:
                        if m.offset >= ends[tp]:
                            continue
                        read += 1
                        try:
                            alert = Alert.from_json(m.value)
                        except ValidationError:
                            continue
                        self._dispatcher.ingest(alert, self._clock.now())
        finally:
            reader.close()
        return read

    def run(self, stopping: Callable[[], bool]) -> None:
        """Loop until ``stopping()``; the poll timeout shrinks to the next timer."""
        if self._silences is not None and self._dispatcher is not None:
            self._silences.load()
            self._dispatcher.silences = list(self._silences.silences.values())
        replayed = self.replay_committed()
        if replayed:
            log.info("notifier: rebuilt groups from %d committed alert records", replayed)
        while not stopping():
            due = self._dispatcher.next_due() if self._dispatcher is not None else None
            wait = 500 if due is None else (due - self._clock.now()) / timedelta(milliseconds=1)
            self.step(poll_ms=int(min(500, max(0, wait))))

    def close(self) -> None:
        self._consumer.close()
        if self._silences is not None:
            self._silences.close()
        if self._producer is not None:
            self._producer.close()
        self._http.close()
        self._nflog.close()
