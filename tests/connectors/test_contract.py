"""The contract every source passes against its fake API (see ``connectors.base``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC

import pytest

from connectors.base import RateLimited, Source, TransientError
from streams.records import Mention
from tests.connectors.fakes.appstore import AppStoreHarness
from tests.connectors.fakes.base import Harness
from tests.connectors.fakes.bluesky import BlueskyHarness
from tests.connectors.fakes.hackernews import HackerNewsHarness
from tests.connectors.fakes.jetstream import JetstreamHarness
from tests.connectors.fakes.mastodon import MastodonHarness
from tests.connectors.fakes.reddit import RedditHarness

HARNESSES: list[type[Harness]] = [
    HackerNewsHarness,
    AppStoreHarness,
    MastodonHarness,
    BlueskyHarness,
    RedditHarness,
    JetstreamHarness,
]


@pytest.fixture(params=HARNESSES, ids=lambda h: h.__name__.removesuffix("Harness").lower())
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h: Harness = request.param()
    try:
        yield h
    finally:
        h.close()


def drain(source: Source, cursor: str | None, limit: int = 20) -> tuple[list[Mention], str | None]:
    """Fetch until the source has nothing new; every mention returned, and the last cursor."""
    out: list[Mention] = []
    for _ in range(limit):
        page, cursor = source.fetch(cursor)
        out.extend(page)
        if not page or cursor is None:
            return out, cursor
    raise AssertionError("source never ran out of new mentions")


def test_first_fetch_maps_items_to_mentions(harness: Harness) -> None:
    expected = harness.add(3)
    source = harness.source()
    assert source.check() == []
    mentions, cursor = source.fetch(None)
    assert [m.id for m in mentions] == expected  # oldest first
    assert cursor is not None
    for m in mentions:
        assert m.source == harness.kind
        assert m.brand == "acme"
        assert m.created_at.tzinfo is not None and m.created_at.utcoffset() == UTC.utcoffset(None)
        assert m.text.strip()
        assert m.url and m.url.startswith("https://")
        assert m.author.startswith(f"{harness.kind}:")
    assert [m.created_at for m in mentions] == sorted(m.created_at for m in mentions)


def test_paging_to_the_end(harness: Harness) -> None:
    expected = harness.add(11)
    source = harness.source()
    mentions, cursor = drain(source, None)
    assert [m.id for m in mentions] == expected
    assert cursor is not None
    assert len(harness.fake.requests_to(harness.listing)) >= 3  # several API pages were read


def test_resume_from_cursor_no_gap_no_repeat(harness: Harness) -> None:
    first = harness.add(5)
    mentions, cursor = drain(harness.source(), None)
    assert [m.id for m in mentions] == first
    later = harness.add(2, same_second=True) + harness.add(6)
    resumed = harness.source()  # a new process resuming from the saved cursor
    again, cursor2 = drain(resumed, cursor)
    assert [m.id for m in again] == later
    nothing, cursor3 = resumed.fetch(cursor2)
    assert nothing == []
    assert cursor3 is not None


def test_overlap_is_deduplicated(harness: Harness) -> None:
    seen: set[str] = set()
    source = harness.source()
    cursor: str | None = None
    for _round in range(3):
        harness.add(3, same_second=True)
        page, cursor = drain(source, cursor)
        ids = [m.id for m in page]
        assert len(ids) == len(set(ids))
        assert seen.isdisjoint(ids)
        seen.update(ids)
    assert len(seen) == 9


def test_refetch_from_same_cursor_returns_same_items(harness: Harness) -> None:
    harness.add(2)
    source = harness.source()
    _, cursor = source.fetch(None)
    harness.add(3)
    a, _ = source.fetch(cursor)
    b, _ = harness.source().fetch(cursor)
    assert [m.id for m in a] == [m.id for m in b] != []


def test_rate_limited_with_retry_after(harness: Harness) -> None:
    harness.add(2)
    source = harness.source()
    harness.fake.fail_next(429, {"Retry-After": "37"}, times=5)
    with pytest.raises(RateLimited) as info:
        source.fetch(None)
    assert info.value.retry_after_s == pytest.approx(37)


def test_server_error_is_transient(harness: Harness) -> None:
    harness.add(2)
    source = harness.source()
    harness.fake.fail_next(503, times=5)
    with pytest.raises(TransientError):
        source.fetch(None)
    harness.fake.failures.clear()
    mentions, _ = source.fetch(None)  # the runner retries and gets everything
    assert len(mentions) == 2


def test_malformed_items_are_skipped_and_counted(harness: Harness) -> None:
    good = harness.add(2)
    harness.add_malformed()
    good += harness.add(2)
    source = harness.source()
    mentions, _ = drain(source, None)
    assert [m.id for m in mentions] == good
    assert source.skipped >= 1
    assert source.problems and all(isinstance(p, str) for p in source.problems)


def test_bad_credentials_reported_by_check(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.break_credentials()
    source = harness.source()
    problems = source.check()
    assert problems, "check() must report refused credentials"
    assert all(isinstance(p, str) and p for p in problems)
    text = " ".join(problems)
    assert any(word in text.lower() for word in ("credential", "401", "403", "auth"))
    if harness.secret:
        assert harness.secret not in text
        assert harness.secret not in caplog.text
        assert harness.secret not in repr(source.settings)


def test_backlog_deeper_than_max_pages_arrives_without_gap(harness: Harness) -> None:
    harness.add(6)
    source = harness.source(max_pages=1)  # a first fetch back-fills one API page only
    _, cursor = drain(source, None)
    backlog = harness.add(10)  # more than one page of new items while the source was down
    resumed, _ = drain(harness.source(max_pages=1), cursor)
    assert [m.id for m in resumed] == backlog
