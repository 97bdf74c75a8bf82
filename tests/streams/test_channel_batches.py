"""The agent's batches read from its channel: what Faust may commit, and when a batch is handed
over. A real Faust app, topic, stream and consumer (not started: no broker); events are put on
the stream's channel queue as Faust's conductor would put them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.app import faust_app
from streams.channel_batches import ChannelBatches
from streams.clock import FakeClock
from streams.settings import Settings

RAW = "mentions.raw"


class Agent:
    """A Faust app with one raw topic and the stream Faust would hand an agent."""

    def __init__(self, tmp_path: Path) -> None:
        self.app: Any = faust_app(
            Settings(app_id="channel-batches", data_dir=tmp_path, table_store="memory")
        )
        topic = self.app.topic(
            RAW, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        self.stream: Any = self.app.stream(topic)
        self.consumer: Any = self.app.consumer
        self.clock = FakeClock()

    async def start(self) -> None:
        await self.app.topics._update_indices()  # the conductor's list of acking topics
        self.app.flow_control.resume()  # as after an assignment
        self.app.sensors.add(self.app.monitor)  # as the app does when it starts

    async def put(self, partition: int, offset: int, *, generation: int | None = None) -> None:
        """Hand the stream the record at ``offset``, as the conductor does."""
        message = ConsumerMessage(
            RAW,
            partition,
            offset,
            1767600000.0,
            0,
            None,
            b"acme",
            b"{}",
            None,
            generation_id=self.app.consumer_generation_id if generation is None else generation,
        )
        message.incref(1)  # one channel: the stream's
        event = await self.stream.channel.decode(message)
        self.stream.channel.queue.put_nowait(event)

    def batches(self, batch_size: int, within_s: float = 1.0) -> AsyncIterator[list[Any]]:
        return aiter(ChannelBatches(self.stream, batch_size, within_s, clock=self.clock))

    def acked(self, partition: int) -> list[int]:
        return list(self.consumer._acked[TP(RAW, partition)])

    def unacked(self) -> list[int]:
        return sorted(message.offset for message in self.consumer.unacked)


def run(tmp_path: Path, scenario: Callable[[Agent], Awaitable[None]]) -> None:
    async def main() -> None:
        agent = Agent(tmp_path)
        await agent.start()
        await scenario(agent)

    asyncio.run(main())


def offsets(batch: list[Any]) -> list[int]:
    return [event.message.offset for event in batch]


def test_a_batch_is_acked_only_once_the_step_returned_and_asks_for_the_next(
    tmp_path: Path,
) -> None:
    async def scenario(agent: Agent) -> None:
        for offset in range(5):
            await agent.put(0, offset)
        batches = agent.batches(3)

        first = await anext(batches)
        assert offsets(first) == [0, 1, 2]
        assert agent.acked(0) == [], "nothing may be committed while the step runs"
        assert agent.unacked() == [0, 1, 2], "a rebalance (wait_empty) waits for the batch"

        second = await anext(batches)
        assert offsets(second) == [3, 4]
        assert agent.acked(0) == [0, 1, 2]
        assert agent.unacked() == [3, 4]

        await batches.aclose()  # the agent stopped before its step returned
        assert agent.acked(0) == [0, 1, 2], "a batch not processed is never committed"
        assert agent.consumer._new_offset(TP(RAW, 0)) == 3

    run(tmp_path, scenario)


def test_a_batch_the_step_raised_on_is_not_acked(tmp_path: Path) -> None:
    async def scenario(agent: Agent) -> None:
        for offset in range(4):
            await agent.put(1, offset)
        batches = agent.batches(2)
        with pytest.raises(RuntimeError):
            async for _batch in batches:
                raise RuntimeError("the step failed")
        await batches.aclose()  # what finalising the abandoned iterator does
        assert agent.acked(1) == []
        assert agent.consumer._new_offset(TP(RAW, 1)) is None

    run(tmp_path, scenario)


def test_a_full_batch_is_handed_over_without_waiting(tmp_path: Path) -> None:
    async def scenario(agent: Agent) -> None:
        for offset in range(7):
            await agent.put(offset % 2, offset)
        batches = agent.batches(4)
        assert offsets(await anext(batches)) == [0, 1, 2, 3]
        assert agent.clock.sleeps == []
        await batches.aclose()

    run(tmp_path, scenario)


def test_a_batch_takes_what_arrives_within_s_of_its_first_record(tmp_path: Path) -> None:
    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0)
        batches = agent.batches(500, within_s=2.0)
        started = agent.clock.monotonic()
        take = asyncio.create_task(anext(batches))
        while not agent.clock.sleeps:  # the batch is waiting for more
            await asyncio.sleep(0)
        await agent.put(0, 1)
        await agent.put(3, 0)
        batch = await take
        assert [(event.message.partition, event.message.offset) for event in batch] == [
            (0, 0),
            (0, 1),
            (3, 0),
        ]
        assert agent.clock.monotonic() - started == pytest.approx(2.0)
        await batches.aclose()

    run(tmp_path, scenario)


def test_records_of_an_old_generation_or_read_during_a_rebalance_are_left_for_the_next_owner(
    tmp_path: Path,
) -> None:
    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0, generation=agent.app.consumer_generation_id - 1)
        await agent.put(0, 1)
        batches = agent.batches(10, within_s=0.5)
        assert offsets(await anext(batches)) == [1]
        assert agent.unacked() == [1], "the stale record is not waited for on a rebalance"

        agent.app.flow_control.suspend()  # a rebalance started
        await agent.put(0, 2)
        agent.app.flow_control.resume()
        await agent.put(0, 3)
        assert offsets(await anext(batches)) == [3]
        assert agent.acked(0) == [1]
        await batches.aclose()

    run(tmp_path, scenario)


def test_the_monitor_sees_when_each_partition_last_handed_over_a_record(tmp_path: Path) -> None:
    """Faust's slow-processing warning reads the monitor's per-partition stream time."""

    async def scenario(agent: Agent) -> None:
        await agent.put(2, 0)
        await agent.put(5, 0)
        batches = agent.batches(2)
        await anext(batches)
        assert set(agent.app.monitor.stream_inbound_time) == {TP(RAW, 2), TP(RAW, 5)}
        await batches.aclose()

    run(tmp_path, scenario)


@pytest.mark.parametrize(("batch_size", "within_s"), [(0, 1.0), (10, -0.1)])
def test_a_batch_size_below_one_or_a_negative_window_is_refused(
    batch_size: int, within_s: float
) -> None:
    with pytest.raises(ValueError):
        ChannelBatches(object(), batch_size, within_s)
