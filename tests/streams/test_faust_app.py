"""The worker's Faust app: its consumer's fetch wait comes from the settings, not Faust's 1.5 s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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
