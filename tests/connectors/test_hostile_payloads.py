"""Hostile API payloads through each connector's mapping (hypothesis): an item either becomes a
valid ``Mention`` or is skipped with a reason; no exception escapes, whatever the JSON shape."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors import appstore, bluesky, hackernews, mastodon, reddit
from streams.records import Mention

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SALT = SecretStr("salt-0123456789")

# Values that break naive parsing: infinities, huge and negative numbers, odd dates, wrong types.
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e20, -1e20, 10**20, -(10**20)]),
    st.sampled_from(
        [
            "",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-02-30T00:00:00Z",
            "not a date",
            "1e400",
            "<script>alert(1)</script>",
            "&#xffffffff;",
            "x" * 50_000,
            "\x00\ud800",
        ]
    ),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def shapes(template: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The template with some (possibly nested) fields replaced, removed, or a non-object."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        doc = json.loads(json.dumps(template))
        for _ in range(draw(st.integers(1, 3))):
            target = doc
            path = draw(st.sampled_from(_paths(template)))
            for part in path[:-1]:
                target = target.get(part) if isinstance(target, dict) else None
            if isinstance(target, dict):
                if draw(st.integers(0, 4)) == 0:
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = draw(HOSTILE)
        return doc

    return st.one_of(
        st.just(template),
        mutate(),
        HOSTILE,
        st.recursive(HOSTILE, lambda i: st.lists(i, max_size=3), max_leaves=5),
    )


def _paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in doc.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


def check_mapping(
    source: Any, call: Callable[[Any], Any], strategy: st.SearchStrategy[Any], mention_at: int
) -> None:
    counts = {"mapped": 0, "skipped": 0}

    @settings(
        max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def run(item: Any) -> None:
        before = source.skipped
        out = call(item)
        mention = out[mention_at] if isinstance(out, tuple) else None
        if mention is None:
            counts["skipped"] += 1
        else:
            assert isinstance(mention, Mention)
            Mention.from_json(mention.to_json())  # valid on the wire
            assert source.skipped == before
            counts["mapped"] += 1

    run()
    assert counts["mapped"] > 0 and counts["skipped"] > 0, counts
    too_long = [p[:100] for p in source.problems if len(p) > 400]
    assert too_long == []


def test_reddit_things() -> None:
    src = reddit.RedditSource(
        "r",
        "acme",
        reddit.RedditSettings(
            client_id="id", client_secret=SecretStr("s"), queries=["acme"], author_salt=SALT
        ),
        reddit=types.SimpleNamespace(),  # type: ignore[arg-type]
    )
    template = {
        "name": "t3_abc",
        "created_utc": 1772366400.0,
        "title": "acme lost my bag",
        "selftext": "again",
        "author": "someone",
        "author_fullname": "t2_x",
        "permalink": "/r/x/comments/abc/",
    }

    def call(item: Any) -> Any:
        data = item if isinstance(item, dict) else {"name": item}
        return src._mention(types.SimpleNamespace(**{str(k): v for k, v in data.items()}), NOW)

    check_mapping(src, call, shapes(template), 2)


def test_mastodon_statuses() -> None:
    src = mastodon.MastodonSource(
        "m", "acme", mastodon.MastodonSettings(author_salt=SALT, hashtags=["acme"])
    )
    template = {
        "id": "1100",
        "content": "<p>acme <b>lost</b> my bag</p>",
        "spoiler_text": "",
        "account": {"acct": "x@y.social", "url": "https://y.social/@x"},
        "url": "https://y.social/@x/1100",
        "uri": "https://y.social/users/x/statuses/1100",
        "created_at": "2026-03-01T11:00:00.000Z",
        "language": "en",
        "in_reply_to_id": None,
    }
    check_mapping(src, lambda item: src._mention(item, NOW), shapes(template), 1)


def test_hackernews_hits() -> None:
    src = hackernews.HackerNewsSource(
        "h", "acme", hackernews.HackerNewsSettings(queries=["acme"], author_salt=SALT)
    )
    template = {
        "objectID": "42",
        "created_at_i": 1772366400,
        "_tags": ["comment"],
        "comment_text": "acme is down",
        "title": None,
        "story_text": None,
        "author": "pg",
    }
    check_mapping(src, lambda item: src._mention(item, NOW), shapes(template), 2)


def test_appstore_entries() -> None:
    src = appstore.AppStoreSource(
        "a", "acme", appstore.AppStoreSettings(app_id=123, author_salt=SALT)
    )
    template = {
        "id": {"label": "9001"},
        "updated": {"label": "2026-03-01T03:00:00-07:00"},
        "title": {"label": "Crashes"},
        "content": {"label": "The app crashes on login"},
        "author": {"name": {"label": "Jo"}, "uri": {"label": "https://itunes.apple.com/u/1"}},
        "im:rating": {"label": "1"},
    }
    check_mapping(src, lambda item: src._mention("us", item, NOW), shapes(template), 2)


def test_bluesky_posts_and_jetstream_events() -> None:
    src = bluesky.BlueskySource(
        "b", "acme", bluesky.BlueskySettings(queries=["acme"], author_salt=SALT)
    )
    post = {
        "uri": "at://did:plc:abc/app.bsky.feed.post/3k",
        "author": {"did": "did:plc:abc"},
        "record": {
            "text": "acme lost my bag",
            "createdAt": "2026-03-01T11:00:00Z",
            "langs": ["en"],
        },
        "indexedAt": "2026-03-01T11:00:01Z",
    }
    check_mapping(src, lambda item: src._mention(item, NOW), shapes(post), 2)

    jet = bluesky.BlueskyJetstreamSource(
        "j", "acme", bluesky.JetstreamSettings(terms=["acme"], author_salt=SALT)
    )
    event = {
        "did": "did:plc:abc",
        "time_us": 1772366400000000,
        "kind": "commit",
        "commit": {
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3k",
            "record": {"text": "acme again", "createdAt": "2026-03-01T11:00:00Z"},
        },
    }

    def call(item: Any) -> Any:
        out = jet._event(json.dumps(item))
        return (0, "", out[2]) if out is not None else None

    check_mapping(jet, call, shapes(event), 2)
    assert jet._event(b"\xff\xfe") is None and jet._event("[" * 100_000) is None


def test_found_bugs_out_of_range_numbers_and_dates_are_skipped_not_raised() -> None:
    """Regressions: OverflowError escaped every mapping (inf / 1e20 timestamps, a year-1 date with
    an offset), RecursionError escaped Jetstream's decoder, and huge ids made huge problem lines."""
    r = reddit.RedditSource(
        "r",
        "acme",
        reddit.RedditSettings(client_id="i", client_secret=SecretStr("s"), queries=["acme"]),
        reddit=types.SimpleNamespace(),  # type: ignore[arg-type]
    )
    thing = types.SimpleNamespace(name="t1_x", created_utc=float("inf"), body="b", author="a")
    assert r._mention(thing, NOW) is None
    assert r._mention(types.SimpleNamespace(name="x" * 10_000), NOW) is None
    assert all(len(p) <= 300 for p in r.problems)
    hn = hackernews.HackerNewsSource("h", "acme", hackernews.HackerNewsSettings(queries=["a"]))
    hit = {"objectID": "1", "created_at_i": 10**20, "comment_text": "x", "author": "a"}
    assert hn._mention(hit, NOW) is None
    ap = appstore.AppStoreSource("a", "acme", appstore.AppStoreSettings(app_id=1))
    entry = {
        "id": {"label": "1"},
        "updated": {"label": "0001-01-01T00:00:00+01:00"},
        "content": {"label": "x"},
        "author": {"name": {"label": "n"}},
        "im:rating": {"label": float("inf")},
    }
    assert ap._mention("us", entry, NOW) is None
    ma = mastodon.MastodonSource("m", "acme", mastodon.MastodonSettings())
    status = {"id": "1", "content": "x", "account": {"acct": "a"}, "uri": "u"}
    assert ma._mention({**status, "created_at": "0001-01-01T00:00:00+01:00"}, NOW) is None
    jet = bluesky.BlueskyJetstreamSource("j", "acme", bluesky.JetstreamSettings(terms=["a"]))
    assert jet._event("[" * 100_000) is None
    assert jet._event('{"time_us": 1e400}') is None
    assert (hn.skipped, ap.skipped, ma.skipped, jet.skipped) == (1, 1, 1, 2)
