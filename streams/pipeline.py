"""The worker's pure core, in two halves: :class:`ScoringStage` (raw records in, scored mentions
and dead letters out, stateless) and :class:`BrandStage` (scored mentions in, alerts, customer
health, incidents and the brand states to store out); :class:`Pipeline` runs both in one step.

The Faust agents (``streams/agents.py``) only move bytes: one hands each batch of ``mentions.raw``
to the scoring stage and publishes its records to ``mentions.scored`` (keyed by brand); the other
hands each batch of ``mentions.scored`` to the brand stage, publishes what comes back
(``streams/publish.py``) and stores the states (``streams/tables.py``). Everything that decides
something lives here, with no Kafka and no clock of its own (a :class:`streams.clock.Clock` is
injected), so it is tested without a broker.

Effectively-once on an at-least-once stream
-------------------------------------------
Faust commits offsets after the producer has flushed, so a crash replays at most the records since
the last commit. Each brand's state (a value in a Faust table keyed by brand, written in one
changelog message after the entries it depends on, see :mod:`streams.tables`) remembers
``applied_offset`` — the last ``mentions.scored`` offset folded into it — and an *outbox* of recent
alert transitions with the offset that triggered them; the ids it has seen, with the offset that
carried them, are kept beside it in chunks (:mod:`streams.dedupe`), and so are its closed minute
buckets. So:

- a brand-stage replay (same offsets) is recognised by ``applied_offset``: not counted twice, its
  alerts re-sent from the outbox (the notifier dedupes by transition id);
- a scoring-stage replay publishes scored copies again at *new* offsets of ``mentions.scored``
  (consumers of ``mentions.scored`` see at-least-once delivery and dedupe by id); the brand stage
  finds their ids already counted from another offset and drops them, as it drops a *new* record
  with an id already seen (a connector re-sending a mention).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, PrivateAttr, ValidationError

from streams.clock import SYSTEM_CLOCK, Clock
from streams.dedupe import SeenIds, id_digest
from streams.engine import Engine
from streams.records import (
    ERASURE_KEY,
    MAX_TEXT_CHARS,
    Alert,
    CustomerHealth,
    DeadLetter,
    ErasureCommand,
    Incident,
    Mention,
    ScoredMention,
    decode_mention,
    decode_scored_mention,
)
from streams.scoring import Scorer
from streams.state import BrandState, CustomerState, EngineOutput
from streams.topics import MENTIONS_RAW, MENTIONS_SCORED
from streams.windows import MinuteBucket

BucketKey = tuple[str, datetime]
"""A minute bucket's place in a brand's state: scope key ("" for all mentions), minute."""

MAX_RAW_BYTES = 4 * MAX_TEXT_CHARS + 16_384
"""Raw records above this size are dead-lettered as ``oversize`` before any parsing."""

MAX_DEAD_LETTER_BYTES = 512 * 1024
"""Raw bytes kept whole in a dead letter up to this size (Kafka's default message limit is 1 MB)."""

OUTBOX_SIZE = 64


class DeadLetterReason:
    """The bounded set of reasons a raw record is parked in the dead-letter topic."""

    OVERSIZE = "oversize"
    INVALID_JSON = "invalid_json"
    INVALID_RECORD = "invalid_record"
    KEY_MISMATCH = "key_mismatch"
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True)
class RawRecord:
    """One record as consumed from ``mentions.raw`` (or ``mentions.scored``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    produced_at: float | None = None
    """Producer timestamp (epoch seconds), for the produced → scored latency."""


class OutboxEntry(BaseModel):
    offset: int
    alert: Alert


class BrandRecord(BaseModel):
    """Everything the worker keeps for one brand: the value of the ``brands`` table.

    The engine's per-customer states are stored apart, one table entry per customer
    (:class:`CustomerChanges`), because a brand may have many thousands of customers and the brand
    record is rewritten on every batch; :meth:`to_changelog` leaves them out. After recovery the
    worker attaches them again (:attr:`customers_attached` tells whether that has happened).
    """

    engine: BrandState
    seen: dict[str, tuple[int, float]] = {}
    """The format before :mod:`streams.dedupe`: hex digest of a mention id → (raw offset that
    carried it, its event time). Read from old changelog entries into :attr:`seen_ids`, never
    written."""
    applied_offset: int = -1
    partition: int = -1
    """The partition of the brand stage's input the brand's mentions arrive on (-1 until the
    first one)."""
    offsets_of: str = MENTIONS_RAW.name
    """The topic (registry name) whose offsets :attr:`applied_offset`, :attr:`partition`, the
    outbox and the seen ids refer to: ``mentions.raw`` for the fused worker (and every state
    written before this field), ``mentions.scored`` for the brand stage of the split deployment.
    A stage reading another topic refuses the state (:class:`StateTopicMismatch`)."""
    outbox: list[OutboxEntry] = []
    _customers_attached: bool = PrivateAttr(default=True)
    _seen_ids: SeenIds = PrivateAttr(default_factory=SeenIds)
    _stored_closed: set[BucketKey] = PrivateAttr(default_factory=set)
    _closed_changed: bool = PrivateAttr(default=False)

    @property
    def customers_attached(self) -> bool:
        return self._customers_attached

    @property
    def seen_ids(self) -> SeenIds:
        """The ids this brand counted, with their offsets (stored apart, see
        :mod:`streams.dedupe`)."""
        # From the private-attribute storage directly: ``self._seen_ids`` goes through
        # pydantic's ``__getattr__`` (~1 µs), and this runs twice per mention.
        seen: SeenIds = self.__pydantic_private__["_seen_ids"]  # type: ignore[index]
        return seen

    def to_changelog(self) -> bytes:
        """JSON of everything but the customers, the seen ids and the closed minute buckets
        already stored as entries of their own (see :meth:`take_closed_buckets`)."""
        engine = self.engine.__dict__
        buckets, scopes = engine["buckets"], engine["scopes"]
        stored = self._stored_closed
        if stored:
            # The dump reads the fields as they are; put the open buckets there for it.
            engine["buckets"] = [b for b in buckets if ("", b.minute) not in stored]
            engine["scopes"] = {
                k: [b for b in bs if (k, b.minute) not in stored] for k, bs in scopes.items()
            }
        try:
            return self.model_dump_json(exclude={"engine": {"customers"}, "seen": True}).encode()
        finally:
            engine["buckets"], engine["scopes"] = buckets, scopes

    def take_closed_buckets(self) -> tuple[dict[BucketKey, bytes], list[BucketKey]]:
        """Closed minute buckets to store as entries of their own (those closed since the last
        call, or all after :meth:`closed_buckets_changed`) and the stored ones that have left
        the windows (to delete).

        A closed minute no longer changes (a mention for it is late and dropped), so each is
        written once instead of with every batch; the brand record keeps the open ones.
        """
        state = self.engine
        closed_until = state.closed_until
        current: dict[BucketKey, MinuteBucket] = {}
        if closed_until is not None:
            for scope, buckets in (("", state.buckets), *state.scopes.items()):
                for bucket in buckets:
                    if bucket.minute < closed_until:
                        current[scope, bucket.minute] = bucket
        stored = self._stored_closed
        rewrite = self._closed_changed
        written = {
            key: bucket.model_dump_json().encode()
            for key, bucket in current.items()
            if rewrite or key not in stored
        }
        deleted = sorted(stored - current.keys())
        self._stored_closed = set(current)
        self._closed_changed = False
        return written, deleted

    def closed_buckets_changed(self) -> None:
        """Closed buckets were edited (an erasure): the next :meth:`take_closed_buckets` writes
        them all again."""
        self._closed_changed = True

    def attach_closed_buckets(self, stored: dict[BucketKey, bytes]) -> None:
        """Take back closed buckets stored as entries of their own (recovery). Entries for
        minutes the record has not closed (a batch whose record was never stored wrote them)
        are left out: that minute is open in the record, and closes again. So are minutes that
        have left the windows (their deletion did not happen before a crash): they are deleted
        with the next batch."""
        state = self.engine
        closed_until = state.closed_until
        if closed_until is None:
            return
        left = state.baseline_until
        held = {("", b.minute) for b in state.buckets} | {
            (k, b.minute) for k, bs in state.scopes.items() for b in bs
        }
        added: dict[str, list[MinuteBucket]] = {}
        for (scope, minute), value in stored.items():
            if left is not None and minute < left:
                self._stored_closed.add((scope, minute))  # not in the state: deleted next time
                continue
            if minute >= closed_until or (scope, minute) in held:
                continue
            added.setdefault(scope, []).append(MinuteBucket.model_validate_json(value))
            self._stored_closed.add((scope, minute))
        for scope, buckets in added.items():
            merged = [*buckets, *(state.buckets if scope == "" else state.scopes.get(scope, []))]
            merged.sort(key=_minute_of)
            if scope == "":
                state.buckets = merged
            else:
                state.scopes[scope] = merged

    @classmethod
    def from_changelog(cls, data: bytes) -> BrandRecord:
        """The record as stored; its customers (and seen ids) must be attached before it is used.

        A record in the format before :mod:`streams.dedupe` carries its seen ids inline: they
        become one chunk, stored as such with the brand's next batch.
        """
        record = cls.model_validate_json(data)
        record._customers_attached = False
        if record.seen:
            seen = record._seen_ids
            for digest, (offset, event_time) in sorted(record.seen.items(), key=_by_offset):
                seen.add(bytes.fromhex(digest), offset, event_time)
            record.seen = {}
        return record

    def attach_customers(self, customers: dict[str, CustomerState]) -> None:
        self.engine.customers.update(customers)
        self.engine.reindex()
        self._customers_attached = True


@dataclass
class CustomerChanges:
    """Customer states a batch changed (to store) and forgot (to delete), for one brand."""

    partition: int
    upserts: dict[str, CustomerState] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)


@dataclass
class BucketChanges:
    """Closed minute buckets a batch stored (key → JSON) and dropped, for one brand."""

    partition: int
    written: dict[BucketKey, bytes] = field(default_factory=dict)
    deleted: list[BucketKey] = field(default_factory=list)


@dataclass
class SeenChanges:
    """Chunks of seen ids a batch added (name → changelog value) and dropped, for one brand
    (see :mod:`streams.dedupe`)."""

    partition: int
    written: dict[int, bytes] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch produced: records to publish, brand states to store, counts for metrics."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    scored: list[ScoredMention] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    customers: list[CustomerHealth] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    states: dict[str, BrandRecord] = field(default_factory=dict)
    customer_changes: dict[str, CustomerChanges] = field(default_factory=dict)
    seen_changes: dict[str, SeenChanges] = field(default_factory=dict)
    bucket_changes: dict[str, BucketChanges] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_places: list[tuple[int, int]] = field(default_factory=list)
    """(partition, offset) of each duplicate dropped."""
    replayed: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)
    erasures: int = 0
    """Erasure commands applied (see :class:`streams.records.ErasureCommand`)."""
    erased_examples: int = 0
    """Kept copies of mentions removed by them."""
    erased_customers: int = 0
    event_lag_s: dict[int, float] = field(default_factory=dict)
    """Per raw partition, the largest distance in seconds between the clock and the event time
    of the batch's mentions (whether new, replayed or duplicate): how live the partition is."""


def _by_offset(item: tuple[str, tuple[int, float]]) -> int:
    return item[1][0]


def _minute_of(bucket: MinuteBucket) -> datetime:
    return bucket.minute


class StateTopicMismatch(RuntimeError):
    """A brand's stored state counts offsets of another topic than the stage reading it: the
    deployment switched between the fused worker (offsets of ``mentions.raw``) and the split
    brand stage (offsets of ``mentions.scored``) over the same tables. Its applied offset, outbox
    and seen ids would be misread (mentions counted twice or dropped), so the stage stops."""

    def __init__(self, brand: str, stored_topic: str, input_topic: str) -> None:
        super().__init__(
            f"brand {brand!r}: its stored state counts offsets of {stored_topic}, but this "
            f"worker's brand stage reads {input_topic}; the fused worker and the split stages "
            "cannot take over each other's tables. Go back to the deployment that wrote them, or "
            'start the new one under another LISTENWELL_APP_ID (docs/topology.md, "Switching '
            'between fused and split")'
        )
        self.brand = brand
        self.stored_topic = stored_topic
        self.input_topic = input_topic


@dataclass(frozen=True)
class ScoredRecord:
    """One record of the brand stage's input: a scored mention or an erasure command, at its
    place (partition, offset) on ``mentions.scored`` — or on ``mentions.raw`` when
    :class:`Pipeline` runs both stages in one step."""

    partition: int
    offset: int
    value: ScoredMention | ErasureCommand


@dataclass
class ScoringResult:
    """What the scoring stage made of one batch of raw records."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    scored: list[ScoredRecord] = field(default_factory=list)
    """Scored mentions and erasure commands (to forward), in raw order, at their raw places."""
    latencies: list[float] = field(default_factory=list)
    latency_places: list[tuple[int, int]] = field(default_factory=list)
    """(partition, offset) of the record each of :attr:`latencies` was measured on."""

    def published(self) -> BatchResult:
        """The records to publish (and count), as a :class:`BatchResult` with no states."""
        return BatchResult(
            dead_letters=self.dead_letters,
            scored=[r.value for r in self.scored if isinstance(r.value, ScoredMention)],
            latencies=self.latencies,
        )

    @property
    def erasure_commands(self) -> list[ErasureCommand]:
        """The erasure commands found on the raw topic (forwarded to every brand partition)."""
        return [r.value for r in self.scored if isinstance(r.value, ErasureCommand)]


class ScoringStage:
    """The per-mention half, stateless: validate → redact and score, one raw batch at a time.

    It keeps nothing between batches, so any worker may score any raw partition; a mention id
    sent twice is scored twice here and counted once by :class:`BrandStage`. ``clock`` gives the
    scoring time stamped on each scored mention and the produced → scored latency.
    ``id_keys``: whether a raw record may be keyed by its mention id as well as by its brand (the
    split deployment); the fused :class:`Pipeline` needs the brand (its tables are co-partitioned
    with ``mentions.raw``) and dead-letters other keys as ``key_mismatch``.
    """

    def __init__(
        self, scorer: Scorer, *, clock: Clock = SYSTEM_CLOCK, id_keys: bool = True
    ) -> None:
        self._scorer = scorer
        self._clock = clock
        self._id_keys = id_keys

    def process(self, records: Sequence[RawRecord]) -> ScoringResult:
        """Score one batch of ``mentions.raw``; bad records become dead letters."""
        result = ScoringResult()
        dead_letters = result.dead_letters
        scored_at = self._clock.now()
        for record in records:
            mention = _parse(record, dead_letters, self._id_keys)
            if mention is None:
                continue
            if isinstance(mention, ErasureCommand):
                result.scored.append(ScoredRecord(record.partition, record.offset, mention))
                continue
            try:
                scored = self._scorer.score(mention, scored_at=scored_at)
            except Exception as exc:  # a scoring bug must not lose the record: park it instead
                dead_letters.append(
                    DeadLetter.of(
                        record.value or b"",
                        reason=DeadLetterReason.PROCESSING_ERROR,
                        detail=f"{type(exc).__name__}: {exc}",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
                )
                continue
            result.scored.append(ScoredRecord(record.partition, record.offset, scored))
            if record.produced_at is not None:
                result.latencies.append(max(0.0, self._clock.time() - record.produced_at))
                result.latency_places.append((record.partition, record.offset))
        return result


def decode_scored(records: Sequence[RawRecord]) -> tuple[list[ScoredRecord], list[DeadLetter]]:
    """Records of ``mentions.scored`` as the brand stage's input; a record that is neither a
    scored mention nor (under :data:`ERASURE_KEY`) an erasure command becomes a dead letter."""
    items: list[ScoredRecord] = []
    dead_letters: list[DeadLetter] = []
    for record in records:
        value = record.value or b""
        try:
            item: ScoredMention | ErasureCommand = (
                ErasureCommand.from_json(value)
                if record.key == ERASURE_KEY
                else decode_scored_mention(value)
            )
        except ValidationError as exc:
            _park(record, dead_letters, _invalid_reason(exc), _describe(exc))
            continue
        items.append(ScoredRecord(record.partition, record.offset, item))
    return items, dead_letters


class BrandStage:
    """The per-brand half: dedupe → windows and rules → customers and outbox, one batch of the
    brand stage's input (:class:`ScoredRecord`, in offset order per partition) at a time.

    ``input_topic`` (registry name) is the topic whose offsets the records carry:
    ``mentions.scored`` for the split deployment's brand stage, ``mentions.raw`` when
    :class:`Pipeline` runs both stages in one step; every state it writes says so
    (:attr:`BrandRecord.offsets_of`), and a stored state of the other topic is refused
    (:class:`StateTopicMismatch`). ``clock`` gives how live each input partition is
    (:attr:`BatchResult.event_lag_s`); nothing else depends on it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        input_topic: str = MENTIONS_SCORED.name,
        clock: Clock = SYSTEM_CLOCK,
        dedupe_horizon: timedelta = timedelta(hours=6),
    ) -> None:
        self._engine = engine
        self._input_topic = input_topic
        self._clock = clock
        self._dedupe_horizon_s = dedupe_horizon.total_seconds()

    @property
    def input_topic(self) -> str:
        """The topic (registry name) whose offsets this stage's records carry."""
        return self._input_topic

    def process_records(
        self,
        records: Sequence[RawRecord],
        stored: Callable[[str], BrandRecord | None],
        brands_in: Callable[[int], Iterable[str]] = lambda partition: (),
    ) -> BatchResult:
        """:meth:`process` on records as consumed from ``mentions.scored`` (see
        :func:`decode_scored`); the ones that are not valid become dead letters."""
        items, dead_letters = decode_scored(records)
        result = self.process(items, stored, brands_in)
        result.dead_letters[:0] = dead_letters
        return result

    def _checked(
        self, stored: Callable[[str], BrandRecord | None]
    ) -> Callable[[str], BrandRecord | None]:
        input_topic = self._input_topic

        def checked(brand: str) -> BrandRecord | None:
            state = stored(brand)
            if state is not None and state.offsets_of != input_topic:
                raise StateTopicMismatch(brand, state.offsets_of, input_topic)
            return state

        return checked

    def process(
        self,
        records: Sequence[ScoredRecord],
        stored: Callable[[str], BrandRecord | None],
        brands_in: Callable[[int], Iterable[str]] = lambda partition: (),
    ) -> BatchResult:
        """Fold one batch into the brands' states; ``stored(brand)`` returns the brand's state
        from the table, if any, and ``brands_in(partition)`` the brands with a state in that
        partition (for erasures).

        A record at an offset the brand has already applied is a replay (not counted again, its
        alerts re-sent from the outbox); a mention whose id the brand counted from another offset
        is a duplicate (a re-sent mention, or a copy re-published by a scoring-stage restart),
        dropped."""
        stored = self._checked(stored)
        result = BatchResult()
        new_by_brand: dict[str, list[ScoredMention]] = {}
        last_offset: dict[str, int] = {}
        partition_of: dict[str, int] = {}
        replayed_from: dict[str, int] = {}
        now_s = self._clock.now().timestamp()
        event_lag = result.event_lag_s
        erasures: list[tuple[int, int, ErasureCommand]] = []
        for record in records:
            scored = record.value
            if isinstance(scored, ErasureCommand):
                erasures.append((record.partition, record.offset, scored))
                continue
            mention = scored.mention
            event_time = mention.created_at.timestamp()
            lag = abs(now_s - event_time)
            if lag > event_lag.get(record.partition, -1.0):
                event_lag[record.partition] = lag
            brand = mention.brand
            state = result.states.get(brand) or stored(brand) or self._new_record(brand)
            result.states[brand] = state
            digest = id_digest(mention.id)
            seen = state.seen_ids.offset_of(digest)
            if seen is not None and seen != record.offset:
                result.duplicates += 1
                result.duplicate_places.append((record.partition, record.offset))
                continue
            if record.offset <= state.applied_offset:
                result.replayed += 1
                replayed_from[brand] = min(replayed_from.get(brand, record.offset), record.offset)
                continue
            state.seen_ids.add(digest, record.offset, event_time)
            new_by_brand.setdefault(brand, []).append(scored)
            last_offset[brand] = record.offset
            partition_of[brand] = record.partition

        for brand, first_replayed in replayed_from.items():
            state = result.states[brand]
            result.alerts.extend(e.alert for e in state.outbox if e.offset >= first_replayed)

        for brand, batch in new_by_brand.items():
            state = result.states[brand]
            customers = state.engine.customers
            # In batch order (a set's order would depend on the hash seed, and so would the order
            # customers load back after a restart).
            touched = dict.fromkeys(s.mention.customer_id for s in batch if s.mention.customer_id)
            created = {c for c in touched if c not in customers}
            output = self._engine.process(state.engine, batch)
            self._collect(
                brand,
                state,
                output,
                created,
                touched,
                partition_of[brand],
                last_offset[brand],
                result,
            )
            state.applied_offset = last_offset[brand]
            state.partition = partition_of[brand]
        for partition, offset, command in erasures:
            self._erase(partition, offset, command, brands_in(partition), stored, result)
        self._take_parts(result)
        return result

    def advance(
        self,
        brands: Iterable[str],
        watermark: datetime,
        stored: Callable[[str], BrandRecord | None],
    ) -> BatchResult:
        """Advance each of ``brands`` to ``watermark`` without a mention (the wall-clock timer).

        Closes the minutes it passes, so a quiet brand's alerts resolve, its incidents close and
        its customers' risk decays. The alerts it raises are tied to no raw offset of their own:
        they go into the outbox at the brand's ``applied_offset``, so a replay of that offset
        sends them again. A brand whose watermark does not move is left out of the result.
        """
        stored = self._checked(stored)
        result = BatchResult()
        for brand in brands:
            state = stored(brand)
            if state is None or state.partition < 0:
                continue
            engine_state = state.engine
            before = engine_state.watermark
            output = self._engine.advance(engine_state, watermark)
            if engine_state.watermark == before:
                continue
            result.states[brand] = state
            self._collect(
                brand, state, output, set(), {}, state.partition, state.applied_offset, result
            )
        self._take_parts(result)
        return result

    @staticmethod
    def _collect(
        brand: str,
        state: BrandRecord,
        output: EngineOutput,
        created: set[str],
        touched: dict[str, None],
        partition: int,
        offset: int,
        result: BatchResult,
    ) -> None:
        """Add an engine output for ``brand`` to ``result``: the customers to store (``touched``
        and those whose health changed) or delete (those the engine forgot and that are not back,
        unless ``created`` by this call: never stored), the records to publish, and its alerts to
        the brand's outbox at ``offset``."""
        customers = state.engine.customers
        touched.update(dict.fromkeys(h.customer_id for h in output.customers))
        result.customer_changes[brand] = CustomerChanges(
            partition=partition,
            upserts={c: customers[c] for c in touched if c in customers},
            # From what the engine forgot, not from the customer keys before and after: that
            # costs a pass over all of the brand's customers per batch.
            deletes={c for c in output.forgotten if c not in customers and c not in created},
        )
        result.alerts.extend(output.alerts)
        result.customers.extend(output.customers)
        result.incidents.extend(output.incidents)
        result.late += output.late
        state.outbox.extend(OutboxEntry(offset=offset, alert=a) for a in output.alerts)
        del state.outbox[:-OUTBOX_SIZE]

    def _erase(
        self,
        partition: int,
        offset: int,
        command: ErasureCommand,
        brands: Iterable[str],
        stored: Callable[[str], BrandRecord | None],
        result: BatchResult,
    ) -> None:
        """Apply ``command`` (at ``offset``) to every brand state of ``partition``, after the
        batch's mentions. Applying it again changes nothing; the resolved alerts it raised for
        removed customers wait in the outbox, so a replay sends them again."""
        ids = frozenset(command.mention_ids)
        names = set(brands) | {b for b, s in result.states.items() if s.partition == partition}
        if command.brand is not None:
            names &= {command.brand}
        for brand in sorted(names):
            state = result.states.get(brand) or stored(brand)
            if state is None:
                continue
            if offset <= state.applied_offset:
                result.alerts.extend(e.alert for e in state.outbox if e.offset == offset)
            erased = self._engine.erase(state.engine, ids, command.customer_id)
            state.closed_buckets_changed()
            gone = set(erased.customers)
            state.outbox = [
                OutboxEntry(
                    offset=e.offset,
                    alert=e.alert.model_copy(
                        update={"examples": tuple(x for x in e.alert.examples if x.id not in ids)}
                    ),
                )
                for e in state.outbox
                if e.alert.labels.get("customer") not in gone
            ]
            state.outbox.extend(OutboxEntry(offset=offset, alert=a) for a in erased.alerts)
            del state.outbox[:-OUTBOX_SIZE]
            result.alerts.extend(erased.alerts)
            state.applied_offset = max(state.applied_offset, offset)
            result.states[brand] = state
            changes = result.customer_changes.setdefault(brand, CustomerChanges(partition))
            for customer in erased.customers:
                changes.upserts.pop(customer, None)
                changes.deletes.add(customer)
            for customer in erased.changed_customers:
                changes.upserts[customer] = state.engine.customers[customer]
            result.erased_examples += erased.examples + erased.customer_mentions
            result.erased_customers += len(erased.customers)
        result.erasures += 1

    def _new_record(self, brand: str) -> BrandRecord:
        return BrandRecord(engine=self._engine.new_state(brand), offsets_of=self._input_topic)

    def _take_parts(self, result: BatchResult) -> None:
        """What every brand state ``result`` stores beside its record: a chunk of the ids it
        counted (or took over from an old record), the chunks past the dedupe horizon, its
        newly closed and its dropped minute buckets."""
        for brand, state in result.states.items():
            seen = state.seen_ids
            chunk = seen.take_new()
            pruned = seen.prune(self._dedupe_horizon_s)
            if chunk is not None or pruned:
                written = {} if chunk is None else {chunk[0]: chunk[1]}
                result.seen_changes[brand] = SeenChanges(state.partition, written, pruned)
            closed, dropped = state.take_closed_buckets()
            if closed or dropped:
                result.bucket_changes[brand] = BucketChanges(state.partition, closed, dropped)

    @property
    def dedupe_horizon_s(self) -> float:
        """How long (event time) a brand remembers the ids it counted."""
        return self._dedupe_horizon_s


def _parse(
    record: RawRecord, dead_letters: list[DeadLetter], id_keys: bool
) -> Mention | ErasureCommand | None:
    """The raw record's mention or erasure command; None (and a dead letter) if it is neither.

    The key must be the mention's brand or, with ``id_keys``, its id (``LISTENWELL_RAW_KEY``, see
    :func:`streams.topics.raw_key`): either may reach the same topic while producers change.
    """
    value = record.value or b""
    if len(value) > MAX_RAW_BYTES:
        _park(
            record,
            dead_letters,
            DeadLetterReason.OVERSIZE,
            f"{len(value)} bytes > limit {MAX_RAW_BYTES}",
        )
        return None
    if record.key == ERASURE_KEY:
        try:
            command = ErasureCommand.from_json(value)
        except ValidationError as exc:
            _park(record, dead_letters, DeadLetterReason.INVALID_RECORD, _describe(exc))
            return None
        return command
    try:
        mention = decode_mention(value)
    except ValidationError as exc:
        _park(record, dead_letters, _invalid_reason(exc), _describe(exc))
        return None
    key = record.key
    if key is None or key == mention.brand.encode():
        return mention
    if id_keys and key == mention.id.encode():
        return mention
    expected = (
        f"neither the mention's id {mention.id[:80]!r} nor its brand {mention.brand!r}"
        if id_keys
        else f"not the mention's brand {mention.brand!r}"
    )
    _park(
        record,
        dead_letters,
        DeadLetterReason.KEY_MISMATCH,
        f"record key {key[:80]!r} is {expected}",
    )
    return None


def _invalid_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return DeadLetterReason.INVALID_JSON
    return DeadLetterReason.INVALID_RECORD


def _park(record: RawRecord, dead_letters: list[DeadLetter], reason: str, detail: str) -> None:
    """Add ``record`` to ``dead_letters``, its bytes whole up to a limit."""
    value = record.value or b""
    kept = value
    if len(value) > MAX_DEAD_LETTER_BYTES:
        digest = hashlib.sha256(value).hexdigest()
        kept = value[:MAX_DEAD_LETTER_BYTES]
        detail += f" (raw truncated to {len(kept)} of {len(value)} bytes, sha256 {digest})"
    dead_letters.append(
        DeadLetter.of(
            kept,
            reason=reason,
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
    )


class Pipeline:
    """Both stages in one step, with no Kafka between them (the fused worker, the default): the
    scoring stage's records reach the brand stage at their raw places (partition, offset), so the
    brand states count offsets of ``mentions.raw`` and ``mentions.raw`` must be keyed by brand.
    ``mentions.scored`` is then an output only. The split deployment runs :class:`ScoringStage`
    and :class:`BrandStage` in processes of their own, ``mentions.scored`` between them.
    """

    def __init__(
        self,
        scorer: Scorer,
        engine: Engine,
        *,
        clock: Clock = SYSTEM_CLOCK,
        dedupe_horizon: timedelta = timedelta(hours=6),
    ) -> None:
        self.scoring = ScoringStage(scorer, clock=clock, id_keys=False)
        self.brands = BrandStage(
            engine, input_topic=MENTIONS_RAW.name, clock=clock, dedupe_horizon=dedupe_horizon
        )

    def process(
        self,
        records: Sequence[RawRecord],
        stored: Callable[[str], BrandRecord | None],
        brands_in: Callable[[int], Iterable[str]] = lambda partition: (),
    ) -> BatchResult:
        """Score one raw batch and fold it into the brands' states (see
        :meth:`BrandStage.process`); ``scored`` holds the mentions scored but not the duplicates
        the brand stage dropped (a replayed record is published again)."""
        scoring = self.scoring.process(records)
        result = self.brands.process(scoring.scored, stored, brands_in)
        result.dead_letters[:0] = scoring.dead_letters
        if result.duplicate_places:
            dropped = set(result.duplicate_places)
            result.scored = [
                r.value
                for r in scoring.scored
                if isinstance(r.value, ScoredMention) and (r.partition, r.offset) not in dropped
            ]
            result.latencies = [
                latency
                for latency, place in zip(scoring.latencies, scoring.latency_places, strict=True)
                if place not in dropped
            ]
        else:
            result.scored = [r.value for r in scoring.scored if isinstance(r.value, ScoredMention)]
            result.latencies = scoring.latencies
        return result

    def advance(
        self,
        brands: Iterable[str],
        watermark: datetime,
        stored: Callable[[str], BrandRecord | None],
    ) -> BatchResult:
        """See :meth:`BrandStage.advance`."""
        return self.brands.advance(brands, watermark, stored)

    @property
    def dedupe_horizon_s(self) -> float:
        """How long (event time) a brand remembers the ids it counted."""
        return self.brands.dedupe_horizon_s


def _describe(exc: ValidationError) -> str:
    """``field: message`` for every failing field, without echoing the (possibly huge) input."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
