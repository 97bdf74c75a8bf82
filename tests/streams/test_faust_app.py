"""The worker's Faust app: its consumer's fetch wait comes from the settings, not Faust's 1.5 s."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from streams.app import faust_app
from streams.settings import Settings


def worker_consumer(settings: Settings) -> Any:
    app = faust_app(settings)
    consumer: Any = app.consumer
    thread: Any = consumer._thread
    return thread._create_worker_consumer(app.transport)


def test_the_consumer_waits_for_fetches_as_long_as_the_settings_say(tmp_path: Path) -> None:
    async def build() -> Any:
        return worker_consumer(
            Settings(app_id="fetch-wait", data_dir=tmp_path, fetch_max_wait_s=0.07)
        )

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == 70


def test_the_default_fetch_wait_is_far_below_fausts(tmp_path: Path) -> None:
    async def build() -> Any:
        return worker_consumer(Settings(app_id="fetch-wait-default", data_dir=tmp_path))

    consumer = asyncio.run(build())
    assert consumer._fetch_max_wait_ms == 50


def test_the_app_keeps_no_per_record_statistics_but_the_stream_inbound_time(
    tmp_path: Path,
) -> None:
    async def build() -> Any:
        app = faust_app(Settings(app_id="lean-monitor", data_dir=tmp_path, table_store="memory"))
        return app.monitor

    monitor = asyncio.run(build())
    monitor.on_message_in("tp", 1, object())
    state = monitor.on_stream_event_in("tp", 1, object(), object())
    monitor.on_stream_event_out("tp", 1, object(), object(), state)
    assert monitor.messages_received_total == 0 and monitor.events_total == 0
    # Faust's slow-processing warning reads when each partition last handed its stream an event
    assert "tp" in monitor.stream_inbound_time


def test_the_worker_runs_on_the_standard_loop_unless_told_uvloop() -> None:
    import uvloop

    from streams.faust_app import use_event_loop

    assert Settings().event_loop == "asyncio"
    before = asyncio.get_event_loop_policy()
    try:
        use_event_loop("asyncio")
        assert asyncio.get_event_loop_policy() is before
        use_event_loop("uvloop")
        loop = asyncio.new_event_loop()  # what Faust's worker and its consumer thread create
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)


class FakeClient:
    """aiokafka's client as far as the producer uses it: the topics it keeps metadata for."""

    def __init__(self) -> None:
        self._topics: set[str] = set()
        self.registered: list[str] = []
        self.cluster = FakeCluster(known=set())

    def add_topic(self, topic: str) -> None:
        self.registered.append(topic)
        self._topics.add(topic)


class FakeKafkaProducer:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.sent: list[tuple[str, bool]] = []

    async def send(self, topic: str, value: bytes | None, **_: Any) -> None:
        self.sent.append((topic, topic in self.client._topics))


def test_the_producer_registers_every_topic_with_its_client_before_the_first_send(
    tmp_path: Path,
) -> None:
    """So that a metadata refresh for another topic cannot drop it while its records are queued
    (streams/faust_app.py)."""

    async def send_all() -> FakeKafkaProducer:
        producer: Any = faust_app(Settings(app_id="register", data_dir=tmp_path)).producer
        fake = producer._producer = FakeKafkaProducer()
        for topic in ["scored", "changelog", "scored", "alerts", "changelog"]:
            await producer.send(topic, b"k", b"v", None, None, None)
        return fake

    fake = asyncio.run(send_all())
    assert fake.sent == [
        ("scored", True),
        ("changelog", True),
        ("scored", True),
        ("alerts", True),
        ("changelog", True),
    ]
    assert fake.client.registered == ["scored", "changelog", "alerts"]


class FakeCluster:
    """aiokafka's cluster metadata: the topics the broker's last answer had partitions for."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.listeners: list[Any] = []

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0, 1} if topic in self.known else None

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    def answer(self) -> None:
        """A metadata update arrived: aiokafka calls every listener."""
        for listener in self.listeners:
            listener(self)


class FakeMetadataClient:
    def __init__(self, topics: set[str], known: set[str]) -> None:
        self._topics = topics
        self.cluster = FakeCluster(known)
        self._loop = asyncio.get_running_loop()
        self.refreshes = 0

    def force_metadata_update(self) -> None:
        self.refreshes += 1


def test_a_topic_missing_from_the_metadata_is_asked_for_again_until_it_is_there() -> None:
    from streams.faust_app import MissingTopicRefresh

    async def scenario() -> list[int]:
        client = FakeMetadataClient({"raw", "parts-changelog"}, known={"raw"})
        MissingTopicRefresh(client, retry_s=0.01, max_retry_s=0.02).install()
        seen = []
        client.cluster.answer()
        client.cluster.answer()  # a second answer meanwhile schedules no second request
        await asyncio.sleep(0.05)
        seen.append(client.refreshes)
        client.cluster.answer()  # still missing: asked again
        await asyncio.sleep(0.05)
        seen.append(client.refreshes)
        client.cluster.known.add("parts-changelog")
        client.cluster.answer()  # there now: nothing more is asked
        await asyncio.sleep(0.05)
        seen.append(client.refreshes)
        return seen

    assert asyncio.run(scenario()) == [1, 2, 2]


def test_the_worker_consumer_asks_again_for_missing_topics(tmp_path: Path) -> None:
    from streams.faust_app import MissingTopicRefresh

    async def build() -> Any:
        return worker_consumer(Settings(app_id="missing-topics", data_dir=tmp_path))

    consumer = asyncio.run(build())
    listeners = consumer._client.cluster._listeners
    assert any(isinstance(listener, MissingTopicRefresh) for listener in listeners)


def test_the_kafka_clients_of_an_app_not_started_are_described_without_an_error(
    tmp_path: Path,
) -> None:
    from streams.faust_app import describe_kafka_clients

    text = describe_kafka_clients(faust_app(Settings(app_id="describe", data_dir=tmp_path)))
    assert [line.split(":")[0] for line in text.splitlines()] == ["producer", "consumer", "faust"]
    assert "producer: not started" in text


def test_a_stalled_tasks_await_chain_names_every_coroutine_down_to_what_it_waits_for() -> None:
    from streams.app import await_chain

    async def inner(gate: asyncio.Event) -> None:
        await gate.wait()

    async def outer(gate: asyncio.Event) -> None:
        await inner(gate)

    async def scenario() -> list[str]:
        gate = asyncio.Event()
        task = asyncio.create_task(outer(gate))
        await asyncio.sleep(0)
        chain = await_chain(task)
        gate.set()
        await task
        return chain

    chain = asyncio.run(scenario())
    assert [step.rsplit(" in ", 1)[-1] for step in chain[:3]] == ["outer", "inner", "wait"]
    assert chain[-1].startswith("awaits "), "and what the innermost one awaits"


def consumer_with_acked(
    tmp_path: Path, acked: list[int], committed: int, gaps: list[tuple[int, int]] = ()
) -> tuple[Any, Any]:
    """The worker's Faust consumer (not started) holding ``acked`` offsets of one partition
    whose last commit was ``committed``, and ``gaps`` (intervals Faust found offsets missing)."""
    from faust.types import TP

    consumer: Any = faust_app(Settings(app_id="commit", data_dir=tmp_path)).consumer
    tp = TP("p.mentions.raw", 7)
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    consumer._committed_offset[tp] = committed
    for begin, end in gaps:
        consumer._gap[tp].addi(begin, end)
    return consumer, tp


def test_an_offset_acked_twice_does_not_hold_the_commit_back(tmp_path: Path) -> None:
    """Seen in make chaos after a broker restart: offsets 7232-7298 were each in Faust's acked
    list twice, and the committed offset moved by one per commit for 3 minutes while every
    record up to 11000 had been processed."""
    from faust.transport.drivers.aiokafka import Consumer as FaustsConsumer

    twice = sorted([*range(7232, 7299), *range(7232, 7299)])
    acked = [*twice, *range(7299, 11001)]
    consumer, tp = consumer_with_acked(tmp_path, acked, committed=7232)
    assert consumer._new_offset(tp) == 11001

    fausts, tp = consumer_with_acked(tmp_path, acked, committed=7232)
    assert FaustsConsumer._new_offset(fausts, tp) == 7233, "Faust's own crawls"


def test_a_gap_over_acked_offsets_counts_once_and_an_unacked_offset_still_holds(
    tmp_path: Path,
) -> None:
    consumer, tp = consumer_with_acked(tmp_path, [10, 11, 12, 13, 14, 16], 10, gaps=[(12, 15)])
    assert consumer._new_offset(tp) == 15, "15 is neither acked nor a gap"
    consumer._committed_offset[tp] = 15  # what the commit of 15 records
    consumer._acked[tp].append(15)
    assert consumer._new_offset(tp) == 17


class MetadataAnsweringClient(FakeMetadataClient):
    """A client whose broker learns of ``late`` after ``answers_needed`` metadata requests."""

    def __init__(self, topics: set[str], known: set[str], late: str, answers_needed: int) -> None:
        super().__init__(topics, known)
        self.late = late
        self.answers_needed = answers_needed

    def add_topic(self, topic: str) -> None:
        self._topics.add(topic)

    async def force_metadata_update(self) -> None:  # type: ignore[override]
        self.refreshes += 1
        if self.refreshes >= self.answers_needed:
            self.cluster.known.add(self.late)


def test_the_consumer_waits_for_a_topic_the_broker_learns_of_late() -> None:
    from streams.clock import FakeClock
    from streams.faust_app import await_topic_metadata

    clock = FakeClock()

    async def scenario() -> tuple[list[str], MetadataAnsweringClient]:
        client = MetadataAnsweringClient(set(), {"raw"}, late="parts-changelog", answers_needed=3)
        missing = await await_topic_metadata(
            client, {"raw", "parts-changelog"}, clock=clock, poll_s=0.05
        )
        return missing, client

    missing, client = asyncio.run(scenario())
    assert missing == []
    assert client.refreshes == 3
    assert client._topics == {"raw", "parts-changelog"}  # asked for by name
    assert clock.sleeps == [0.05, 0.05, 0.05]


def test_the_consumer_subscribes_anyway_after_its_patience_and_says_what_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from streams.clock import FakeClock
    from streams.faust_app import await_topic_metadata

    clock = FakeClock()
    start = clock.monotonic()

    async def scenario() -> tuple[list[str], MetadataAnsweringClient]:
        client = MetadataAnsweringClient(set(), {"raw"}, late="never", answers_needed=10**9)
        missing = await await_topic_metadata(
            client, {"raw", "parts-changelog"}, clock=clock, patience_s=10.0, poll_s=0.5
        )
        return missing, client

    with caplog.at_level(logging.WARNING, logger="streams.faust_app"):
        missing, client = asyncio.run(scenario())
    assert missing == ["parts-changelog"]
    assert 10.0 < clock.monotonic() - start <= 10.5  # gave up once its patience was spent
    assert client.refreshes == 21
    assert "still lacks parts-changelog; subscribing anyway" in caplog.text
