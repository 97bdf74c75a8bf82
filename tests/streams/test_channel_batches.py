"""The agent's batches read from its channel: what Faust may commit, and when a batch is handed
over. A real Faust app, topic, stream and consumer (not started: no broker); events are put on
the stream's channel queue as Faust's conductor would put them."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from faust.agents.actor import Actor
from faust.exceptions import ValueDecodeError
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from mode.utils.queues import ThrowableQueue

from streams.agents import EXIT_UNEXPECTED, declare_agent
from streams.app import faust_app
from streams.channel_batches import ChannelBatches
from streams.clock import FakeClock
from streams.pipeline import RawRecord
from streams.settings import Settings

RAW = "mentions.raw"


class Agent:
    """A Faust app with one raw topic and the stream Faust would hand an agent."""

    def __init__(self, tmp_path: Path) -> None:
        self.app: Any = faust_app(
            Settings(app_id="channel-batches", data_dir=tmp_path, table_store="memory")
        )
        self.topic: Any = self.app.topic(
            RAW, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )
        self.stream: Any = self.app.stream(self.topic)
        self.consumer: Any = self.app.consumer
        self.clock = FakeClock()

    async def start(self) -> None:
        await self.app.topics._update_indices()  # the conductor's list of acking topics
        self.app.flow_control.resume()  # as after an assignment
        self.app.sensors.add(self.app.monitor)  # as the app does when it starts

    async def put(self, partition: int, offset: int, *, generation: int | None = None) -> None:
        """Hand the stream the record at ``offset``, as the conductor does."""
        message = self.message(partition, offset, generation=generation)
        event = await self.stream.channel.decode(message)
        self.stream.channel.queue.put_nowait(event)

    async def put_undecodable(self, partition: int, offset: int) -> None:
        """Throw the error the conductor throws for a record whose value does not decode."""
        message = self.message(partition, offset)
        await self.stream.channel.on_value_decode_error(ValueDecodeError("not JSON"), message)

    def message(
        self, partition: int, offset: int, *, generation: int | None = None
    ) -> ConsumerMessage:
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
        return message

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


async def spin_until(condition: Callable[[], bool], what: str, turns: int = 1000) -> None:
    """Let the other tasks run until ``condition`` holds; fail (rather than hang) if it never
    does within ``turns`` turns of the event loop."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail(f"after {turns} turns of the event loop, still not: {what}")


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
        await spin_until(lambda: bool(agent.clock.sleeps), "the batch waits for more on the clock")
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


def test_records_of_an_old_generation_or_queued_before_a_rebalance_are_left_for_the_next_owner(
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
        agent.app.flow_control.resume()  # Faust empties the queue (read while suspended: below)
        await agent.put(0, 3)
        assert offsets(await anext(batches)) == [3]
        assert agent.acked(0) == [1]
        await batches.aclose()

    run(tmp_path, scenario)


def test_records_read_while_a_rebalance_suspends_the_flow_are_left_for_the_next_owner(
    tmp_path: Path,
) -> None:
    async def scenario(agent: Agent) -> None:
        agent.app.flow_control.suspend()  # a rebalance started
        await agent.put(0, 2)  # already queued, or handed over, when the flow stopped
        await agent.put(0, 3)
        batches = agent.batches(10, within_s=0.5)
        take = asyncio.create_task(anext(batches))
        await spin_until(
            lambda: take.done() or len(agent.clock.sleeps) >= 10,
            "the batch read records 2 and 3 and waited out its window",
        )
        assert agent.unacked() == [], "a rebalance (wait_empty) must not wait for them"
        agent.app.flow_control.resume()
        await agent.put(0, 4)
        assert offsets(await take) == [4]
        assert agent.unacked() == [4]
        await batches.aclose()

    run(tmp_path, scenario)


def test_an_error_thrown_while_a_batch_is_gathered_comes_after_the_batch_is_acked(
    tmp_path: Path,
) -> None:
    """The records gathered before the error are processed and committed; none stays unacked
    (a partition's commit would stall there and a rebalance would wait for it)."""

    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0)
        await agent.put(0, 1)
        batches = agent.batches(10, within_s=1.0)
        take = asyncio.create_task(anext(batches))
        await spin_until(lambda: bool(agent.clock.sleeps), "the batch waits for more")
        await agent.put_undecodable(0, 2)
        assert offsets(await take) == [0, 1]
        assert agent.acked(0) == [], "nothing may be committed while the step runs"
        with pytest.raises(ValueDecodeError):
            await anext(batches)
        assert agent.acked(0) == [0, 1]
        assert agent.unacked() == []
        await batches.aclose()

    run(tmp_path, scenario)


def test_an_actor_cancelled_while_a_batch_is_gathered_ends_the_batches_after_it(
    tmp_path: Path,
) -> None:
    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0)
        batches = agent.batches(10, within_s=1.0)
        take = asyncio.create_task(anext(batches))
        await spin_until(lambda: bool(agent.clock.sleeps), "the batch waits for more")
        agent.stream.channel._throw(StopAsyncIteration())  # what Actor.cancel does
        assert offsets(await take) == [0]
        with pytest.raises(StopAsyncIteration):
            await anext(batches)
        assert agent.acked(0) == [0]

    run(tmp_path, scenario)


class Exited(BaseException):
    """Raised by the stand-in for ``os._exit``, which never returns."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class AgentLoop:
    """The worker's agent function (``declare_agent``) over ``agent``'s stream, with a step
    that records what it is handed, and ``os._exit`` standing in as :class:`Exited`."""

    def __init__(self, agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[list[int]] = []

        async def step(records: list[RawRecord]) -> None:
            self.steps.append([record.offset for record in records])

        def exit_process(status: int) -> None:
            raise Exited(status)

        monkeypatch.setattr(os, "_exit", exit_process)
        faust_agent = declare_agent(
            agent.app,
            "raw-agent",
            agent.topic,
            step,
            batch_size=10,
            within_s=1.0,
            clock=agent.clock,
        )
        self.run: asyncio.Task[None] = asyncio.create_task(faust_agent.fun(agent.stream))


def test_an_error_thrown_into_the_agent_s_stream_ends_the_worker_after_the_batch_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an agent crash Faust would restart: the worker exits, as on a failed step."""

    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0)
        await agent.put(0, 1)
        loop = AgentLoop(agent, monkeypatch)
        await spin_until(lambda: bool(agent.clock.sleeps), "the agent waits for more records")
        await agent.put_undecodable(0, 2)
        with pytest.raises(Exited) as exited:
            await loop.run
        assert exited.value.status == EXIT_UNEXPECTED
        assert loop.steps == [[0, 1]]
        assert agent.acked(0) == [0, 1]
        assert agent.unacked() == []

    run(tmp_path, scenario)


def test_an_agent_whose_actor_faust_cancels_returns_without_ending_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(agent: Agent) -> None:
        await agent.put(0, 0)
        loop = AgentLoop(agent, monkeypatch)
        await spin_until(lambda: loop.steps == [[0]], "the agent processed record 0")
        agent.stream.channel._throw(StopAsyncIteration())  # what Actor.cancel does
        await loop.run
        assert agent.acked(0) == [0]

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


# The mode-streaming 0.7.1 / faust-streaming 0.15.3 code ChannelBatches was written against: it
# reads ThrowableQueue's private ``_errors`` (the thrown errors a get raises first) and takes a
# thrown StopAsyncIteration as Actor.cancel's end of the stream. A change here means an upgrade:
# read the new code, update streams/channel_batches.py if needed, then these hashes.
RELIED_ON: dict[str, Callable[[], str]] = {
    "ThrowableQueue.__init__": lambda: inspect.getsource(ThrowableQueue.__init__),
    "ThrowableQueue.get": lambda: inspect.getsource(ThrowableQueue.get),
    "ThrowableQueue.get_nowait": lambda: inspect.getsource(ThrowableQueue.get_nowait),
    "ThrowableQueue.empty": lambda: inspect.getsource(ThrowableQueue.empty),
    "ThrowableQueue.clear": lambda: inspect.getsource(ThrowableQueue.clear),
    "ThrowableQueue._throw": lambda: inspect.getsource(ThrowableQueue._throw),
    "Actor.cancel": lambda: inspect.getsource(Actor.cancel),
}

EXPECTED_SHA256 = {
    "ThrowableQueue.__init__": "fa499e3dfb6dbc94",
    "ThrowableQueue.get": "57490d393d4147ff",
    "ThrowableQueue.get_nowait": "d42b1be9219a0e6e",
    "ThrowableQueue.empty": "737285dcae32c653",
    "ThrowableQueue.clear": "d18f09e451acf62e",
    "ThrowableQueue._throw": "c231e47644923a48",
    "Actor.cancel": "27af54ce1443b5dd",
}


def test_the_faust_code_channel_batches_relies_on_is_the_code_it_was_written_against() -> None:
    found = {
        name: hashlib.sha256(read().encode()).hexdigest()[:16] for name, read in RELIED_ON.items()
    }
    changed = sorted(name for name in found if found[name] != EXPECTED_SHA256.get(name))
    assert not changed, f"re-read streams/channel_batches.py for: {changed}"
