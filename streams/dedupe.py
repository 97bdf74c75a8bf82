"""A brand's recently seen mention ids, stored as it grows: one small changelog entry per batch.

The worker drops a *new* record whose mention id it has already counted (a connector re-sending a
mention), and recognises a *replayed* record (same offset, after a crash) as no duplicate. So for
each id it remembers the input offset that carried it, for a horizon of event time (six hours).

The ids used to be a map inside the brand's record, rewritten whole with every batch: 89% of the
bytes the worker wrote to its changelog (``bench/core.py``: 1.6 KB per mention). :class:`SeenIds`
keeps the same map in memory but stores it as *chunks*: the ids a batch added become one entry of
their own (:meth:`SeenIds.take_new`, :func:`encode_chunk`, 17 bytes an id), written once; a chunk
whose newest event time has fallen out of the horizon is deleted whole (:meth:`SeenIds.prune`).

Why no chunk needs to be written in step with the brand's record: a chunk carries each id's
offset. If a crash keeps a chunk but not the brand record of its batch, the replayed records come
back at the offsets the chunk names, so they count as replays of themselves (counted once, now),
not as duplicates; a chunk the replay writes again under another key holds the same ids and
offsets. If a crash keeps the record but not the chunk, the ids are not remembered and a later
*re-send* of one of those mentions (a new offset) would be counted again: the brand's record is
always written after its chunks (see :mod:`streams.tables`), so that cannot happen.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["DIGEST_BYTES", "SeenIds", "decode_chunk", "encode_chunk", "id_digest"]

DIGEST_BYTES = 9
"""blake2b digest size: 72 bits, a collision among a brand's six hours of ids is never expected."""

_HEADER = struct.Struct("<dI")  # newest event time of the chunk (epoch s), number of ids
_ENTRY = struct.Struct(f"<{DIGEST_BYTES}sq")  # digest, input offset


def id_digest(mention_id: str) -> bytes:
    """A short, stable digest of a mention id (the changelog holds digests, never ids)."""
    return hashlib.blake2b(mention_id.encode(), digest_size=DIGEST_BYTES).digest()


@dataclass
class Chunk:
    """Ids added by one batch (or carried over from an older format), and their newest event
    time."""

    newest: float
    digests: list[bytes] = field(default_factory=list)


def encode_chunk(newest: float, entries: Iterable[tuple[bytes, int]]) -> bytes:
    """A chunk's changelog value: header, then each (digest, offset)."""
    items = list(entries)
    return _HEADER.pack(newest, len(items)) + b"".join(_ENTRY.pack(d, o) for d, o in items)


def decode_chunk(value: bytes) -> tuple[float, list[tuple[bytes, int]]]:
    """``(newest event time, [(digest, offset), ...])`` of a chunk's changelog value; raises
    ``ValueError`` for bytes that are not one."""
    if len(value) < _HEADER.size:
        raise ValueError("dedupe chunk shorter than its header")
    newest, count = _HEADER.unpack_from(value)
    if len(value) != _HEADER.size + count * _ENTRY.size:
        raise ValueError(f"dedupe chunk of {len(value)} bytes does not hold {count} ids")
    entries = [_ENTRY.unpack_from(value, _HEADER.size + i * _ENTRY.size) for i in range(count)]
    return newest, entries


class SeenIds:
    """Digest → input offset of the ids a brand counted, kept as chunks (see the module).

    Chunks are named by an integer (the offset of the first id they hold); :meth:`take_new` hands
    out the ids added since the last call as a new chunk to store, :meth:`prune` the chunks to
    delete.
    """

    def __init__(self) -> None:
        self._offsets: dict[bytes, tuple[int, int]] = {}
        """digest → (offset, chunk name)"""
        self._chunks: dict[int, Chunk] = {}
        self._new: list[bytes] = []
        self._new_newest = float("-inf")
        self._new_name: int | None = None

    def __len__(self) -> int:
        return len(self._offsets)

    def offset_of(self, digest: bytes) -> int | None:
        """The input offset that carried the id, or None for an id not seen (or forgotten)."""
        seen = self._offsets.get(digest)
        return None if seen is None else seen[0]

    def add(self, digest: bytes, offset: int, event_time: float) -> None:
        """Remember an id counted from the record at ``offset`` (event time in epoch seconds)."""
        if self._new_name is None:
            self._new_name = offset
        self._offsets[digest] = (offset, self._new_name)
        self._new.append(digest)
        if event_time > self._new_newest:
            self._new_newest = event_time

    def take_new(self) -> tuple[int, bytes] | None:
        """The ids added since the last call, as a chunk ``(name, changelog value)`` to store;
        None if there are none. They are then part of the kept chunks."""
        if self._new_name is None:
            return None
        name, digests, newest = self._new_name, self._new, self._new_newest
        self._new, self._new_newest, self._new_name = [], float("-inf"), None
        chunk = self._chunks.get(name)
        if chunk is None:
            chunk = self._chunks[name] = Chunk(newest)
        chunk.newest = max(chunk.newest, newest)
        chunk.digests.extend(digests)
        offsets = self._offsets
        entries = [
            (d, offsets[d][0]) for d in chunk.digests if offsets.get(d, (0, None))[1] == name
        ]
        return name, encode_chunk(chunk.newest, entries)

    def prune(self, horizon_s: float) -> list[int]:
        """Forget the chunks whose newest event time is more than ``horizon_s`` older than the
        newest of all; returns their names (to delete from the changelog)."""
        if not self._chunks:
            return []
        newest = max(max(c.newest for c in self._chunks.values()), self._new_newest)
        cutoff = newest - horizon_s
        gone = [name for name, chunk in self._chunks.items() if chunk.newest < cutoff]
        offsets = self._offsets
        for name in gone:
            for digest in self._chunks.pop(name).digests:
                if offsets.get(digest, (0, None))[1] == name:
                    del offsets[digest]
        return gone

    def load_chunk(self, name: int, value: bytes) -> None:
        """Take a stored chunk back (recovery). An id in two chunks keeps the later offset."""
        newest, entries = decode_chunk(value)
        chunk = self._chunks.setdefault(name, Chunk(newest))
        chunk.newest = max(chunk.newest, newest)
        offsets = self._offsets
        for digest, offset in entries:
            held = offsets.get(digest)
            if held is None or held[0] <= offset:
                offsets[digest] = (offset, name)
            chunk.digests.append(digest)

    def chunk_names(self) -> list[int]:
        """Names of the kept chunks (stored, or handed out by :meth:`take_new`)."""
        return sorted(self._chunks)
