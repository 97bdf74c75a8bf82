"""The worker's Faust app class: Faust's own, with a consumer that waits less for fetches.

faust-streaming creates its aiokafka consumer with ``fetch_max_wait_ms=1500``, hard-coded
(``faust/transport/drivers/aiokafka.py``). aiokafka fetches a partition again only once the
records it holds for it have been handed over, and a fetch request for partitions with nothing new
sits on the broker for that long: at half load the worker's records waited 1.4-3 s before they
reached the agent (``bench/pipeline.py``, and a bare Faust agent doing 200 ms of work per batch at
1,000 records/s: p50 1.4 s with 1,500 ms, 0.25 s with 50 ms). :class:`ListenwellApp` builds the
same transport with a consumer whose fetch wait is ``fetch_max_wait_s``.

The price of a shorter wait is an empty fetch request per broker every ``fetch_max_wait_s`` while
a worker has nothing to read.

The same transport's producer registers every topic it sends to with its aiokafka client before
the first record (:class:`_Producer`). aiokafka's client asks the broker for the metadata of the
topics registered with it, and replaces all it knows with the answer; a topic is registered on its
first send only if the client does not know it yet. Faust reads every topic's metadata after
declaring each topic, so the worker's first records of ``mentions.scored`` were queued without
registering it;
when the first send to a topic created after the producer started (a changelog) registered that
topic, the refresh dropped ``mentions.scored`` from the client's metadata, its queued batches had
no known leader and waited, and Faust's flush before committing offsets waited with them: the
worker stopped, with the records fetched and the batch done, until the producer's request
timeout (20 min). With 12 partitions it happened in most starts (docs/operations.md, "Scaling
out").

The consumer also hands each fetched record to Faust's conductor by a direct await when the
delivery cannot wait (:func:`delivery_cannot_suspend`); Faust wraps every delivery in
``Service.wait_first`` (four tasks and three cancellations a record), which matters only for a
delivery that waits: one that does still goes through it, abandoned when a rebalance suspends the
flow.

:class:`NoStandbyAssignor` is Faust's partition assignor without standby table copies, for the
split deployment (docs/topology.md).

:func:`use_event_loop` picks the worker's event loop (``LISTENWELL_EVENT_LOOP``): the standard
library's by default, or uvloop. Faust's per-record machinery runs on the loop: uvloop saved ~12%
of the worker's CPU per mention when measured before the direct delivery above (Faust's
``wait_first`` then made four tasks a record); nine alternated pairs of ``bench/pipeline.py`` since
show no clear saving, so it stays opt-in (docs/performance.md, "uvloop, measured again"). The idle
uvloop workers that once left their last offsets uncommitted hit the producer's metadata race
above, on a commit without its fix; with the fix they pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from time import monotonic
from types import CodeType
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from faust.assignor import PartitionAssignor
from faust.channels import Channel
from faust.exceptions import ProducerSendError
from faust.sensors import Monitor
from faust.serializers.schemas import Schema
from faust.transport import conductor as faust_conductor
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.utils.functional import consecutive_numbers
from mode.utils.queues import FlowControlEvent

from streams.clock import SYSTEM_CLOCK, Clock
from streams.partitioning import KeyPartitions
from streams.settings import EventLoopKind

__all__ = [
    "LeanMonitor",
    "ListenwellApp",
    "MissingTopicRefresh",
    "NoStandbyAssignor",
    "await_topic_metadata",
    "delivery_cannot_suspend",
    "describe_kafka_clients",
    "use_event_loop",
]

log = logging.getLogger(__name__)

SUBSCRIBE_METADATA_PATIENCE_S = 10.0
"""How long the worker's consumer waits, before it subscribes, for the broker to know every topic
(see ``_ConsumerThread._wait_for_metadata``)."""


class NoStandbyAssignor(PartitionAssignor):
    """Faust's assignor, assigning no standby copies of table partitions.

    The split deployment's group mixes scoring processes (no tables) and brand processes. When a
    scoring process leads the group, faust-streaming's assignor leaves the standby partitions it
    computed out of the protocol assignment it sends (``ClientAssignment.kafka_protocol_
    assignment`` keeps them only for changelog topics of the leader's own tables), and every
    brand process then fails its check of that assignment (``on_assignment`` asserts). The
    standby setting cannot be used to turn them off: with no standbys and no tables, a scoring
    process would join with the round-robin assignor, a protocol the brand processes do not
    speak (``InconsistentGroupProtocolError``). So the setting stays and the assignor ignores it.
    """

    def __init__(self, app: Any, replicas: int = 0) -> None:
        super().__init__(app, replicas=0)


class LeanMonitor(Monitor):
    """Faust's monitor without its per-record statistics.

    Faust calls its monitor four times for every record (received, into the stream, out of the
    stream, acknowledged) and on every table read and write; the default one counts them in dicts
    and times each event, for Faust's web views, which the worker does not serve (its own
    figures are in :mod:`streams.metrics`). This one keeps only what Faust itself reads: the time
    each partition last handed the stream an event (its slow-processing warnings), and the
    commit, rebalance and assignment hooks (once per commit or rebalance, not per record).
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None


def _missing_topics(cluster: Any, topics: Iterable[str]) -> list[str]:
    """The ``topics`` an aiokafka client's ``cluster`` metadata has no partitions for, sorted."""
    return sorted(t for t in topics if not cluster.partitions_for_topic(t))


class MissingTopicRefresh:
    """Asks an aiokafka client for metadata again while topics it keeps metadata for are
    missing from the broker's last answer, after ``retry_s``, doubling up to ``max_retry_s``.

    aiokafka's client drops a topic the broker does not know yet from its metadata and asks
    again only when something forces it or after ``metadata_max_age_ms`` (5 minutes). A fresh
    worker subscribes to its table changelogs right after creating them, before the broker
    answers for them, so its group's assignment left those partitions out ("Ignoring missing
    topic") until that refresh, 5 minutes later, then rebalanced (docs/topology.md). Install it
    as a listener of the client's cluster metadata (:meth:`install`): every update with a topic
    missing schedules one more request; the group coordinator's own listener then sees the
    partitions appear and rejoins, and the assignment covers them."""

    def __init__(self, client: Any, retry_s: float = 0.5, max_retry_s: float = 30.0) -> None:
        self._client = client
        self._first_retry_s = retry_s
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._pending: asyncio.TimerHandle | None = None

    def install(self) -> None:
        """Listen to the client's metadata updates (from the client's own event loop)."""
        self._client.cluster.add_listener(self)

    def missing(self, cluster: Any) -> list[str]:
        """The client's topics with no partitions in ``cluster``."""
        return _missing_topics(cluster, self._client._topics)

    def __call__(self, cluster: Any) -> None:
        missing = self.missing(cluster)
        if not missing:
            self._retry_s = self._first_retry_s
            return
        if self._pending is not None:
            return
        log.info(
            "listenwell worker: the broker's metadata lacks %s; asking again in %.1f s",
            ", ".join(missing),
            self._retry_s,
        )
        self._pending = self._client._loop.call_later(self._retry_s, self._refresh)
        self._retry_s = min(self._retry_s * 2, self._max_retry_s)

    def _refresh(self) -> None:
        self._pending = None
        self._client.force_metadata_update()


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        app: Any = self.app
        # AIOKafkaConsumer hands this to its Fetcher when it starts, after this returns.
        consumer._fetch_max_wait_ms = int(app.fetch_max_wait_s * 1000)
        MissingTopicRefresh(consumer._client).install()
        return consumer

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Subscribe once the consumer's metadata has every topic (see
        :meth:`_wait_for_metadata`), so the group's first assignment covers them all."""
        wanted = set(topics)
        await self.call_thread(self._wait_for_metadata, wanted)
        await super().subscribe(wanted)

    async def _wait_for_metadata(self, topics: set[str]) -> None:
        """:func:`await_topic_metadata` for ``topics`` on the consumer's client (runs on the
        consumer's thread), on the app's clock."""
        app: Any = self.app
        await await_topic_metadata(self._ensure_consumer()._client, topics, clock=app.clock)


async def await_topic_metadata(
    client: Any,
    topics: set[str],
    *,
    clock: Clock = SYSTEM_CLOCK,
    patience_s: float = SUBSCRIBE_METADATA_PATIENCE_S,
    poll_s: float = 0.05,
) -> list[str]:
    """Ask the broker for the metadata of ``topics`` (aiokafka ``client``) until it has them all,
    asking again every ``poll_s`` until ``patience_s`` has passed; returns the topics still
    missing then (logged), else ``[]``.

    ``patience_s`` is checked between answers, not during a request: each round awaits the
    broker's answer with no limit of its own, so a broker that accepts the connection but does
    not answer holds a round for the client's request timeout (the consumer's is Faust's
    ``broker_request_timeout``, 90 s by default, for each broker the client tries), and the wait
    can overrun ``patience_s`` by that much.

    Faust subscribes to the table changelogs right after creating them; a group joined before
    the broker answers for them assigns without them, and :class:`MissingTopicRefresh` then
    repairs that with a second rebalance a second later, which replays what the worker processed
    meanwhile (``make chaos`` counted 46 mentions scored twice outside any fault)."""
    for topic in topics:
        client.add_topic(topic)
    deadline = clock.monotonic() + patience_s
    while True:
        missing = _missing_topics(client.cluster, topics)
        if not missing:
            return []
        if clock.monotonic() > deadline:
            log.warning(
                "listenwell worker: the broker's metadata still lacks %s; subscribing anyway",
                ", ".join(missing),
            )
            return missing
        await client.force_metadata_update()
        await clock.asleep(poll_s)


def _schema_decode_code() -> CodeType:
    """The code of the ``decode`` closure faust's ``Schema.compile`` returns (a Topic's decode)."""
    for const in Schema.compile.__code__.co_consts:
        if isinstance(const, CodeType) and const.co_name == "decode":
            return const
    raise RuntimeError("faust.serializers.schemas.Schema.compile no longer builds a decode closure")


_SCHEMA_DECODE = _schema_decode_code()
# The conductor's per-partition handler class: None when faust runs without its Cython parts.
_CONDUCTOR_HANDLER: Any = faust_conductor.ConductorHandler  # type: ignore[attr-defined]
_ERROR_HOOKS = ("on_key_decode_error", "on_value_decode_error", "on_decode_error", "throw")


def _channel_decodes_without_suspending(channel: Any) -> bool:
    """Whether the conductor's ``chan.decode(message, propagate=True)`` and, on a decode error,
    ``channel.on_key/value_decode_error`` are faust's own, none of which awaits anything: a Topic's
    decode compiled by ``Schema.compile`` (loads and ``create_event`` are plain calls; with
    ``propagate`` an error is raised, not awaited) or ``Channel.decode`` (``_create_event``), and
    the error hooks of ``Channel`` (a no-op and ``queue._throw``)."""
    decode = channel.decode
    if getattr(decode, "__code__", None) is not _SCHEMA_DECODE and (
        getattr(decode, "__func__", None) is not Channel.decode
    ):
        return False
    channel_type = type(channel)
    return all(getattr(channel_type, hook) is getattr(Channel, hook) for hook in _ERROR_HOOKS)


def delivery_cannot_suspend(consumer: Any, callback: Any, message: Any) -> bool:
    """Whether ``callback(message)`` — Faust's conductor delivering a fetched record to the
    channels of its partition — completes without yielding to the event loop, so Faust's
    ``wait_first`` around it (four tasks and three cancellations a record) can be a direct await:
    wait_first only matters for a delivery that waits, which it abandons when a rebalance
    suspends the flow or the consumer stops. What it costs: 39-46 µs of CPU a record
    (``bench/faust_delivery.py --records 50000 --pairs 4``, a bare agent on a real broker:
    86.0-94.5 µs a record through wait_first, 46.5-49.4 µs direct; docs/performance.md, "Faust's
    per-record delivery without wait_first").

    Read against faust-streaming 0.15.3 / mode-streaming 0.7.1
    (``Conductor._compile_message_handler``, the Cython ``ConductorHandler.__call__`` and
    ``ConductorCompiler.build``): the delivery awaits only when the conductor's
    ``_tp_to_callback_lock`` is held or has waiters (``asyncio.Lock.acquire``), when
    ``app.flow_control`` is suspended (``FlowControlEvent.acquire``), when the producer buffer
    holds more than ``max_messages`` (``ProducerBuffer.wait_until_ebb``), when a channel's queue
    is full (then it awaits the puts), or in a channel's decode and decode-error hooks (checked to
    be faust's own, which do not await). Anything unknown (another callback or handler type, a
    missing handler, a stopped or crashed consumer, a suspended flow) answers False: Faust's own
    path. ``tests/streams/test_faust_delivery.py`` fails when any of that code changes."""
    if consumer.suspend_flow.is_set() or consumer._stopped.is_set() or consumer._crashed.is_set():
        return False
    app = consumer.app
    conductor = app.topics
    if callback is not conductor.on_message or app.client_only:
        return False
    lock = conductor._tp_to_callback_lock
    if lock.locked() or lock._waiters:
        return False
    handler: Any = conductor._tp_to_callback.get(message.tp)
    if _CONDUCTOR_HANDLER is None or type(handler) is not _CONDUCTOR_HANDLER:
        return False
    acquire_flow_control = handler.acquire_flow_control
    wait_until_ebb = handler.wait_until_producer_ebb
    if (
        getattr(acquire_flow_control, "__func__", None) is not FlowControlEvent.acquire
        or getattr(wait_until_ebb, "__func__", None) is not ProducerBuffer.wait_until_ebb
    ):
        return False
    if acquire_flow_control.__self__._suspend.is_set():
        return False
    buffer = wait_until_ebb.__self__
    if buffer.size > buffer.max_messages:
        return False
    for channel in handler.channels:
        if channel.queue.full() or not _channel_decodes_without_suspending(channel):
            return False
    return True


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _deliver(self, callback: Callable[[Any], Awaitable[None]], message: Any) -> None:
        """Hand ``message`` to ``callback`` (the conductor): directly when the delivery cannot
        wait (:func:`delivery_cannot_suspend`), else as Faust does, abandoned if the flow is
        suspended (a rebalance) or the consumer stops while it waits."""
        if delivery_cannot_suspend(self, callback, message):
            await callback(message)
        else:
            await self.wait_first(callback(message), self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust-streaming 0.15.3's ``Consumer._drain_messages``, line for
        line: read offsets, gaps, ``commit_every``, a yield every 100 records, dropped records,
        the error handling), except that each record goes through :meth:`_deliver`: Faust's
        ``wait_first`` per record cost the worker 0.07-0.27 of its CPU per mention
        (``bench/pipeline.py``) and a bare agent 39-46 µs of CPU a record
        (``bench/faust_delivery.py``; :func:`delivery_cannot_suspend`).
        ``tests/streams/test_faust_delivery.py`` fails when Faust's loop changes or this copy
        differs from it otherwise than it lists."""
        callback = self.callback
        getmany = self.getmany
        deliver = self._deliver
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))

                # Sleeping because sometimes getmany is called in a loop
                # never releasing to the event loop
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            # We have a gap in income messages
                            if gap > 1 and r_offset:
                                acks_enabled = acks_enabled_for(message.topic)
                                if acks_enabled:
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            await deliver(callback, message)
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)

    def _new_offset(self, tp: Any) -> int | None:
        """The offset to commit for ``tp``: one past the first run of consecutive offsets acked
        (or skipped as a gap) from the last commit on. Faust's own, except that an offset
        listed twice counts once.

        Faust keeps the acked offsets in a list and cuts the commit at the first pair that is
        not consecutive. After a rebalance in which a worker kept a partition, its read offset
        was set back to the committed one while records fetched before were still handed over,
        so Faust recorded offsets it had delivered (and the one it had just read) as a gap; at
        the next commit the gap went into the list beside their acks. Each offset listed twice
        ended a commit one offset further: the committed offset crawled by one per commit
        interval (2.8 s) while the worker had processed everything; in ``make chaos`` 71
        offsets took 3 minutes, and the stall watchdog took the lag for a stall
        (docs/topology.md)."""
        acked = self._acked[tp]
        if not acked:
            return None
        max_offset = max(acked)
        gap_for_tp = self._gap[tp]
        if gap_for_tp:
            # Offsets Faust found missing (gaps) up to the highest acked count as acked.
            candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
            if candidates:
                skipped = [o for entry in candidates for o in range(entry.begin, entry.end)]
                acked.extend(skipped)
                gap_for_tp.chop(0, max(skipped[-1], max_offset + 1))
        unique = sorted(set(acked))
        if len(unique) != len(acked):
            log.info(
                "listenwell worker: %s[%d]: %d offsets were acked twice (%d-%d); counted once",
                tp.topic,
                tp.partition,
                len(acked) - len(unique),
                unique[0],
                unique[-1],
            )
        acked[:] = unique
        committed = self._committed_offset[tp]
        if committed and acked[0] - committed > 1:
            return None  # an offset before the first acked one is still being processed
        batch = next(consecutive_numbers(acked))
        acked[: len(batch)] = []
        self._acked_index[tp].difference_update(batch)
        return int(batch[-1]) + 1


RECORD_OVERHEAD_BYTES = 128
"""More than a record batch's header and one record's framing add to its key and value: a record
this much under the producer's request size limit cannot exceed it (aiokafka's own estimate)."""


class _Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer that registers each topic with its client before the first
    record (module docstring), and queues the worker's own records with less per-record work.

    :meth:`send` without a transaction, timestamp or headers, with a key, for a topic whose
    partitions the metadata knows, does what aiokafka's ``AIOKafkaProducer.send`` then does, and
    nothing else: the default partition of the key (murmur2, remembered per key:
    :class:`~streams.partitioning.KeyPartitions`; only when the configured partitioner is
    aiokafka's ``DefaultPartitioner`` itself, not a subclass, which may pick otherwise) or the
    given partition, then the record appended
    to the partition's batch by the producer's message accumulator; same producer, same batches,
    so Faust's flush before an offset commit still covers the record. Skipped: Faust's wrapper
    (transaction branches, its ``on_produce_message`` signal, which only Faust's livecheck
    listens to), aiokafka's metadata wait (the topic's metadata is known), its partitioner's
    two copies of the partition list, and its serialiser hooks (none configured). The
    accumulator is private to aiokafka: tests/streams/test_worker_producer.py pins the version this
    was checked against, and tests/integration/test_producer_metadata.py compares the records on
    the broker with aiokafka's own send.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._key_partitions = KeyPartitions()
        # A topic's partitions as the producer's metadata knows them (index = partition number).
        self._routes: dict[str, tuple[TopicPartition, ...]] = {}
        self._registered: set[str] = set()
        self._routed_for: Any = None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        producer = self._ensure_producer()
        if producer is not self._routed_for:
            self._follow(producer)
        if topic not in self._registered:
            # Tracked by the client's metadata before its first record (module docstring).
            producer.client.add_topic(topic)
            self._registered.add(topic)
        if (
            key is not None
            and transactional_id is None
            and timestamp is None
            and headers is None
            and len(key) + (0 if value is None else len(value)) + RECORD_OVERHEAD_BYTES
            <= self.max_request_size
        ):
            partitions = self._routes.get(topic) or self._route(producer, topic)
            if partitions is not None:
                if partition is None and self._default_partitioner:
                    partition = self._key_partitions.partition(key, len(partitions))
                if partition is not None and 0 <= partition < len(partitions):
                    try:
                        return await producer._message_accumulator.add_message(
                            partitions[partition],
                            key,
                            value,
                            self.request_timeout,
                            timestamp_ms=None,
                            headers=[],
                        )
                    except KafkaError as exc:
                        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        return await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    def _follow(self, producer: Any) -> None:
        """Start afresh for ``producer`` (a restarted producer is a new aiokafka producer), and
        forget the topics' partitions whenever its metadata changes."""
        self._routed_for = producer
        self._routes.clear()
        self._registered.clear()
        self._default_partitioner = type(self.partitioner) is DefaultPartitioner
        producer.client.cluster.add_listener(lambda _cluster: self._routes.clear())

    def _route(self, producer: Any, topic: str) -> tuple[TopicPartition, ...] | None:
        """``topic``'s partitions, if the metadata knows them and they are numbered 0 to n - 1
        as Kafka numbers them (else None: aiokafka's own send waits for the metadata)."""
        known = producer.client.cluster.partitions_for_topic(topic)
        if not known or known != set(range(len(known))):
            return None
        partitions = self._routes[topic] = tuple(
            TopicPartition(topic, p) for p in range(len(known))
        )
        return partitions


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class ListenwellApp(faust.App):
    """A Faust app whose consumer's fetch requests wait at most ``fetch_max_wait_s`` on the
    broker (Faust's own: 1.5 s), and whose consumer waits for metadata on ``clock``."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_s: float = 0.05,
        clock: Clock = SYSTEM_CLOCK,
        **kwargs: Any,
    ) -> None:
        self.fetch_max_wait_s = fetch_max_wait_s
        self.clock = clock
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def use_event_loop(kind: EventLoopKind) -> None:
    """Make the loops created from now on (Faust's worker loop and its consumer thread's) of
    ``kind``: ``uvloop`` or ``asyncio`` (the standard library's policy, left as it is)."""
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _describe_client(name: str, client: Any) -> list[str]:
    """An aiokafka client's tracked topics missing from its metadata, whether a metadata request
    is pending, and each connection's requests awaiting a reply."""
    lines = []
    try:
        missing = _missing_topics(client.cluster, client._topics)
        pending = client._md_update_fut is not None and not client._md_update_fut.done()
        lines.append(
            f"{name}: topics missing from metadata {missing}, metadata update pending {pending}"
        )
        for (node, group), conn in sorted(client._conns.items(), key=str):
            waiting = [type(request).__name__ for _, request, _ in conn._requests]
            lines.append(
                f"{name}: connection to {node} ({getattr(group, 'name', group)}) "
                f"connected={conn.connected()} idle {monotonic() - conn._last_action:.1f} s, "
                f"awaiting replies to {waiting}"
            )
    except Exception as exc:
        lines.append(f"{name}: client unreadable ({exc!r})")
    return lines


def describe_kafka_clients(app: Any) -> str:
    """What the worker's Kafka clients hold, as text, for a stalled worker's log: the producer's
    queued batches per partition with the leader its metadata knows (``None``: no leader, the
    batch waits) and the topics its client keeps metadata for; the consumer's assignment
    (position, paused), the leaders it knows, its fetcher's pending requests and its client's
    topics; Faust's active, paused and buffered partitions and whether it is rebalancing.

    Read from another thread than the consumer's, without locks: a diagnostic, not a figure.
    Every part that cannot be read says why instead of raising."""
    lines: list[str] = []
    try:
        producer = app.producer._producer
        if producer is None:
            lines.append("producer: not started")
        else:
            cluster = producer.client.cluster
            batches = producer._message_accumulator._batches
            queued = {
                f"{tp.topic}[{tp.partition}]": (len(q), cluster.leader_for_partition(tp))
                for tp, q in batches.items()
                if q
            }
            lines.append(f"producer: queued batches (count, leader) {queued or 'none'}")
            lines.append(f"producer: client topics {sorted(producer.client._topics)}")
            lines.extend(_describe_client("producer", producer.client))
    except Exception as exc:
        lines.append(f"producer: unreadable ({exc!r})")
    try:
        consumer = app.consumer._thread._ensure_consumer()
        client = consumer._client
        subscription = consumer._subscription.subscription
        assignment = subscription.assignment if subscription is not None else None
        if assignment is None:
            lines.append("consumer: no assignment")
        else:
            states = []
            for tp in sorted(assignment.tps):
                state = assignment.state_value(tp)
                position = state._position if state.has_valid_position else None
                leader = client.cluster.leader_for_partition(tp)
                paused = " paused" if state.paused else ""
                states.append(f"{tp.topic}[{tp.partition}]@{position} leader={leader}{paused}")
            lines.append(f"consumer: assignment {states}")
        fetcher = consumer._fetcher
        lines.append(
            f"consumer: fetcher in flight to {sorted(fetcher._in_flight)}, "
            f"{len(fetcher._pending_tasks)} pending, "
            f"records held for {sorted(f'{tp.topic}[{tp.partition}]' for tp in fetcher._records)}"
        )
        lines.append(f"consumer: client topics {sorted(client._topics)}")
        lines.extend(_describe_client("consumer", client))
        lines.append(f"consumer: generation {consumer._coordinator.generation}")
    except Exception as exc:
        lines.append(f"consumer: unreadable ({exc!r})")
    try:
        faust_consumer = app.consumer

        def tps(parts: Any) -> list[str]:
            return sorted(f"{tp.topic}[{tp.partition}]" for tp in parts or ())

        lines.append(
            f"faust: rebalancing={app.rebalancing} flow_active={faust_consumer.flow_active} "
            f"active={tps(faust_consumer._active_partitions)} "
            f"paused={tps(faust_consumer._paused_partitions)} "
            f"buffered={tps(faust_consumer._buffered_partitions)}"
        )
    except Exception as exc:
        lines.append(f"faust: unreadable ({exc!r})")
    return "\n".join(lines)
