"""The connector supervisor: checkpoint after flush, Retry-After, backoff, isolation, metrics."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import pytest
from prometheus_client import CollectorRegistry

from connectors.base import AuthError, RateLimited, TransientError
from connectors.checkpoints import Checkpoint
from connectors.producer import ProducerError
from connectors.runner import BackoffPolicy, ConnectorMetrics, InstanceRunner
from connectors.supervisor import Supervisor, progress_lines
from streams.clock import FakeClock
from streams.records import Mention
from tests import factories

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
mention = partial(factories.mention, source="fake", brand="northwind-air")


Step = tuple[list[Mention], str | None] | Exception


class ScriptedSource:
    """Answers fetch() from a script; records the cursors it was asked for."""

    def __init__(self, name: str, script: list[Step], *, repeat_last: bool = False) -> None:
        self.name = name
        self.script = list(script)
        self.repeat_last = repeat_last
        self.cursors: list[str | None] = []
        self.skipped = 0

    def check(self) -> list[str]:
        return []

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        self.cursors.append(cursor)
        item = self.script[0] if self.repeat_last and len(self.script) == 1 else self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class PagedSource:
    """A finite source of ``n`` mentions, ``page`` at a time; cursor = index."""

    def __init__(self, name: str, n: int, page: int) -> None:
        self.name = name
        self.items = [mention(i) for i in range(n)]
        self.page = page
        self.cursors: list[str | None] = []

    def check(self) -> list[str]:
        return []

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        self.cursors.append(cursor)
        start = int(cursor or 0)
        end = min(start + self.page, len(self.items))
        return self.items[start:end], (str(end) if end < len(self.items) else None)


class Journal:
    """One ordered log shared by the fake producer and the fake state store."""

    def __init__(self) -> None:
        self.events: list[str] = []


class FakeSink:
    def __init__(self, journal: Journal, *, fail_flush: bool = False) -> None:
        self.journal = journal
        self.fail_flush = fail_flush
        self.sent: list[Mention] = []

    def send(self, mention: Mention, *, topic: str | None = None) -> None:
        self.sent.append(mention)
        self.journal.events.append(f"send {mention.id} -> {topic}")

    def flush(self) -> None:
        if self.fail_flush:
            raise ProducerError("delivery to Kafka failed: broker down")
        self.journal.events.append("flush")


class FakeState:
    def __init__(self, journal: Journal, saved: dict[str, Checkpoint] | None = None) -> None:
        self.journal = journal
        self.saved: dict[str, Checkpoint] = dict(saved or {})

    def load(self) -> dict[str, Checkpoint]:
        return dict(self.saved)

    def save(self, instance: str, checkpoint: Checkpoint) -> None:
        self.saved[instance] = checkpoint
        self.journal.events.append(f"save {instance} {checkpoint.cursor} {checkpoint.exhausted}")


def make_runner(
    source: ScriptedSource | PagedSource,
    *,
    journal: Journal | None = None,
    sink: FakeSink | None = None,
    state: FakeState | None = None,
    registry: CollectorRegistry | None = None,
    **kwargs: object,
) -> tuple[InstanceRunner, FakeSink, FakeState, CollectorRegistry]:
    journal = journal or Journal()
    sink = sink or FakeSink(journal)
    state = state or FakeState(journal)
    registry = registry or CollectorRegistry()
    kwargs.setdefault("clock", FakeClock(datetime.fromtimestamp(1_700_000_000, UTC)))
    runner = InstanceRunner(
        source.name,
        "fake",
        source,
        sink_factory=lambda name: sink,
        state=state,
        topic="mentions.raw",
        metrics=ConnectorMetrics(registry),
        **kwargs,  # type: ignore[arg-type]
    )
    return runner, sink, state, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_checkpoint_is_written_only_after_every_mention_is_produced_and_flushed() -> None:
    journal = Journal()
    source = ScriptedSource("inst-a", [([mention(1), mention(2)], "c2"), ([mention(3)], None)])
    runner, _, state, _ = make_runner(source, journal=journal)

    assert runner.step() == 0.0  # a full page: fetch the next one right away
    assert runner.step() == math.inf  # the source ended
    assert journal.events == [
        "send fake:1 -> mentions.raw",
        "send fake:2 -> mentions.raw",
        "flush",
        "save inst-a c2 False",
        "send fake:3 -> mentions.raw",
        "flush",
        "save inst-a c2 True",
    ]
    assert state.saved["inst-a"].updated_at == datetime.fromtimestamp(1_700_000_000.0, UTC)
    assert source.cursors == [None, "c2"]


def test_failed_flush_saves_no_checkpoint_and_the_page_is_fetched_again() -> None:
    journal = Journal()
    sink = FakeSink(journal, fail_flush=True)
    source = ScriptedSource("inst-a", [([mention(1)], "c1"), ([mention(1)], "c1")])
    runner, _, state, registry = make_runner(
        source, journal=journal, sink=sink, rng=random.Random(1)
    )

    delay = runner.step()
    assert 0.5 <= delay <= 1.0
    assert state.saved == {}
    assert runner.status.state == "backoff"
    assert "broker down" in (runner.status.last_error or "")
    assert value(registry, "listenwell_connector_fetches_total", source="fake",
                 instance="inst-a", outcome="kafka_error") == 1.0  # fmt: skip
    sink.fail_flush = False
    runner.step()
    assert source.cursors == [None, None]  # the same page again: nothing was lost
    assert state.saved["inst-a"].cursor == "c1"


def test_retry_after_of_a_rate_limit_is_the_wait() -> None:
    source = ScriptedSource(
        "inst-a", [RateLimited("429 Too Many Requests", retry_after_s=42.0), ([], "c0")]
    )
    runner, _, _, registry = make_runner(source, interval_s=60.0)

    assert runner.step() == 42.0
    assert runner.status.state == "rate_limited"
    assert value(registry, "listenwell_connector_backoff_seconds", instance="inst-a") == 42.0
    assert value(registry, "listenwell_connector_fetches_total", source="fake",
                 instance="inst-a", outcome="rate_limited") == 1.0  # fmt: skip
    assert runner.step() == 60.0  # nothing new: poll again after the interval
    assert value(registry, "listenwell_connector_backoff_seconds", instance="inst-a") == 0.0


def test_rate_limit_without_retry_after_backs_off() -> None:
    source = ScriptedSource("inst-a", [RateLimited("slow down")])
    runner, *_ = make_runner(source, policy=BackoffPolicy(base_s=4.0), rng=random.Random(3))
    assert 2.0 <= runner.step() <= 4.0


def test_transient_errors_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    def delays(seed: int) -> list[float]:
        source = ScriptedSource("inst-a", [TransientError("503")], repeat_last=True)
        policy = BackoffPolicy(base_s=1.0, cap_s=30.0)
        runner, *_ = make_runner(source, policy=policy, rng=random.Random(seed))
        return [runner.step() for _ in range(10)]

    got = delays(1)
    nominal = [min(30.0, 2.0**i) for i in range(10)]  # 1, 2, 4, 8, 16, 30, 30, ...
    for delay, d in zip(got, nominal, strict=True):
        assert d / 2 <= delay <= d
    assert got[:6] == sorted(got[:6])  # grows until the cap: [d/2, d] never overlaps [d, 2d]
    assert max(got) <= 30.0
    assert got[-1] >= 15.0
    assert got != nominal  # jitter
    assert delays(1) == got  # seeded: reproducible
    assert delays(2) != got


def test_success_resets_the_backoff() -> None:
    source = ScriptedSource(
        "inst-a", [TransientError("503"), TransientError("503"), ([], "c"), TransientError("5")]
    )
    runner, *_ = make_runner(source, rng=random.Random(0), policy=BackoffPolicy(base_s=10.0))
    runner.step()
    assert runner.step() >= 10.0
    runner.step()
    assert runner.step() <= 10.0


def test_auth_error_marks_the_instance_failed_and_retries_rarely() -> None:
    source = ScriptedSource("inst-a", [AuthError("401 invalid_grant")])
    runner, _, _, registry = make_runner(source, policy=BackoffPolicy(auth_retry_s=900.0))

    assert runner.step() == 900.0
    assert runner.status.state == "failed"
    assert "credentials refused (401 invalid_grant)" in (runner.status.last_error or "")
    line = progress_lines([runner.status], now=1_700_000_000.0)[0]
    assert "inst-a [fake] failed" in line and "credentials refused" in line
    assert value(registry, "listenwell_connector_fetches_total", source="fake",
                 instance="inst-a", outcome="auth_error") == 1.0  # fmt: skip


def test_an_unexpected_error_in_a_source_backs_off_instead_of_crashing() -> None:
    source = ScriptedSource("inst-a", [ValueError("bad cursor 'x'")])
    runner, *_ = make_runner(source, rng=random.Random(0))
    assert runner.step() > 0
    assert runner.status.last_error == "ValueError: bad cursor 'x'"


def test_resume_starts_from_the_checkpoint_and_an_exhausted_source_stays_done() -> None:
    source = PagedSource("inst-a", n=5, page=2)
    runner, sink, _, _ = make_runner(source)
    runner.resume(Checkpoint("2", T0))
    while runner.step() != math.inf:
        pass
    assert source.cursors == ["2", "4"]
    assert [m.id for m in sink.sent] == ["fake:2", "fake:3", "fake:4"]

    done_source = PagedSource("inst-b", n=5, page=2)
    done, *_ = make_runner(done_source)
    done.resume(Checkpoint("4", T0, exhausted=True))
    assert done.step() == math.inf
    assert done_source.cursors == []


def test_metrics_count_produced_mentions_and_freshness() -> None:
    source = PagedSource("inst-a", n=5, page=2)
    source.skipped = 0  # type: ignore[attr-defined]
    runner, _, _, registry = make_runner(source)
    while runner.step() != math.inf:
        pass
    assert value(registry, "listenwell_connector_mentions_produced_total",
                 source="fake", instance="inst-a") == 5.0  # fmt: skip
    assert value(registry, "listenwell_connector_fetches_total", source="fake",
                 instance="inst-a", outcome="ok") == 3.0  # fmt: skip
    assert value(registry, "listenwell_connector_last_success_timestamp_seconds",
                 instance="inst-a") == 1_700_000_000.0  # fmt: skip
    assert runner.status.line(1_700_000_030.0).startswith(
        "inst-a [fake] done: 5 produced, cursor 4, last ok 30s ago"
    )


def test_skipped_items_of_a_source_are_counted() -> None:
    source = ScriptedSource("inst-a", [([mention(1)], "c1"), ([], "c1")])
    runner, _, _, registry = make_runner(source)
    source.skipped = 2
    runner.step()
    source.skipped = 3
    runner.step()
    assert value(registry, "listenwell_connector_items_skipped_total",
                 source="fake", instance="inst-a") == 3.0  # fmt: skip


def test_speedup_paces_mentions_by_event_time() -> None:
    clock = FakeClock()
    page = [mention(1, 0.0), mention(2, 10.0), mention(3, 30.0)]
    source = ScriptedSource("inst-a", [(page, None)])
    runner, sink, _, _ = make_runner(source, speedup=10.0, clock=clock)
    runner.step()
    assert clock.sleeps == pytest.approx([1.0, 2.0])
    assert len(sink.sent) == 3


def test_a_stop_during_pacing_saves_no_checkpoint() -> None:
    page = [mention(1, 0.0), mention(2, 100.0)]
    source = ScriptedSource("inst-a", [(page, "c")])
    stopping = threading.Event()
    stopping.set()
    runner, sink, state, _ = make_runner(source, speedup=1.0, stop=stopping)
    assert runner.step() == math.inf
    assert [m.id for m in sink.sent] == ["fake:1"]
    assert state.saved == {}
    assert runner.status.state == "stopped"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20.0  # liveness bound, not a speed assertion
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_one_failing_instance_never_stops_the_others() -> None:
    journal = Journal()
    state = FakeState(journal, {"good": Checkpoint("2", T0)})
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    fast = BackoffPolicy(base_s=0.001, cap_s=0.005)
    sinks: dict[str, FakeSink] = {}

    def sink_factory(name: str) -> FakeSink:
        return sinks.setdefault(name, FakeSink(journal))

    def runner(source: ScriptedSource | PagedSource) -> InstanceRunner:
        return InstanceRunner(
            source.name, "fake", source, sink_factory=sink_factory, state=state,
            topic="mentions.raw", metrics=metrics, policy=fast, interval_s=0.001,
        )  # fmt: skip

    broken = ScriptedSource("broken", [TransientError("502 Bad Gateway")], repeat_last=True)
    buggy = ScriptedSource("buggy", [KeyError("boom")], repeat_last=True)
    good = PagedSource("good", n=9, page=2)
    supervisor = Supervisor([runner(broken), runner(buggy), runner(good)], state)
    supervisor.start()
    try:
        wait_until(lambda: supervisor.runners[2].done, "the good instance to finish")
        wait_until(lambda: len(broken.cursors) >= 3, "the broken instance to retry")
    finally:
        supervisor.stop()
    assert supervisor.finished()
    assert good.cursors[0] == "2"  # resumed from its checkpoint
    assert [m.id for m in sinks["good"].sent] == [f"fake:{i}" for i in range(2, 9)]
    assert state.saved["good"].exhausted
    assert "broken" not in state.saved and "buggy" not in state.saved
    states = {s.name: s.state for s in supervisor.statuses()}
    assert states == {"broken": "stopped", "buggy": "stopped", "good": "done"}
