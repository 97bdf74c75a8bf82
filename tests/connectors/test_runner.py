"""The runner: pages pulled to exhaustion, pacing by event time, progress, and producer errors.

Unit level only: an in-memory producer and a fake clock stand in for Kafka and time. The run
against the real broker lives in the integration tests.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

import connectors.producer as producer_module
from connectors.producer import MentionProducer, ProducerError
from connectors.replay import ReplaySource, write_jsonl
from connectors.runner import Progress, run_source
from connectors.simulate import SimulateSource, generate
from streams.clock import FakeClock
from streams.records import Mention
from tests.factories import T0, mention


class MemoryProducer:
    """Records what was sent, and when (seconds since it was made, by the fake clock); optionally
    takes time per send."""

    def __init__(self, clock: FakeClock | None = None, send_cost: float = 0.0) -> None:
        self.clock = clock
        self.started = clock.monotonic() if clock else 0.0
        self.send_cost = send_cost
        self.sent: list[tuple[str | None, Mention, float]] = []
        self.flushes = 0

    def send(self, mention: Mention, *, topic: str | None = None) -> None:
        now = self.clock.monotonic() - self.started if self.clock else 0.0
        self.sent.append((topic, mention, now))
        if self.clock:
            self.clock.advance(self.send_cost)

    def flush(self) -> None:
        self.flushes += 1


class ListSource:
    """A source over fixed pages; an empty page with a cursor means "nothing new yet"."""

    def __init__(self, pages: list[list[Mention]], name: str = "list") -> None:
        self.name = name
        self.pages = pages
        self.cursors: list[str | None] = []

    def check(self) -> list[str]:
        return []

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        self.cursors.append(cursor)
        index = 0 if cursor is None else int(cursor)
        last = index + 1 >= len(self.pages)
        return self.pages[index], None if last else str(index + 1)


def test_without_speedup_everything_is_sent_in_order_without_sleeping() -> None:
    source = SimulateSource("crisis", seed=7, hours=2.0, page_size=100)
    expected = generate("crisis", seed=7, hours=2.0)
    clock = FakeClock()
    producer = MemoryProducer(clock)
    stats = run_source(source, producer, topic="t.mentions.raw", clock=clock)
    assert [m for _, m, _ in producer.sent] == expected
    assert {topic for topic, _, _ in producer.sent} == {"t.mentions.raw"}
    assert clock.sleeps == []
    assert producer.flushes == 1
    assert stats.produced == len(expected)
    assert stats.skipped == 0


def test_speedup_paces_sends_by_event_time() -> None:
    pages = [[mention(1, 0), mention(2, 10)], [mention(3, 70), mention(4, 70)], [mention(5, 100)]]
    clock = FakeClock()
    producer = MemoryProducer(clock)
    stats = run_source(ListSource(pages), producer, topic="raw", speedup=10.0, clock=clock)
    send_times = [at for _, _, at in producer.sent]
    assert send_times == pytest.approx([0.0, 1.0, 7.0, 7.0, 10.0])
    assert stats.produced == 5
    assert stats.seconds == pytest.approx(10.0)


def test_pacing_does_not_add_up_delays_when_sending_is_slow() -> None:
    # Each send costs 2 s but mentions are only 1 s apart (at 1x): the runner is behind schedule,
    # so it must never sleep, and must not try to keep the original gaps.
    pages = [[mention(i, float(i)) for i in range(5)]]
    clock = FakeClock()
    producer = MemoryProducer(clock, send_cost=2.0)
    run_source(ListSource(pages), producer, topic="raw", speedup=1.0, clock=clock)
    assert clock.sleeps == []
    assert [at for _, _, at in producer.sent] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_pacing_catches_up_after_a_slow_send() -> None:
    # One slow send (5 s) then a gap of 10 s in event time: the runner sleeps only the remainder.
    pages = [[mention(1, 0), mention(2, 10)]]
    clock = FakeClock()

    class SlowFirst(MemoryProducer):
        def send(self, m: Mention, *, topic: str | None = None) -> None:
            super().send(m, topic=topic)
            if len(self.sent) == 1:
                clock.advance(5.0)

    producer = SlowFirst(clock)
    run_source(ListSource(pages), producer, topic="raw", speedup=1.0, clock=clock)
    assert clock.sleeps == pytest.approx([5.0])
    assert producer.sent[1][2] == pytest.approx(10.0)


def test_progress_every_n_mentions_and_at_the_end() -> None:
    pages = [[mention(i, i * 60.0) for i in range(250)]]
    clock = FakeClock()
    producer = MemoryProducer(clock, send_cost=0.001)
    reports: list[Progress] = []
    run_source(
        ListSource(pages),
        producer,
        topic="raw",
        clock=clock,
        progress=reports.append,
        progress_every=100,
        progress_interval_s=3600.0,
    )
    assert [r.produced for r in reports] == [100, 200, 250]
    assert reports[-1].event_time == T0 + timedelta(minutes=249)
    assert reports[-1].seconds == pytest.approx(0.25)
    assert reports[-1].rate == pytest.approx(1000.0)


def test_progress_about_every_second_on_slow_runs() -> None:
    pages = [[mention(i, float(i)) for i in range(10)]]
    clock = FakeClock()
    producer = MemoryProducer(clock, send_cost=0.5)
    reports: list[Progress] = []
    run_source(
        ListSource(pages),
        producer,
        topic="raw",
        clock=clock,
        progress=reports.append,
        progress_interval_s=1.0,
    )
    assert [r.produced for r in reports] == [2, 4, 6, 8, 10, 10]


def test_skipped_lines_of_a_replay_file_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    write_jsonl([mention(1, 0), mention(2, 5)], path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{broken\n")
    producer = MemoryProducer()
    stats = run_source(ReplaySource(path), producer, topic="raw")
    assert stats.produced == 2
    assert stats.skipped == 1


def test_live_source_with_nothing_new_is_polled_again() -> None:
    pages = [[mention(1, 0)], [], [], [mention(2, 1)]]
    source = ListSource(pages)
    clock = FakeClock()
    producer = MemoryProducer(clock)
    stats = run_source(source, producer, topic="raw", clock=clock, poll_interval_s=2.0)
    assert stats.produced == 2
    assert clock.sleeps == [2.0, 2.0]
    assert source.cursors == [None, "1", "2", "3"]


def test_max_mentions_stops_early() -> None:
    pages = [[mention(i, float(i)) for i in range(3)], [mention(9, 9.0)]]
    source = ListSource(pages)
    producer = MemoryProducer()
    stats = run_source(source, producer, topic="raw", max_mentions=2)
    assert stats.produced == 2
    assert source.cursors == [None]
    assert producer.flushes == 1


def test_producer_errors_surface() -> None:
    class Failing(MemoryProducer):
        def send(self, m: Mention, *, topic: str | None = None) -> None:
            raise ProducerError("delivery to Kafka at 127.0.0.1:9092 failed: boom")

    with pytest.raises(ProducerError, match="boom"):
        run_source(ListSource([[mention(1, 0)]]), Failing(), topic="raw")


def test_bad_speedup_is_refused() -> None:
    with pytest.raises(ValueError, match="speedup"):
        run_source(ListSource([[]]), MemoryProducer(), topic="raw", speedup=0.0)


# -- MentionProducer around kafka-python -------------------------------------------------------


class FakeFuture:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] = []
        self.errbacks: list[Callable[[BaseException], None]] = []

    def add_callback(self, fn: Callable[[Any], None]) -> FakeFuture:
        self.callbacks.append(fn)
        return self

    def add_errback(self, fn: Callable[[BaseException], None]) -> FakeFuture:
        self.errbacks.append(fn)
        return self


class FakeKafkaProducer:
    instances: ClassVar[list[FakeKafkaProducer]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.records: list[tuple[str, bytes, bytes]] = []
        self.futures: list[FakeFuture] = []
        self.closed = False
        FakeKafkaProducer.instances.append(self)

    def send(self, topic: str, value: bytes, key: bytes) -> FakeFuture:
        self.records.append((topic, key, value))
        future = FakeFuture()
        self.futures.append(future)
        return future

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_mention_producer_keys_by_brand_with_safe_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(producer_module, "KafkaProducer", FakeKafkaProducer)
    m = mention(1, 0, brand="northwind-air")
    with MentionProducer("127.0.0.1:9092", topic="mentions.raw") as producer:
        producer.send(m)
        producer.send(m, topic="other")
    kafka = FakeKafkaProducer.instances[-1]
    assert kafka.config["acks"] == "all"
    assert kafka.config["enable_idempotence"] is True
    assert kafka.config["linger_ms"] == 5
    assert kafka.records == [
        ("mentions.raw", b"northwind-air", m.to_json()),
        ("other", b"northwind-air", m.to_json()),
    ]
    assert Mention.from_json(kafka.records[0][2]) == m
    assert kafka.closed


def test_failed_delivery_is_raised_with_the_broker_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer_module, "KafkaProducer", FakeKafkaProducer)
    producer = MentionProducer("10.0.0.1:9092", topic="mentions.raw")
    producer.send(mention(1, 0))
    kafka = FakeKafkaProducer.instances[-1]
    for errback in kafka.futures[0].errbacks:
        errback(RuntimeError("NotEnoughReplicas"))
    with pytest.raises(ProducerError, match=r"10\.0\.0\.1:9092.*NotEnoughReplicas"):
        producer.flush()
    with pytest.raises(ProducerError):
        producer.send(mention(2, 1))


def test_send_without_any_topic_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer_module, "KafkaProducer", FakeKafkaProducer)
    with pytest.raises(ValueError, match="topic"):
        MentionProducer("127.0.0.1:9092").send(mention(1, 0))


def test_unreachable_broker_is_a_clear_error() -> None:
    # A port nobody listens on: bind, read the port, close.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProducerError, match=rf"unreachable at 127\.0\.0\.1:{port}"):
        MentionProducer(f"127.0.0.1:{port}", connect_timeout_s=0.5)
