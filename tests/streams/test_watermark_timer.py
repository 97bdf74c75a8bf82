"""The wall-clock watermark without a broker: which partitions are live, which brands are due,
what the pipeline does for a quiet brand, and the timer step's order (delivered, then stored)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.agents import BatchStep
from streams.clock import FakeClock
from streams.engine import Engine
from streams.metrics import WorkerMetrics
from streams.offsets import OffsetGap, SkippedRecordRecovery
from streams.pipeline import BrandRecord, BrandStage, RawRecord, decode_scored
from streams.publish import OutputTopics, Publisher
from streams.records import Alert, CustomerHealth, Mention
from streams.rules import load_rules
from streams.scoring import Scorer
from streams.tables import BrandStore
from streams.watermark_timer import PartitionLiveness, WatermarkTimer, due_brands
from tests import factories
from tests.streams.fakes import FakeSink, FakeTable

REPO = Path(__file__).resolve().parents[2]
QUIET_RULES = REPO / "tests" / "data" / "quiet_brand_rules.yaml"
DEFAULT_RULES = REPO / "alert_rules" / "default.yaml"
T0 = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)
LATENESS = timedelta(seconds=5)
SCORED = "p.mentions.scored"
NAMES = OutputTopics.named("p.")
COMPLAINT = "Flight cancelled, on hold for hours, nobody cares. I'm done."


def said(n: int, at: datetime, *, brand: str = "acme", customer: str | None = None) -> Mention:
    return factories.mention(f"{brand}:{n}", at=at, brand=brand, customer=customer, text=COMPLAINT)


_scorer = Scorer()


def scored(offset: int, mention: Mention, partition: int = 1) -> RawRecord:
    """``mention`` as the scoring stage publishes it, at ``offset`` of ``mentions.scored``."""
    value = _scorer.score(mention, scored_at=mention.created_at).to_json()
    return RawRecord(SCORED, partition, offset, mention.brand.encode(), value)


class Worker:
    """The brand stage's step and the timer over fake tables, producer and consumer, on a fake
    clock."""

    def __init__(
        self,
        rules: Path = QUIET_RULES,
        *,
        horizon_s: float = 300.0,
        owned: frozenset[int] = frozenset({0, 1, 2, 3}),
        hold_deliveries: bool = False,
    ) -> None:
        self.clock = FakeClock(T0)
        self.sink = FakeSink(hold=hold_deliveries)
        self.brands, self.customers = FakeTable("brands-cl"), FakeTable("customers-cl")
        self.store = BrandStore(self.brands, self.customers, self.sink)
        self.metrics = WorkerMetrics(CollectorRegistry())
        self.lock = asyncio.Lock()
        self.liveness = PartitionLiveness(horizon_s)
        self.owned = set(owned)
        engine = Engine(load_rules(rules), allowed_lateness=LATENESS)
        self.pipeline = BrandStage(engine, clock=self.clock)
        publisher = Publisher(self.sink, NAMES)
        self.next_offset = 0

        def no_gaps(gaps: list[OffsetGap]) -> list[RawRecord]:
            raise AssertionError(f"no gap expected, got {gaps}")

        class Committed:
            def assignment(self) -> set[TP]:
                return set()

            def committed(self, tp: TP) -> int | None:
                return None

        recovery = SkippedRecordRecovery(
            SCORED, Committed(), no_gaps, self.metrics.skipped_recovered
        )
        self.step = BatchStep(
            self.pipeline.process_records,
            self.pipeline.input_topic,
            self.store,
            publisher,
            recovery,
            self.metrics,
            self.lock,
            self.liveness,
        )
        self.timer = WatermarkTimer(
            pipeline=self.pipeline,
            store=self.store,
            publisher=publisher,
            liveness=self.liveness,
            owned=lambda: self.owned,
            allowed_lateness=LATENESS,
            lock=self.lock,
            metrics=self.metrics,
            clock=self.clock,
        )

    def produce(self, *mentions: Mention, partition: int = 1) -> None:
        records = []
        for mention in mentions:
            records.append(scored(self.next_offset, mention, partition))
            self.next_offset += 1
        asyncio.run(self.step(records))

    def tick(self) -> list[str]:
        return asyncio.run(self.timer.tick())

    def published(self, topic: str) -> list[bytes]:
        return [s.value or b"" for s in self.sink.sent if s.topic == topic]

    def metric(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name)


def alerts_of(worker: Worker) -> list[tuple[str, str, str]]:
    return [
        (a.labels["brand"], a.alertname, a.state.value)
        for a in (Alert.from_json(v) for v in worker.published(NAMES.alerts))
    ]


# --- liveness and due brands (pure) ---------------------------------------------------------


def test_a_partition_is_live_while_its_batches_are_fresh_and_a_stale_one_flips_it_back() -> None:
    liveness = PartitionLiveness(300.0)
    liveness.observe({0: 12.0, 1: 301.0})
    assert liveness.live == {0}
    liveness.observe({2: 0.5})  # partitions without mentions in a batch keep their state
    assert liveness.live == {0, 2}
    liveness.observe({0: 86_400.0 * 30})  # a replay of last month's data
    assert liveness.live == {2}
    liveness.forget()
    assert liveness.live == frozenset()


def test_a_horizon_of_zero_turns_liveness_off() -> None:
    liveness = PartitionLiveness(0.0)
    liveness.observe({0: 0.0})
    assert liveness.live == frozenset()
    with pytest.raises(ValueError):
        PartitionLiveness(-1.0)


def test_due_brands_are_those_of_the_given_partitions_with_a_minute_to_close() -> None:
    engine = Engine(load_rules(QUIET_RULES), allowed_lateness=LATENESS)

    def record(brand: str, partition: int, closed_until: datetime | None) -> BrandRecord:
        state = engine.new_state(brand)
        state.closed_until = closed_until
        return BrandRecord(engine=state, partition=partition)

    minute = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    records = [
        ("zeta", 0, minute),
        ("acme", 0, minute),
        ("closed", 0, minute + timedelta(minutes=1)),
        ("elsewhere", 1, minute),
        ("new", 0, None),
    ]
    due = due_brands(
        [(b, record(b, p, c)) for b, p, c in records], {0}, minute + timedelta(seconds=61)
    )
    assert due == ["acme", "new", "zeta"]


# --- the pipeline's advance (pure) ----------------------------------------------------------


def test_a_quiet_brand_fires_then_resolves_on_the_wall_clock_alone() -> None:
    worker = Worker()
    worker.produce(said(1, T0), said(2, T0))
    assert alerts_of(worker) == [], "its minute is still open: nobody has said anything later"

    worker.clock.advance(60.0)  # 09:01:10 → the watermark 09:01:05 closes 09:00
    assert worker.tick() == ["acme"]
    assert alerts_of(worker) == [("acme", "BrandTalking", "firing")]
    worker.clock.advance(60.0)
    worker.tick()
    worker.clock.advance(60.0)  # keep_firing_for 1m has passed without a mention
    worker.tick()
    assert alerts_of(worker) == [
        ("acme", "BrandTalking", "firing"),
        ("acme", "BrandTalking", "resolved"),
    ]
    assert worker.metric("listenwell_watermark_advances_total") == 3
    assert worker.metric("listenwell_live_partitions") == 1


def test_the_timer_changes_nothing_within_a_minute_or_twice() -> None:
    worker = Worker()
    worker.produce(said(1, T0))
    worker.clock.advance(30.0)
    assert worker.tick() == []
    worker.clock.advance(30.0)
    assert worker.tick() == ["acme"]
    sent = len(worker.sink.sent)
    assert worker.tick() == [], "nothing is due again in the same minute"
    assert len(worker.sink.sent) == sent


def test_replayed_old_data_keeps_the_timer_off() -> None:
    """A backtest or a replay of last month's mentions must give the same alerts at any speed:
    nothing may close their minutes but their own event time."""
    worker = Worker()
    month_ago = T0 - timedelta(days=30)
    worker.produce(said(1, month_ago), said(2, month_ago))
    worker.clock.advance(600.0)
    assert worker.tick() == []
    assert alerts_of(worker) == [] and worker.metric("listenwell_live_partitions") == 0
    record = worker.brands.data[b"acme"]
    assert record.engine.closed_until < T0 - timedelta(days=29)


def test_a_stale_batch_turns_a_live_partition_off_again() -> None:
    worker = Worker()
    worker.produce(said(1, T0))
    worker.produce(said(2, T0 - timedelta(hours=2), brand="globex"))
    worker.clock.advance(120.0)
    assert worker.tick() == []


def test_only_partitions_this_worker_owns_are_advanced() -> None:
    worker = Worker(owned=frozenset({0}))
    worker.produce(said(1, T0), partition=1)
    worker.clock.advance(120.0)
    assert worker.tick() == []
    worker.owned = {0, 1}
    assert worker.tick() == ["acme"]


def test_a_horizon_of_zero_means_no_wall_clock_watermark() -> None:
    worker = Worker(horizon_s=0.0)
    worker.produce(said(1, T0))
    worker.clock.advance(600.0)
    assert worker.tick() == []


# --- the step: published, delivered, then stored; serialised with batches -------------------


def test_the_timers_alerts_are_delivered_before_the_state_that_records_them_is_stored() -> None:
    worker = Worker(hold_deliveries=True)
    worker.sink.hold = False
    worker.produce(said(1, T0))
    worker.sink.hold = True
    worker.clock.advance(60.0)

    async def scenario() -> None:
        tick = asyncio.create_task(worker.timer.tick())
        for _ in range(20):
            await asyncio.sleep(0)
        topics = worker.sink.topics()
        assert NAMES.alerts in topics, "the alert is sent ..."
        assert "brands-cl" not in topics[topics.index(NAMES.alerts) :], "... the state waits"
        worker.sink.deliver()
        await tick

    asyncio.run(scenario())
    events = [(kind, sent.topic) for kind, sent in worker.sink.events]
    delivered_alert = events.index(("delivered", NAMES.alerts))
    last_brand_write = max(i for i, e in enumerate(events) if e == ("sent", "brands-cl"))
    assert delivered_alert < last_brand_write


def test_a_failed_delivery_stores_nothing() -> None:
    worker = Worker()
    worker.produce(said(1, T0))
    stored_before = worker.brands.data[b"acme"].to_changelog()
    writes_before = len(worker.published("brands-cl"))
    worker.clock.advance(60.0)

    async def failing_send(*args: object, **kwargs: object) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_exception(ConnectionError("broker gone"))
        return future

    worker.sink.send = failing_send  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        worker.tick()
    assert len(worker.published("brands-cl")) == writes_before
    assert stored_before != worker.brands.data[b"acme"].to_changelog(), (
        "the live object moved on; the worker exits and recovers the stored state"
    )


def test_the_timer_waits_for_a_batch_in_progress() -> None:
    worker = Worker()
    worker.produce(said(1, T0))
    worker.clock.advance(60.0)

    async def scenario() -> None:
        await worker.lock.acquire()
        tick = asyncio.create_task(worker.timer.tick())
        for _ in range(10):
            await asyncio.sleep(0)
        assert alerts_of(worker) == []
        worker.lock.release()
        assert await tick == ["acme"]

    asyncio.run(scenario())


# --- crash and replay -----------------------------------------------------------------------


def test_a_replay_of_the_last_offset_sends_the_timers_alerts_again() -> None:
    """After a crash, the records since the last commit come again; the timer's alerts wait in
    the outbox at the brand's applied offset."""
    worker = Worker()
    mentions = [said(1, T0), said(2, T0)]
    worker.produce(*mentions)
    worker.clock.advance(60.0)
    worker.tick()
    fired = worker.published(NAMES.alerts)
    assert len(fired) == 1

    # A restarted worker: the tables as recovered from the changelog.
    restarted = Worker()
    restarted.clock.advance(60.0)
    restarted.brands.data[b"acme"] = BrandRecord.from_changelog(worker.published("brands-cl")[-1])
    items, _ = decode_scored([scored(1, mentions[1])])
    replay = restarted.pipeline.process(items, restarted.store.stored)
    assert [a.to_json() for a in replay.alerts] == fired


def test_customer_risk_decays_and_its_alert_resolves_while_nothing_is_said() -> None:
    worker = Worker(DEFAULT_RULES)
    worker.produce(*(said(n, T0 + timedelta(minutes=n), customer="cust-1") for n in range(4)))
    assert alerts_of(worker) == [("acme", "CustomerAtRisk", "firing")]
    health_before = len(worker.published(NAMES.customers))

    for _ in range(8 * 24):  # eight quiet days, an hour at a time
        worker.clock.advance(3600.0)
        worker.tick()

    assert alerts_of(worker) == [
        ("acme", "CustomerAtRisk", "firing"),
        ("acme", "CustomerAtRisk", "resolved"),
    ]
    scores = [
        CustomerHealth.from_json(v).risk_score
        for v in worker.published(NAMES.customers)[health_before - 1 :]
    ]
    assert scores[0] == 100.0 and scores[-1] == 0.0
    assert scores == sorted(scores, reverse=True), "the risk only decays"
    # Past the customer horizon (7 days without a mention) the customer is forgotten, in the
    # table and on its changelog.
    assert worker.customers.data == {}
    last_write = [s for s in worker.sink.sent if s.topic == "customers-cl"][-1]
    assert last_write.key == b"acme/cust-1" and last_write.value is None
