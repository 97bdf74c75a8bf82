"""Bluesky posts from ``app.bsky.feed.searchPosts`` (newest first, with the API's cursor).

* Session: ``POST /xrpc/com.atproto.server.createSession {identifier, password}`` with an app
  password gives an ``accessJwt`` sent as ``Authorization: Bearer``; an expired or refused token
  is renewed once. Without credentials the source calls the public AppView unauthenticated.
* Search: ``GET /xrpc/app.bsky.feed.searchPosts?q=…&sort=latest&limit=…&cursor=…`` returns
  ``posts[]`` (``uri``, ``author.did``, ``record.text``, ``record.createdAt``, ``indexedAt``) newest
  first and a ``cursor`` for the next, older page.

One stream per query; the cursor keeps, per query, the newest ``indexedAt`` (microseconds) seen and
the post URIs seen at it (see :mod:`connectors.paging`).

:class:`BlueskyJetstreamSource` (kind ``bluesky_jetstream``) reads live posts from Jetstream over
WebSocket instead, filtered by brand terms and resumable by Jetstream's ``cursor`` time.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from connectors.base import AuthError, RateLimited, SourceError, TransientError
from connectors.http import (
    USER_AGENT,
    get_json,
    opaque_author,
    parse_time,
    retry_after_seconds,
    send,
)
from connectors.paging import CursorState, page_budget
from connectors.remote import (
    HttpSource,
    HttpSourceSettings,
    RemoteSource,
    SourceSettings,
    problem,
    reason,
)
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "bluesky"


class BlueskySettings(HttpSourceSettings):
    """Settings of a ``bluesky`` source instance."""

    queries: list[str] = Field(min_length=1, description="searchPosts queries (brand terms)")
    identifier: str | None = Field(default=None, description="handle or e-mail of the account")
    app_password: SecretStr | None = Field(
        default=None, description="an app password (Settings → App passwords), never the login one"
    )
    base_url: str = Field(
        default="https://bsky.social", description="service for the session and XRPC calls"
    )
    limit: int = Field(default=100, ge=1, le=100, description="posts per API page (≤ 100)")


class BlueskySource(HttpSource[BlueskySettings]):
    """A live ``Source`` over ``app.bsky.feed.searchPosts`` (sort ``latest``)."""

    kind = SOURCE
    settings_model = BlueskySettings

    def __init__(
        self,
        name: str,
        brand: str,
        settings: BlueskySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(name, brand, settings, transport=transport, client=client)
        self._jwt: str | None = None

    def check(self) -> list[str]:
        """Problems with the configuration, the app password or the service."""
        s = self.settings
        if (s.identifier is None) != (s.app_password is None):
            return ["set both identifier and app_password, or neither"]
        try:
            self._search(s.queries[0], None, limit=1)
        except Exception as exc:  # every failure is a problem to report, not a crash
            return [problem(self.name, exc)]
        return []

    def _login(self) -> str | None:
        s = self.settings
        if s.identifier is None or s.app_password is None:
            return None
        if self._jwt is None:
            response = send(
                self._client,
                "POST",
                "/xrpc/com.atproto.server.createSession",
                self.name,
                json={"identifier": s.identifier, "password": s.app_password.get_secret_value()},
            )
            try:
                token = response.json()["accessJwt"]
            except (ValueError, KeyError, TypeError):
                raise SourceError(f"{self.name}: createSession answer has no accessJwt") from None
            self._jwt = str(token)
        return self._jwt

    def _search(self, query: str, page_cursor: str | None, limit: int | None = None) -> Any:
        params: dict[str, Any] = {
            "q": query,
            "sort": "latest",
            "limit": limit or self.settings.limit,
        }
        if page_cursor:
            params["cursor"] = page_cursor
        for attempt in range(2):
            token = self._login()
            headers = {"Authorization": f"Bearer {token}"} if token else None
            try:
                body, _ = get_json(
                    self._client,
                    "/xrpc/app.bsky.feed.searchPosts",
                    self.name,
                    params=params,
                    headers=headers,
                )
            except (RateLimited, TransientError):
                raise
            except SourceError as exc:
                expired = isinstance(exc, AuthError) or "ExpiredToken" in str(exc)
                if attempt == 0 and token is not None and expired:
                    self._jwt = None  # renew the session once
                    continue
                raise
            if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
                raise ValueError("searchPosts answer has no posts list")
            return body
        raise AssertionError("unreachable")

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Posts newer than ``cursor``, oldest first; the cursor never ends."""
        state = CursorState.loads(cursor, self.name)
        fetched_at = self.clock.now()
        found: list[tuple[int, Mention]] = []
        for query in self.settings.queries:
            mark = state.mark(query)
            pending: list[tuple[int, str, Mention]] = []
            page_cursor: str | None = None
            for _ in range(page_budget(self.settings, mark)):
                body = self._search(query, page_cursor)
                posts = (self._mention(post, fetched_at) for post in body["posts"])
                reached_mark = mark.collect(posts, pending)
                page_cursor = body.get("cursor")
                if reached_mark or not body["posts"] or not page_cursor:
                    break
            else:
                if mark.t:
                    log.warning("%s: %r: backlog deeper than the page budget", self.name, query)
            mark.accept(pending, found)
        return state.answer(found)

    def _mention(self, post: Any, fetched_at: datetime) -> tuple[int, str, Mention] | None:
        try:
            mention = post_to_mention(
                post, self.brand, self.settings.author_salt.get_secret_value(), fetched_at
            )
            indexed = parse_time(str(post["indexedAt"]))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            ident = post.get("uri", "?") if isinstance(post, dict) else "?"
            self.skip(f"{self.name}: post {ident}: {reason(exc)}")
            return None
        return _micros(indexed), str(post["uri"]), mention


def _micros(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def post_to_mention(post: Any, brand: str, salt: str, fetched_at: datetime) -> Mention:
    """A ``Mention`` from a searchPosts ``PostView`` (raises ``KeyError``/``ValueError``)."""
    uri = str(post["uri"])
    record = post["record"]
    did = str(post["author"]["did"])
    return _record_to_mention(uri, did, record, brand, salt, fetched_at)


def _record_to_mention(
    uri: str, did: str, record: Any, brand: str, salt: str, fetched_at: datetime
) -> Mention:
    if not uri.startswith("at://"):
        raise ValueError(f"not an at:// URI: {uri[:60]!r}")
    rkey = uri.rsplit("/", 1)[-1]
    langs = record.get("langs") or []
    return Mention(
        id=f"bluesky:{uri}",
        source=SOURCE,
        kind=MentionKind.COMMENT if record.get("reply") else MentionKind.POST,
        brand=brand,
        text=str(record["text"]),
        author=opaque_author(SOURCE, did, salt),
        url=f"https://bsky.app/profile/{did}/post/{rkey}",
        created_at=parse_time(str(record["createdAt"])),
        fetched_at=fetched_at,
        lang=str(langs[0])[:16] if langs else None,
    )


# --- Jetstream: live posts over WebSocket ---------------------------------------------------------


class JetstreamSettings(SourceSettings):
    """Settings of a ``bluesky_jetstream`` source instance (live Bluesky posts)."""

    terms: list[str] = Field(min_length=1, description="brand terms a post must contain")
    url: str = Field(
        default="wss://jetstream2.us-east.bsky.network/subscribe",
        description="Jetstream subscribe endpoint",
    )
    max_events: int = Field(default=5000, ge=1, description="most new events read in one fetch")
    max_seconds: float = Field(default=10.0, gt=0, description="longest time one fetch listens")
    idle_s: float = Field(
        default=2.0, gt=0, description="a fetch ends after this long without an event"
    )
    rewind_s: float = Field(
        default=5.0, ge=0, description="replay this much before the cursor (gapless reconnects)"
    )


class BlueskyJetstreamSource(RemoteSource[JetstreamSettings]):
    """A live ``Source`` over Jetstream: ``app.bsky.feed.post`` creates containing a brand term.

    Each ``fetch`` connects to ``{url}?wantedCollections=app.bsky.feed.post&cursor=<time_us>``,
    reads until ``max_events`` events, ``max_seconds`` or ``idle_s`` of silence, and disconnects.
    The cursor is the ``time_us`` of the last event read (with the events seen at that
    microsecond), so a restart replays from there — ``rewind_s`` earlier — without repeats.
    """

    kind = "bluesky_jetstream"
    settings_model = JetstreamSettings

    def __init__(
        self,
        name: str,
        brand: str,
        settings: JetstreamSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, brand, settings, clock=clock)
        self._terms = [t.lower() for t in settings.terms]

    def _url(self, cursor_us: int | None) -> str:
        query = "wantedCollections=app.bsky.feed.post"
        if cursor_us is not None:
            query += f"&cursor={cursor_us}"
        return f"{self.settings.url}?{query}"

    def _connect(self, cursor_us: int | None) -> ClientConnection:
        try:
            return ws_connect(
                self._url(cursor_us),
                open_timeout=self.settings.timeout_s,
                close_timeout=1,
                user_agent_header=USER_AGENT,
                compression=None,
                proxy=None,
                max_size=2**20,
                # Room for the events that arrive while we read, so the closing handshake is not
                # stuck behind a full queue when a fetch stops at ``max_events``.
                max_queue=4096,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            where = f"{self.name}: HTTP {status} from Jetstream"
            if status == 429:
                headers = {k: v for k, v in exc.response.headers.raw_items()}
                raise RateLimited(
                    f"{where} (rate limited)", retry_after_seconds(headers, self.clock)
                ) from None
            if status >= 500:
                raise TransientError(f"{where} (server error)") from None
            if status in (401, 403):
                raise AuthError(f"{where} (credentials refused)") from None
            raise SourceError(f"{where} (connection refused)") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise TransientError(
                f"{self.name}: cannot connect to Jetstream ({type(exc).__name__})"
            ) from None

    def check(self) -> list[str]:
        """Problems connecting to Jetstream, as readable strings."""
        try:
            with self._connect(None):
                pass
        except SourceError as exc:
            return [problem(self.name, exc)]
        return []

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Matching posts since ``cursor`` (live from now when ``None``), oldest first."""
        state = CursorState.loads(cursor, self.name)
        mark = state.mark("jetstream")
        since = None
        if mark.t:
            since = max(mark.t - int(self.settings.rewind_s * 1_000_000), 0)
        found: list[Mention] = []
        deadline = self.clock.monotonic() + self.settings.max_seconds
        new_events = 0
        with self._connect(since) as ws:
            while new_events < self.settings.max_events:
                wait = min(self.settings.idle_s, deadline - self.clock.monotonic())
                if wait <= 0:
                    break
                try:
                    message = ws.recv(timeout=wait)
                except TimeoutError:
                    break
                except ConnectionClosed:
                    if not found and mark.t == 0:
                        raise TransientError(f"{self.name}: Jetstream closed the stream") from None
                    break
                event = self._event(message)
                if event is None:
                    continue
                t, key, mention = event
                if not mark.is_new(t, key):
                    continue  # replayed from before the cursor (``rewind_s``)
                new_events += 1
                mark.advance(t, key)
                if mention is not None:
                    found.append(mention)
        found.sort(key=lambda m: (m.created_at, m.id))
        out = [m for m in found if state.claim(m.id)]
        return out, state.dumps()

    def _event(self, message: str | bytes) -> tuple[int, str, Mention | None] | None:
        """``(time_us, event key, mention or None)``; ``None`` for events without a time."""
        try:
            event = json.loads(message)
            t = int(event["time_us"])
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            self.skip(f"{self.name}: event is not Jetstream JSON")
            return None
        commit = event.get("commit") if isinstance(event, dict) else None
        if (
            event.get("kind") != "commit"
            or not isinstance(commit, dict)
            or commit.get("operation") != "create"
            or commit.get("collection") != "app.bsky.feed.post"
        ):
            return t, f"{event.get('did')}:{event.get('kind')}:{t}", None
        did = str(event.get("did"))
        key = f"{did}/{commit.get('rkey')}"
        record = commit.get("record")
        text = str(record.get("text", "")) if isinstance(record, dict) else ""
        if not any(term in text.lower() for term in self._terms):
            return t, key, None
        try:
            uri = f"at://{did}/app.bsky.feed.post/{commit['rkey']}"
            mention = _record_to_mention(
                uri,
                did,
                record,
                self.brand,
                self.settings.author_salt.get_secret_value(),
                self.clock.now(),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            self.skip(f"{self.name}: post {key}: {reason(exc)}")
            return t, key, None
        return t, key, mention
