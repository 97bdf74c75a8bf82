"""Per-source mapping details, paging requests and secret handling, against the local fakes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.base import AuthError, RateLimited, TransientError
from streams.records import MentionKind
from tests.connectors.fakes import appstore as fake_appstore
from tests.connectors.fakes import bluesky as fake_bluesky
from tests.connectors.fakes import hackernews as fake_hn
from tests.connectors.fakes import jetstream as fake_jetstream
from tests.connectors.fakes import mastodon as fake_mastodon
from tests.connectors.fakes import reddit as fake_reddit
from tests.connectors.fakes.base import Harness


def _harness(cls: type[Harness]) -> Iterator[Harness]:
    h = cls()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def hn() -> Iterator[Harness]:
    yield from _harness(fake_hn.HackerNewsHarness)


@pytest.fixture
def appstore() -> Iterator[Harness]:
    yield from _harness(fake_appstore.AppStoreHarness)


@pytest.fixture
def mastodon() -> Iterator[Harness]:
    yield from _harness(fake_mastodon.MastodonHarness)


@pytest.fixture
def bluesky() -> Iterator[Harness]:
    yield from _harness(fake_bluesky.BlueskyHarness)


@pytest.fixture
def reddit() -> Iterator[Harness]:
    yield from _harness(fake_reddit.RedditHarness)


# --- Hacker News -----------------------------------------------------------------------------


def test_hn_story_and_comment_mapping(hn: Harness) -> None:
    fake = hn.fake
    assert isinstance(fake, fake_hn.FakeAlgoliaHN)
    s = fake_hn.story(1, 1_700_000_000, "Acme raises prices", author="pg")
    s["story_text"] = "<p>Ask HN: is Acme<br>worth it?</p>"
    fake.hits.append(s)
    fake.hits.append(fake_hn.comment(2, 1_700_000_060, "<p>Acme &gt; others</p><p>really</p>"))
    mentions, _ = hn.source().fetch(None)
    story, comment = mentions
    assert story.id == "hn:1" and story.kind is MentionKind.POST
    assert story.text == "Acme raises prices\n\nAsk HN: is Acme\nworth it?"
    assert story.url == "https://news.ycombinator.com/item?id=1"
    assert story.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert comment.kind is MentionKind.COMMENT and comment.text == "Acme > others\nreally"
    assert "pg" not in story.author and "dang" not in comment.author


def test_hn_resume_asks_only_for_newer_hits(hn: Harness) -> None:
    hn.add(2)
    source = hn.source()
    _, cursor = source.fetch(None)
    assert cursor is not None
    newest = json.loads(cursor)["marks"]["acme"]["t"]
    source.fetch(cursor)
    last = hn.fake.requests_to("search_by_date")[-1].query
    assert last["numericFilters"] == f"created_at_i>={newest}"
    assert last["tags"] == "(story,comment)" and last["query"] == "acme"


def test_bad_cursor_is_a_value_error(hn: Harness) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        hn.source().fetch("42")


# --- App Store -------------------------------------------------------------------------------


def test_appstore_review_mapping(appstore: Harness) -> None:
    fake = appstore.fake
    assert isinstance(fake, fake_appstore.FakeAppStoreFeed)
    r = fake_appstore.review(555, 1_700_000_000, 2, "Crashes", "Since the update it crashes", "Kim")
    fake.reviews["gb"] = [r]  # a single review: Apple sends an object, not a list
    (mention,), _ = appstore.source(countries=["gb"]).fetch(None)
    assert mention.id == "appstore:gb:555"
    assert mention.kind is MentionKind.REVIEW and mention.rating == 2
    assert mention.text == "Crashes\n\nSince the update it crashes"
    assert mention.created_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert mention.url == f"https://apps.apple.com/gb/app/id{fake_appstore.APP_ID}?see-all=reviews"
    assert "Kim" not in mention.author


def test_appstore_ignores_app_entry_and_stops_at_known_reviews(appstore: Harness) -> None:
    fake = appstore.fake
    assert isinstance(fake, fake_appstore.FakeAppStoreFeed)
    appstore.add(12)  # three pages of four
    fake.reviews["us"].append(
        {"im:name": {"label": "Acme"}, "updated": {"label": "2030-01-01T00:00:00-07:00"}}
    )
    source = appstore.source()
    first, cursor = source.fetch(None)
    assert len(first) == 12 and source.skipped == 0
    before = len(fake.requests)
    appstore.add(1)
    again, _ = source.fetch(cursor)
    assert len(again) == 1
    assert len(fake.requests) - before == 1  # page 1 already reaches known reviews


# --- Mastodon --------------------------------------------------------------------------------


def test_mastodon_status_mapping(mastodon: Harness) -> None:
    fake = mastodon.fake
    assert isinstance(fake, fake_mastodon.FakeMastodon)
    s = fake_mastodon.status(
        1, 1_700_000_000, '<p>Hey <a href="x">@acme</a> &amp; co</p><p>bye</p>'
    )
    s["spoiler_text"] = "rant"
    fake.statuses.append(s)
    (mention,), _ = mastodon.source(queries=[]).fetch(None)
    host = fake.base_url.split("//", 1)[1]
    assert mention.id == f"mastodon:{host}:{s['id']}"
    assert mention.text == "rant\n\nHey @acme & co\nbye"
    assert mention.url == s["url"] and mention.lang == "en"
    assert mention.created_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert "kim" not in mention.author


def test_mastodon_pages_forward_with_min_id(mastodon: Harness) -> None:
    mastodon.add(2)
    source = mastodon.source(queries=[])
    first, cursor = source.fetch(None)
    mastodon.add(9)
    again, _ = source.fetch(cursor)
    assert len(again) == 9
    forward = [r.query for r in mastodon.fake.requests_to("/timelines/tag/acme")][1:]
    assert forward[0]["min_id"] == first[-1].id.rsplit(":", 1)[1]
    assert len(forward) == 3  # 4 + 4 + 1 statuses, following the Link rel="prev" min_id


def test_mastodon_rate_limit_headers(mastodon: Harness) -> None:
    fake = mastodon.fake
    assert isinstance(fake, fake_mastodon.FakeMastodon)
    mastodon.add(1)
    source = mastodon.source(hashtags=[])
    fake.rate_headers = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2099-01-01T00:00:00.000Z",
    }
    mentions, cursor = source.fetch(None)
    assert len(mentions) == 1  # what was read is kept
    with pytest.raises(RateLimited) as info:
        source.fetch(cursor)  # ... and the next call waits for the reset
    assert info.value.retry_after_s is not None and info.value.retry_after_s > 3600
    fake.rate_headers = {}
    fake.fail_next(429, {"X-RateLimit-Reset": "2099-01-01T00:00:00.000Z"})
    with pytest.raises(RateLimited) as info:
        source.fetch(cursor)
    assert info.value.retry_after_s is not None and info.value.retry_after_s > 3600


def test_mastodon_needs_a_stream() -> None:
    from connectors.mastodon import MastodonSettings, MastodonSource

    problems = MastodonSource("m", "acme", MastodonSettings()).check()
    assert problems == ["configure at least one of hashtags or queries"]


def test_mastodon_token_never_in_errors(
    mastodon: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mastodon.break_credentials()
    with pytest.raises(AuthError) as info:
        mastodon.source().fetch(None)
    assert fake_mastodon.TOKEN not in str(info.value) + repr(info.value) + caplog.text


# --- Bluesky ---------------------------------------------------------------------------------


def test_bluesky_post_mapping(bluesky: Harness) -> None:
    fake = bluesky.fake
    assert isinstance(fake, fake_bluesky.FakeBluesky)
    p = fake_bluesky.post(7, 1_700_000_000, "acme ate my homework", reply=True)
    fake.posts.append(p)
    (mention,), _ = bluesky.source().fetch(None)
    assert mention.id == f"bluesky:at://{fake_bluesky.DID}/app.bsky.feed.post/3kq0000000007"
    assert mention.kind is MentionKind.COMMENT
    assert mention.url == f"https://bsky.app/profile/{fake_bluesky.DID}/post/3kq0000000007"
    assert mention.text == "acme ate my homework" and mention.lang == "en"
    assert fake_bluesky.DID not in mention.author


def test_bluesky_renews_an_expired_session(bluesky: Harness) -> None:
    fake = bluesky.fake
    assert isinstance(fake, fake_bluesky.FakeBluesky)
    bluesky.add(1)
    source = bluesky.source()
    _, cursor = source.fetch(None)
    fake.expire_tokens()
    bluesky.add(1)
    mentions, _ = source.fetch(cursor)
    assert len(mentions) == 1 and fake.sessions == 2


def test_bluesky_app_password_never_in_errors(
    bluesky: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bluesky.break_credentials()
    source = bluesky.source()
    with pytest.raises(AuthError) as info:
        source.fetch(None)
    problems = source.check()
    assert problems and "credentials refused" in problems[0]
    text = str(info.value) + repr(info.value) + caplog.text + " ".join(problems)
    assert fake_bluesky.APP_PASSWORD not in text


def test_bluesky_half_configured_credentials() -> None:
    from connectors.bluesky import BlueskySettings, BlueskySource

    settings = BlueskySettings(queries=["acme"], identifier="me.bsky.social")
    assert "set both identifier and app_password" in BlueskySource("b", "acme", settings).check()[0]


# --- Reddit ----------------------------------------------------------------------------------


def test_reddit_mapping_and_comment_filter(reddit: Harness) -> None:
    fake = reddit.fake
    assert isinstance(fake, fake_reddit.FakeReddit)
    fake.things.append(fake_reddit.submission(1, 1_700_000_000, "Acme lost my bag", "Twice."))
    fake.things.append(fake_reddit.comment(2, 1_700_000_060, "ACME refunded me"))
    fake.things.append(fake_reddit.comment(3, 1_700_000_120, "what about the weather"))
    post, comment = reddit.source().fetch(None)[0]
    assert post.id == "reddit:t3_17x0001" and post.kind is MentionKind.POST
    assert post.text == "Acme lost my bag\n\nTwice."
    assert post.url == "https://www.reddit.com/r/acme/comments/17x0001/post/"
    assert comment.id == "reddit:t1_k9c0002" and comment.kind is MentionKind.COMMENT
    assert comment.created_at == datetime.fromtimestamp(1_700_000_060, UTC)
    assert "kim_the_customer" not in post.author and "8k2j1x" not in post.author


def test_reddit_calls_the_listing_endpoints(reddit: Harness) -> None:
    reddit.add(1)
    reddit.source().fetch(None)
    paths = {r.path.rstrip("/") for r in reddit.fake.requests}
    assert paths == {"/api/v1/access_token", "/r/acme/search", "/r/all/search", "/r/acme/comments"}
    search = reddit.fake.requests_to("/r/acme/search")[0].query
    assert search["q"] == "acme" and search["sort"] == "new" and search["restrict_sr"] == "True"


def test_reddit_secret_never_in_errors(reddit: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reddit.break_credentials()
    source = reddit.source()
    with pytest.raises(AuthError) as info:
        source.fetch(None)
    problems = source.check()
    assert problems and "credentials refused" in problems[0]
    text = str(info.value) + repr(info.value) + caplog.text + " ".join(problems)
    assert fake_reddit.CLIENT_SECRET not in text
    assert fake_reddit.CLIENT_SECRET not in repr(source.settings)


# --- Bluesky Jetstream -----------------------------------------------------------------------


@pytest.fixture
def jetstream() -> Iterator[Harness]:
    yield from _harness(fake_jetstream.JetstreamHarness)


def test_jetstream_filters_posts_by_brand_terms(jetstream: Harness) -> None:
    ids = jetstream.add(2)  # each with an identity event and an unrelated post beside it
    source = jetstream.source()
    mentions, _ = source.fetch(None)
    assert [m.id for m in mentions] == ids
    assert [m.kind for m in mentions] == [MentionKind.POST, MentionKind.COMMENT]
    assert mentions[0].text == "Acme cancelled my order 1"
    assert mentions[0].url == f"https://bsky.app/profile/{fake_jetstream.DID}/post/3l3qo2vuowo0001"
    assert source.skipped == 0  # other traffic is not a problem


def test_jetstream_resumes_with_cursor_time_minus_rewind(jetstream: Harness) -> None:
    jetstream.add(1)
    source = jetstream.source(rewind_s=2)
    _, cursor = source.fetch(None)
    assert cursor is not None
    last_us = json.loads(cursor)["marks"]["jetstream"]["t"]
    source.fetch(cursor)
    first, second = jetstream.fake.requests_to("/subscribe")
    assert "cursor" not in first.query  # live from now
    assert second.query == {
        "wantedCollections": "app.bsky.feed.post",
        "cursor": str(last_us - 2_000_000),
    }


def test_reddit_listing_rate_limit_and_server_error(reddit: Harness) -> None:
    reddit.add(1)
    source = reddit.source()
    _, cursor = source.fetch(None)  # praw now holds a token: the next request is a listing
    reddit.fake.fail_next(429, {"Retry-After": "12", "x-ratelimit-reset": "12"})
    with pytest.raises(RateLimited) as info:
        source.fetch(cursor)
    assert info.value.retry_after_s == 12
    reddit.fake.fail_next(502)
    with pytest.raises(TransientError, match="HTTP 502"):
        source.fetch(cursor)  # praw's own retries are off: one request, no sleep
    assert reddit.fake.requests[-1].path.startswith("/r/")


def test_unreachable_services_are_transient(reddit: Harness, jetstream: Harness) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    closed = f"http://127.0.0.1:{port}"
    with pytest.raises(TransientError):
        reddit.source(oauth_url=closed, reddit_url=closed).fetch(None)
    with pytest.raises(TransientError):
        jetstream.source(url=f"ws://127.0.0.1:{port}/subscribe").fetch(None)


def test_bluesky_without_credentials_calls_the_public_appview(bluesky: Harness) -> None:
    bluesky.add(1)
    source = bluesky.source(identifier=None, app_password=None)
    problems = source.check()  # this fake, like bsky.social, wants a session for searchPosts
    assert problems == ["HTTP 401 from GET /xrpc/app.bsky.feed.searchPosts (credentials refused)"]
    assert bluesky.fake.requests_to("createSession") == []
    assert "authorization" not in bluesky.fake.requests[-1].headers


def test_reddit_used_up_rate_limit_raises_instead_of_sleeping(reddit: Harness) -> None:
    fake = reddit.fake
    assert isinstance(fake, fake_reddit.FakeReddit)
    reddit.add(1)
    fake.rate_headers = {
        "x-ratelimit-used": "600",
        "x-ratelimit-remaining": "0.0",
        "x-ratelimit-reset": "240",
    }
    with pytest.raises(RateLimited) as info:
        reddit.source().fetch(None)  # the second listing would have to wait for the reset
    assert info.value.retry_after_s is not None and 200 < info.value.retry_after_s <= 240
