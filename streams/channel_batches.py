"""An agent's records in batches, read straight from its channel's queue.

Faust's ``stream.take_events`` hands each record through the stream's per-event machinery (its
Cython ``StreamIterator``: a ``sleep(0)``, the sensors, the current-event bookkeeping, then the
take buffer's processor coroutine) and acks each with a coroutine. :class:`ChannelBatches`
reads the queue the stream itself would read (the agent stream's channel, which Faust's
conductor fills) a batch at a time, and keeps what the stream does for Faust's own bookkeeping.
On a bare agent over a real broker it costs ~16-25 µs of CPU less per record than
``take_events`` (``bench/agent_batches.py --step-us 150``, docs/performance.md).

It mirrors faust-streaming 0.15.3 (``faust/_cython/streams.pyx`` ``StreamIterator``,
``Stream._c_aiter``, ``Stream.take_events`` and ``Stream.ack``):

- an event of an old consumer generation, or read while flow control is suspended (a
  rebalance is in progress), is dropped unacked and untracked, as the Cython iterator drops it
  (Faust seeks to the committed offset after the rebalance, so the owner reads it again);
- every other event of an acking topic is tracked as unacked (``Consumer.unacked``: what
  Faust's ``wait_empty`` waits for before a rebalance completes) and reported to the sensors
  (``on_message_in``, ``on_stream_event_in``: the monitor keeps each partition's last event
  time for Faust's slow-processing warning);
- a batch is acked (``Event.ack`` and the ``on_stream_event_out``/``on_message_out``
  sensors, as ``Stream.ack``) when the consumer asks for the next batch, i.e. after its step
  returned, so Faust commits a batch's offsets only once it was processed. Unlike
  ``take_events``, a batch is **not** acked when the consumer raises, is cancelled or closes
  the iterator: Faust never commits those offsets and the records are read again, where
  take_events' acks would let Faust commit records that were never processed;
- an error thrown into the channel (Faust's conductor throws e.g. a ``ValueDecodeError``)
  ends the batch being gathered: its records are handed over (and acked once the step
  returned) and the error is raised when the next batch is asked for, so no record taken is
  left unacked; a thrown ``StopAsyncIteration`` (how Faust stops an agent's actor) ends the
  iteration, as ``Stream._c_aiter`` does;
- the stream is started if it was not, and stopped again when the iteration ends, as
  ``Stream.__aiter__`` does.

A batch is up to ``batch_size`` events: the first one waited for, then what is queued, then
what arrives within ``within_s`` of the first. Faust's consumer puts records on the queue one
at a time as it is handed them, so while the batch is not full the reader looks at the queue
every ``within_s / 10`` rather than waking for each record (waking per record cost more than
take_events in the bare agent). (``take_events`` hands a batch over when
full or ``within`` after the previous one; both bound a record's wait by about ``within``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

from streams.clock import SYSTEM_CLOCK, Clock

__all__ = ["ChannelBatches"]

POLLS_PER_WINDOW = 10
"""How often a batch that is not full looks at the queue again within ``within_s``."""


class ChannelBatches:
    """Batches of up to ``batch_size`` events of a Faust agent's ``stream`` (the stream Faust
    passes the agent function), gathered for up to ``within_s`` seconds after the first; a
    batch is acked when the next one is asked for (``async for batch in ChannelBatches(...)``).
    """

    def __init__(
        self, stream: Any, batch_size: int, within_s: float, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if within_s < 0:
            raise ValueError(f"within_s must not be negative, not {within_s}")
        self._stream = stream
        self._batch_size = batch_size
        self._within_s = within_s
        self._clock = clock

    def __aiter__(self) -> AsyncIterator[list[Any]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[Any]]:
        stream = self._stream
        channel = stream.channel
        queue = channel.queue
        clock = self._clock
        batch_size = self._batch_size
        within_s = self._within_s
        poll_s = within_s / POLLS_PER_WINDOW
        # The errors thrown into the queue (mode's ThrowableQueue keeps them apart from the
        # records and raises the first on the next get): one pending ends the gathering, so the
        # records already taken are handed over and acked before it is raised.
        thrown: Collection[BaseException] = queue._errors
        stream._finalized = True
        started_here = await stream.maybe_start()
        try:
            while not stream.should_stop:
                events: list[Any] = []
                self._take(await queue.get(), events)
                deadline = clock.monotonic() + within_s
                while True:
                    while len(events) < batch_size and not queue.empty() and not thrown:
                        self._take(queue.get_nowait(), events)
                    if len(events) >= batch_size or thrown:
                        break
                    remaining = deadline - clock.monotonic()
                    if remaining <= 0:
                        break
                    await clock.asleep(min(remaining, poll_s))
                if not events:
                    continue
                stream.events_total += len(events)
                yield events
                self._ack(events)
        except StopAsyncIteration:
            # What Faust throws into the channel to stop an agent's actor (Actor.cancel): the
            # end of the stream, as Stream._c_aiter takes it (raised on, CPython would turn it
            # into a RuntimeError).
            return
        finally:
            stream._channel_stop_iteration(channel)
            if started_here:
                await stream.stop()
                stream.service_reset()

    def _take(self, event: Any, events: list[Any]) -> None:
        """Append ``event`` to ``events`` with the stream's intake bookkeeping, unless stale."""
        stream = self._stream
        app = stream.app
        message = event.message
        if not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            return
        tp = message.tp
        offset = message.offset
        if message.topic in app.topics.acking_topics and not message.tracked:
            message.tracked = True
            app.consumer.unacked.add(message)
            stream._on_message_in(tp, offset, message)
        stream._on_stream_event_in(tp, offset, stream, event)
        events.append(event)

    def _ack(self, events: list[Any]) -> None:
        """Ack each of ``events`` as ``Stream.ack`` does."""
        stream = self._stream
        on_stream_event_out = stream._on_stream_event_out
        on_message_out = stream._on_message_out
        for event in events:
            last_stream_to_ack = event.ack()
            message = event.message
            tp = message.tp
            offset = message.offset
            on_stream_event_out(tp, offset, stream, event)
            if last_stream_to_ack:
                on_message_out(tp, offset, message)
