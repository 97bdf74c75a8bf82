"""Shared HTTP helpers: error mapping, wait times, text and author handling."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from connectors.base import AuthError, RateLimited, SourceError, TransientError
from connectors.http import (
    USER_AGENT,
    get_json,
    html_to_text,
    make_client,
    opaque_author,
    parse_time,
    retry_after_seconds,
)
from streams.clock import FakeClock

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": "Thu, 01 Jan 2026 12:01:00 GMT"}, 60.0),
        ({"X-RateLimit-Reset": "2026-01-01T12:05:00.000Z"}, 300.0),  # Mastodon: ISO time
        ({"X-RateLimit-Reset": str(int(NOW) + 90)}, 90.0),  # epoch seconds
        ({"x-ratelimit-reset": "12"}, 12.0),  # Reddit: seconds from now
        ({"Retry-After": "Thu, 01 Jan 2026 11:00:00 GMT"}, 0.0),  # already past
        ({}, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], wait: float | None) -> None:
    assert retry_after_seconds(headers, FakeClock(datetime.fromtimestamp(NOW, UTC))) == wait


def _client(handler: httpx.MockTransport) -> httpx.Client:
    return make_client("https://api.example", transport=handler)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimited),
        (500, TransientError),
        (503, TransientError),
        (401, AuthError),
        (403, AuthError),
        (404, SourceError),
        (400, SourceError),
    ],
)
def test_status_codes_map_to_source_errors(status: int, error: type[Exception]) -> None:
    client = _client(httpx.MockTransport(lambda r: httpx.Response(status, json={"error": "x"})))
    with pytest.raises(error) as info:
        get_json(client, "/v1/things?token=hunter2", "demo", params={"key": "hunter2"})
    assert "hunter2" not in str(info.value)  # no query string in messages
    assert f"HTTP {status}" in str(info.value)


def test_timeouts_and_connection_errors_are_transient() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError, match="timed out"):
        get_json(_client(httpx.MockTransport(timeout)), "/a", "demo")
    with pytest.raises(TransientError, match="connection failed"):
        get_json(_client(httpx.MockTransport(refused)), "/a", "demo")


def test_non_json_body_is_transient() -> None:
    client = _client(httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")))
    with pytest.raises(TransientError, match="not JSON"):
        get_json(client, "/a", "demo")


def test_client_sends_user_agent_and_has_a_timeout() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = make_client("https://api.example", timeout_s=3, transport=httpx.MockTransport(handler))
    get_json(client, "/a", "demo")
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert client.timeout.read == 3


def test_html_to_text() -> None:
    markup = "<p>Hello &amp; welcome<br>to <a href='x'>#acme</a></p><p>second&nbsp;para</p>"
    assert html_to_text(markup) == "Hello & welcome\nto #acme\nsecond\xa0para"


def test_opaque_author_hides_the_handle_and_depends_on_the_salt() -> None:
    a = opaque_author("reddit", "kim_the_customer", "salt-1")
    assert a == opaque_author("reddit", "kim_the_customer", "salt-1")
    assert a != opaque_author("reddit", "kim_the_customer", "salt-2")
    assert a != opaque_author("mastodon", "kim_the_customer", "salt-1")
    assert "kim" not in a and a.startswith("reddit:")


def test_parse_time_is_aware_utc() -> None:
    assert parse_time("2024-05-01T10:11:12-07:00") == datetime(2024, 5, 1, 17, 11, 12, tzinfo=UTC)
    assert parse_time("2024-05-01T10:11:12.5Z").tzinfo == UTC
    assert parse_time("2024-05-01T10:11:12").tzinfo == UTC
