"""The one source interface every connector implements (as in Singer, Airbyte, quix-streams).

A source is small on purpose. It knows how to talk to one outside system and turn what it finds into
``Mention`` records; polling, pacing, checkpointing and producing to Kafka belong to the runner
(``connectors.runner``).

Contract
--------
``name``
    A short, stable identifier of this source instance (e.g. ``simulate:crisis``,
    ``replay:day1.jsonl``), used in logs, metrics labels and as the key of the saved cursor.
``check()``
    Cheap validation before any data is fetched (configuration, credentials, file exists, ...).
    Returns the problems found as human-readable strings; an empty list means the source is ready.
    It never raises for an expected problem.
``fetch(cursor)``
    Returns ``(mentions, next_cursor)``: the mentions newer than ``cursor`` (``None`` = from the
    beginning), oldest first, and the cursor to pass to the next call. Cursors are opaque strings
    that only the source interprets, so the runner can store them as they are and resume later.

    * ``next_cursor is None`` means the source is exhausted after this page: a finite source (a
      file, a simulated scenario) returns its last page with ``None``, and ``([], None)`` when
      asked again.
    * ``([], cursor)`` with a non-``None`` cursor means "nothing new right now" (a live source); the
      runner polls again later with the same cursor.
    * A cursor the source cannot interpret raises ``ValueError``.

Sources may additionally expose ``skipped: int`` and ``problems: list[str]`` (input they could
not turn into a mention, e.g. invalid lines of a replay file, each as ``file:line: reason``); the
runner reports ``skipped`` in its statistics. Connectors never import Faust.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streams.records import Mention


@runtime_checkable
class Source(Protocol):
    """Something that yields mentions page by page from a cursor (see the module docstring)."""

    name: str

    def check(self) -> list[str]:
        """Problems that would stop this source from working; empty when it is ready."""
        ...

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Mentions newer than ``cursor`` (oldest first) and the cursor for the next call."""
        ...


@runtime_checkable
class ReportsSkipped(Protocol):
    """Optional extension: a source that counts and explains the input it had to skip."""

    skipped: int
    problems: list[str]


class SourceError(Exception):
    """Base of the errors a source raises from ``fetch``; the runner decides what to do."""


class RateLimited(SourceError):
    """The service asked us to slow down (HTTP 429, rate-limit headers).

    ``retry_after_s`` is how long the service asked us to wait (``Retry-After`` or the reset time of
    its rate-limit headers), or ``None`` when it did not say; the runner waits at least that long.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TransientError(SourceError):
    """A failure worth retrying with backoff: 5xx answers, timeouts, dropped connections."""


class AuthError(SourceError):
    """Credentials were refused (401/403): retrying will not help until configuration changes."""
