"""The worker's consumer hands a fetched record to Faust's conductor directly when the delivery
cannot wait, and through Faust's ``wait_first`` (abandoned when a rebalance suspends the flow)
when it can (``streams.faust_app.delivery_cannot_suspend``)."""

from __future__ import annotations

import ast
import asyncio
import copy
import hashlib
import inspect
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.channels import Channel
from faust.exceptions import ValueDecodeError
from faust.serializers.schemas import Schema
from faust.transport import conductor as faust_conductor
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.producer import ProducerBuffer
from faust.types import TP, Message
from mode import Service
from mode.utils.queues import FlowControlEvent, FlowControlQueue, ThrowableQueue

from streams.app import faust_app
from streams.faust_app import _Consumer, delivery_cannot_suspend
from streams.settings import Settings

TOPIC = "drain-in"
TP0 = TP(topic=TOPIC, partition=0)


@dataclass
class Harness:
    """A worker app whose conductor routes partition 0 of ``TOPIC`` to ``channel``; records
    every ``wait_first`` the consumer makes."""

    app: Any
    consumer: Any
    channel: Any
    wait_first_calls: list[tuple[Any, ...]] = field(default_factory=list)

    def record(self, offset: int = 0) -> Message:
        return Message(TOPIC, 0, offset, 0.0, 0, [], b"key", b"value", None)

    async def deliver(self, message: Message) -> None:
        await self.consumer._deliver(self.consumer.callback, message)

    def delivered(self) -> list[bytes]:
        return [event.value for event in self.channel.queue._queue]


@asynccontextmanager
async def harness(
    tmp_path: Path, maxsize: int = 10, serializer: str = "raw"
) -> AsyncIterator[Harness]:
    app = faust_app(Settings(app_id="drain", data_dir=tmp_path, table_store="memory"))
    channel = faust.Topic(
        app,
        topics=[TOPIC],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer=serializer,
        maxsize=maxsize,
        is_iterator=True,  # as an agent's stream iterates it
    )
    conductor = app.topics
    conductor._tp_index[TP0].add(channel)
    conductor._update_callback_map()
    app.flow_control.resume()  # as after a rebalance (it starts suspended)
    consumer = app.consumer
    h = Harness(app=app, consumer=consumer, channel=channel)
    wait_first = consumer.wait_first

    async def recording_wait_first(*coros: Any, **kwargs: Any) -> Any:
        h.wait_first_calls.append(coros)
        return await wait_first(*coros, **kwargs)

    consumer.wait_first = recording_wait_first
    yield h


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_a_record_that_cannot_wait_is_delivered_without_wait_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            assert delivery_cannot_suspend(h.consumer, h.consumer.callback, h.record())
            await h.deliver(h.record(0))
            await h.deliver(h.record(1))
            assert h.delivered() == [b"value", b"value"]
            assert h.wait_first_calls == []

    run(scenario)


def test_a_record_that_fails_to_decode_is_handled_as_faust_does_without_wait_first(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, serializer="json") as h:
            await h.deliver(h.record(0))  # b"value" is not JSON
            assert h.wait_first_calls == []
            assert h.delivered() == []
            with pytest.raises(ValueDecodeError):
                await h.channel.queue.get()

    run(scenario)


async def wait_then_abandon(h: Harness) -> asyncio.Task[None]:
    """Deliver a record that must wait; check it waits through wait_first; suspend the flow as a
    rebalance does; the delivery returns (abandoned)."""
    assert not delivery_cannot_suspend(h.consumer, h.consumer.callback, h.record())
    delivery = asyncio.ensure_future(h.deliver(h.record()))
    await settle()
    assert not delivery.done(), "the delivery should be waiting"
    assert len(h.wait_first_calls) == 1
    h.consumer.stop_flow()
    await delivery
    return delivery


def test_a_suspended_flow_control_goes_through_wait_first_and_a_rebalance_abandons_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            h.app.flow_control.suspend()
            await wait_then_abandon(h)
            h.app.flow_control.resume()
            await settle()
            assert h.delivered() == []  # abandoned, not delivered later

    run(scenario)


def test_a_held_conductor_lock_goes_through_wait_first_and_a_rebalance_abandons_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            lock = h.app.topics._tp_to_callback_lock
            await lock.acquire()
            await wait_then_abandon(h)
            lock.release()
            await settle()
            assert h.delivered() == []

    run(scenario)


def test_a_full_channel_queue_goes_through_wait_first_and_a_rebalance_abandons_the_wait(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with harness(tmp_path, maxsize=1) as h:
            await h.deliver(h.record(0))
            assert h.wait_first_calls == []
            await wait_then_abandon(h)  # the drain loop goes on while the queue stays full
            assert h.delivered() == [b"value"]

    run(scenario)


def test_a_waiting_delivery_completes_once_its_cause_clears(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            h.app.flow_control.suspend()
            delivery = asyncio.ensure_future(h.deliver(h.record()))
            await settle()
            assert not delivery.done()
            h.app.flow_control.resume()
            await delivery
            assert h.delivered() == [b"value"]
            assert len(h.wait_first_calls) == 1

    run(scenario)


def test_a_full_producer_buffer_or_a_suspended_consumer_flow_is_never_delivered_directly(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with harness(tmp_path) as h:
            buffer = h.app.producer.buffer
            for _ in range(buffer.max_messages + 1):
                buffer.pending.put_nowait(object())
            assert not delivery_cannot_suspend(h.consumer, h.consumer.callback, h.record())
            buffer.pending._queue.clear()
            assert delivery_cannot_suspend(h.consumer, h.consumer.callback, h.record())
            h.consumer.stop_flow()
            assert not delivery_cannot_suspend(h.consumer, h.consumer.callback, h.record())

    run(scenario)


def test_anything_unknown_takes_fausts_path(tmp_path: Path) -> None:
    class LoudTopic(faust.Topic):
        async def on_decode_error(self, exc: Exception, message: Any) -> None:
            await asyncio.sleep(0)

    async def scenario() -> None:
        async with harness(tmp_path) as h:
            consumer = h.consumer
            other_partition = Message(TOPIC, 1, 0, 0.0, 0, [], b"k", b"v", None)
            assert not delivery_cannot_suspend(consumer, consumer.callback, other_partition)

            async def another_callback(message: Any) -> None: ...

            assert not delivery_cannot_suspend(consumer, another_callback, h.record())
            loud = LoudTopic(h.app, topics=[TOPIC])
            h.app.topics._tp_index[TP0].add(loud)
            h.app.topics._update_callback_map()
            assert not delivery_cannot_suspend(consumer, consumer.callback, h.record())

    run(scenario)


# The faust-streaming 0.15.3 / mode-streaming 0.7.1 / CPython 3.11 code that
# delivery_cannot_suspend and _Consumer._drain_messages were written against. A change here means
# an upgrade: read the new code, update streams/faust_app.py if needed, then these hashes.
def _source(obj: Any) -> str:
    return inspect.getsource(obj)


def _conductor_pyx() -> str:
    cython_module = inspect.getmodule(faust_conductor.ConductorHandler)  # type: ignore[attr-defined]
    assert cython_module is not None and cython_module.__file__ is not None
    return Path(cython_module.__file__).with_name("conductor.pyx").read_text()


RELIED_ON: dict[str, Callable[[], str]] = {
    "Consumer._drain_messages": lambda: _source(faust_consumer.Consumer._drain_messages),
    "Conductor._compile_message_handler": lambda: _source(
        faust_conductor.Conductor._compile_message_handler
    ),
    "ConductorCompiler.build": lambda: _source(faust_conductor.ConductorCompiler.build),
    "ConductorHandler (conductor.pyx)": _conductor_pyx,
    "FlowControlEvent.acquire": lambda: _source(FlowControlEvent.acquire),
    "ProducerBuffer.wait_until_ebb": lambda: _source(ProducerBuffer.wait_until_ebb),
    "ProducerBuffer.size": lambda: _source(ProducerBuffer.size.fget),  # type: ignore[attr-defined]
    "Schema.compile": lambda: _source(Schema.compile),
    "Channel.decode": lambda: _source(Channel.decode),
    "Channel.on_key_decode_error": lambda: _source(Channel.on_key_decode_error),
    "Channel.on_value_decode_error": lambda: _source(Channel.on_value_decode_error),
    "Channel.on_decode_error": lambda: _source(Channel.on_decode_error),
    "Channel.throw": lambda: _source(Channel.throw),
    "FlowControlQueue.put_nowait_enhanced": lambda: _source(FlowControlQueue.put_nowait_enhanced),
    "FlowControlQueue.in_pressure_high_state": lambda: _source(
        FlowControlQueue.in_pressure_high_state
    ),
    "FlowControlQueue.force_put_nowait": lambda: _source(FlowControlQueue.force_put_nowait),
    "ThrowableQueue._throw": lambda: _source(ThrowableQueue._throw),
    "Service.wait_first": lambda: _source(Service.wait_first),
    "asyncio.Lock.acquire": lambda: _source(asyncio.Lock.acquire),
}

EXPECTED_SHA256 = {
    "Consumer._drain_messages": "44a2500309e83c63",
    "Conductor._compile_message_handler": "9fbc0538097aa4ec",
    "ConductorCompiler.build": "837cf521368c1ee4",
    "ConductorHandler (conductor.pyx)": "dde1f974267881cf",
    "FlowControlEvent.acquire": "ed0208e866e64d0b",
    "ProducerBuffer.wait_until_ebb": "758dd5744044071b",
    "ProducerBuffer.size": "b543a978fdece62e",
    "Schema.compile": "d46eec5ce3195b2c",
    "Channel.decode": "c5cf3eebd64fcf3b",
    "Channel.on_key_decode_error": "34d1c45c836196ff",
    "Channel.on_value_decode_error": "5d776dfc4149e852",
    "Channel.on_decode_error": "6edc5946cfa01867",
    "Channel.throw": "7a3d537871fc7f90",
    "FlowControlQueue.put_nowait_enhanced": "f1839f43dda3d2cf",
    "FlowControlQueue.in_pressure_high_state": "3165f14880191c41",
    "FlowControlQueue.force_put_nowait": "e029f3d278247909",
    "ThrowableQueue._throw": "c231e47644923a48",
    "Service.wait_first": "feade6a31f8a6789",
    "asyncio.Lock.acquire": "54bbd184d16df3a1",
}


def test_the_faust_code_the_direct_delivery_relies_on_is_the_code_it_was_written_against() -> None:
    found = {
        name: hashlib.sha256(read().encode()).hexdigest()[:16] for name, read in RELIED_ON.items()
    }
    changed = sorted(name for name in found if found[name] != EXPECTED_SHA256.get(name))
    assert not changed, f"re-read streams/faust_app.py's delivery_cannot_suspend for: {changed}"


def _parameter(source: str) -> ast.arg:
    function = ast.parse(f"def _({source}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    return function.args.args[0]


def _expression(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def _statement(source: str) -> ast.stmt:
    (statement,) = ast.parse(source).body
    return statement


# Every way _Consumer._drain_messages may differ from faust-streaming 0.15.3's
# Consumer._drain_messages (pinned by EXPECTED_SHA256 above): (why, our code, Faust's code; `pass`
# for none). The two are compared as syntax trees, so formatting and comments do not count; the
# docstring, which Faust's has not, is dropped before the comparison.
DRAIN_DIFFERENCES: list[tuple[str, ast.AST, ast.AST]] = [
    (
        "the delivery: ours goes through _Consumer._deliver (a direct await when it cannot "
        "wait, else this same wait_first)",
        _statement("await deliver(callback, message)"),
        _statement("await self.wait_first(callback(message), self.suspend_flow.wait())"),
    ),
    (
        "the local name of the delivery, bound once as Faust binds its other callables",
        _statement("deliver = self._deliver"),
        _statement("pass"),
    ),
    (
        "one `if` with `and` for Faust's nested two (ruff's SIM102); same evaluation order, "
        "the second test only when the first holds",
        _statement(
            "if commit_every is not None and self._n_acked >= commit_every:\n"
            "    self._n_acked = 0\n"
            "    await self.commit()"
        ),
        _statement(
            "if commit_every is not None:\n"
            "    if self._n_acked >= commit_every:\n"
            "        self._n_acked = 0\n"
            "        await self.commit()"
        ),
    ),
    (
        "typing only: Faust casts to Service for mypy, ours is typed Any; cast() returns its "
        "argument",
        _expression("self._stopped.is_set"),
        _expression("cast(Service, self)._stopped.is_set"),
    ),
    (
        "typing only, as above",
        _expression("fetcher._stopped.is_set"),
        _expression("cast(Service, fetcher)._stopped.is_set"),
    ),
    (
        "typing only: strict mypy wants the generic's parameter",
        _expression("cast(AsyncIterator[Any], getmany(timeout=1.0))"),
        _expression("cast(AsyncIterator, getmany(timeout=1.0))"),
    ),
    (
        "the same constant, imported through its module (faust.transport.consumer)",
        _expression("faust_consumer.CONSUMER_FETCHING"),
        _expression("CONSUMER_FETCHING"),
    ),
    (
        "the parameter's annotation (typing only)",
        _parameter("fetcher: Any"),
        _parameter("fetcher: ServiceT"),
    ),
]


class _Substitute(ast.NodeTransformer):
    """Replaces every node equal (``ast.dump``: no positions) to ``ours`` with ``theirs``;
    ``pass`` as ``theirs`` removes a statement."""

    def __init__(self, ours: ast.AST, theirs: ast.AST) -> None:
        self.ours = ast.dump(ours)
        self.theirs = theirs
        self.count = 0

    def visit(self, node: ast.AST) -> Any:
        if ast.dump(node) == self.ours:
            self.count += 1
            return None if isinstance(self.theirs, ast.Pass) else copy.deepcopy(self.theirs)
        return self.generic_visit(node)


def _function_tree(function: Any) -> ast.AsyncFunctionDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    assert isinstance(tree, ast.AsyncFunctionDef)
    return tree


def test_the_worker_s_fetch_loop_is_faust_s_but_for_the_listed_differences() -> None:
    """``_Consumer._drain_messages`` replaces Faust's fetch loop: it must do all Faust's does
    (read offsets, gaps, commit_every, yields, dropped records, errors), with the delivery as
    the only change of behaviour. A difference not listed in DRAIN_DIFFERENCES fails."""
    assert faust_aiokafka.Consumer._drain_messages is faust_consumer.Consumer._drain_messages
    faust_loop = _function_tree(faust_consumer.Consumer._drain_messages)
    ours: ast.AST = _function_tree(_Consumer._drain_messages)
    assert isinstance(ours, ast.AsyncFunctionDef) and ast.get_docstring(ours) is not None
    ours.body = ours.body[1:]  # the docstring
    for why, our_code, faust_code in DRAIN_DIFFERENCES:
        substitute = _Substitute(our_code, faust_code)
        ours = substitute.visit(ours)
        assert substitute.count == 1, f"listed but not found once in our copy: {why}"
    assert ast.unparse(ours) == ast.unparse(faust_loop)  # a readable diff on failure
    assert ast.dump(ours) == ast.dump(faust_loop)
