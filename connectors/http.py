"""Shared HTTP helpers for the connectors: one client factory, one way to turn answers into errors.

Every source that speaks HTTP through httpx builds its client with :func:`make_client` (timeouts on
every call, a descriptive ``User-Agent``, an injectable transport for tests) and reads JSON with
:func:`get_json`, which maps what the service said onto the errors of :mod:`connectors.base`:

* 429, or rate-limit headers saying nothing is left → :class:`RateLimited` with the wait the
  service asked for (``Retry-After`` in seconds or as an HTTP date, ``X-RateLimit-Reset`` as epoch
  seconds, seconds from now or an ISO 8601 time);
* 5xx, timeouts, dropped connections, a body that is not JSON → :class:`TransientError`;
* 401 and 403 → :class:`AuthError`;
* any other 4xx → :class:`SourceError` (a configuration problem: retrying will not help).

Messages name the source, the status and the path, never query strings, headers or bodies, so no
credential can leak into an exception or a log line.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

import httpx

from connectors.base import AuthError, RateLimited, SourceError, TransientError
from streams.clock import SYSTEM_CLOCK, Clock

USER_AGENT = "listenwell/0.1 (social listening; +https://github.com/listenwell/listenwell)"
DEFAULT_TIMEOUT_S = 10.0


def make_client(
    base_url: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """An httpx client for one service: base URL, timeout on every call, our ``User-Agent``."""
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    all_headers.update(headers or {})
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout_s),
        transport=transport,
        headers=all_headers,
        follow_redirects=False,
    )


def _parse_seconds(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After``/reset value: delta, epoch, HTTP date or ISO 8601."""
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        # Large numbers are epoch seconds (GitHub, Algolia); small ones are deltas (Reddit).
        wait = number - now if number > 1_000_000_000 else number
        return max(wait, 0.0)
    when: datetime | None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def retry_after_seconds(headers: Mapping[str, str], clock: Clock = SYSTEM_CLOCK) -> float | None:
    """How long the service asked us to wait, from ``Retry-After`` or ``X-RateLimit-Reset``
    (a date or epoch time is counted from ``clock``'s now)."""
    now = clock.time()
    lowered = {k.lower(): v for k, v in headers.items()}
    for key in ("retry-after", "x-ratelimit-reset", "ratelimit-reset"):
        if key in lowered:
            seconds = _parse_seconds(lowered[key], now)
            if seconds is not None:
                return seconds
    return None


def raise_for_status(response: httpx.Response, source: str, clock: Clock = SYSTEM_CLOCK) -> None:
    """Raise the connector error matching ``response``'s status; return quietly on 2xx."""
    status = response.status_code
    where = f"{source}: HTTP {status} from {response.request.method} {response.request.url.path}"
    if status == 429:
        raise RateLimited(f"{where} (rate limited)", retry_after_seconds(response.headers, clock))
    if status >= 500:
        raise TransientError(f"{where} (server error)")
    if status in (401, 403):
        raise AuthError(f"{where} (credentials refused)")
    if status >= 400:
        raise SourceError(f"{where} (request refused: {_error_hint(response)})")
    if status >= 300:
        raise SourceError(f"{where} (unexpected redirect)")


def _error_hint(response: httpx.Response) -> str:
    """A short, credential-free description of an error body (``error`` field of JSON answers)."""
    try:
        body = response.json()
    except ValueError:
        return "no details"
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:120]
    return "no details"


def send(
    client: httpx.Client,
    method: str,
    url: str,
    source: str,
    **kwargs: Any,
) -> httpx.Response:
    """One request with transport failures mapped to :class:`TransientError` and status checked."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise TransientError(f"{source}: timed out on {method} {url.split('?')[0]}") from None
    except httpx.TransportError as exc:
        raise TransientError(
            f"{source}: connection failed on {method} {url.split('?')[0]} ({type(exc).__name__})"
        ) from None
    raise_for_status(response, source)
    return response


def get_json(
    client: httpx.Client,
    url: str,
    source: str,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Any, httpx.Response]:
    """GET ``url`` and decode its JSON body (a body that is not JSON is a transient error)."""
    response = send(client, "GET", url, source, params=params, headers=headers)
    try:
        return response.json(), response
    except ValueError:
        raise TransientError(f"{source}: answer from {url.split('?')[0]} is not JSON") from None


def opaque_author(source: str, handle: str, salt: str) -> str:
    """An opaque, stable author id: a salted hash of the handle (the handle itself never leaves)."""
    digest = hashlib.sha256(f"{salt}\x00{source}\x00{handle}".encode()).hexdigest()
    return f"{source}:u_{digest[:20]}"


def parse_time(value: str) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (``Z`` or an offset; naive means UTC)."""
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BREAKS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text from HTML: ``<br>`` and ``</p>`` become newlines, entities are unescaped."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
