"""Bluesky posts from ``app.bsky.feed.searchPosts`` (newest first, with the API's cursor).

* Session: ``POST /xrpc/com.atproto.server.createSession {identifier, password}`` with an app
  password gives an ``accessJwt`` sent as ``Authorization: Bearer``; an expired or refused token
  is renewed once. Without credentials the source calls the public AppView unauthenticated.
* Search: ``GET /xrpc/app.bsky.feed.searchPosts?q=…&sort=latest&limit=…&cursor=…`` returns
  ``posts[]`` (``uri``, ``author.did``, ``record.text``, ``record.createdAt``, ``indexedAt``) newest
  first and a ``cursor`` for the next, older page.

One stream per query; the cursor keeps, per query, the newest ``indexedAt`` (microseconds) seen and
the post URIs seen at it (see :mod:`connectors.paging`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr

from connectors.base import AuthError, RateLimited, SourceError, TransientError
from connectors.http import get_json, make_client, opaque_author, parse_time, send
from connectors.paging import CursorState, SkipLog, SourceSettings, reason
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "bluesky"


class BlueskySettings(SourceSettings):
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


class BlueskySource(SkipLog):
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
        super().__init__()
        self.name = name
        self.brand = brand
        self.settings = settings
        self._client = client or make_client(
            settings.base_url, timeout_s=settings.timeout_s, transport=transport
        )
        self._jwt: str | None = None

    def check(self) -> list[str]:
        """Problems with the configuration, the app password or the service."""
        s = self.settings
        if (s.identifier is None) != (s.app_password is None):
            return [f"{self.name}: set both identifier and app_password, or neither"]
        try:
            self._search(s.queries[0], None, limit=1)
        except Exception as exc:  # every failure is a problem to report, not a crash
            return [f"{self.name}: {exc}"]
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
        fetched_at = datetime.now(UTC)
        found: list[tuple[int, Mention]] = []
        for query in self.settings.queries:
            mark = state.mark(query)
            pending: list[tuple[int, str, Mention]] = []
            page_cursor: str | None = None
            for _ in range(self.settings.max_pages):
                body = self._search(query, page_cursor)
                reached_mark = False
                for post in body["posts"]:
                    item = self._mention(post, fetched_at)
                    if item is None:
                        continue
                    if mark.is_older(item[0]):
                        reached_mark = True
                    elif mark.is_new(item[0], item[1]):
                        pending.append(item)
                page_cursor = body.get("cursor")
                if reached_mark or not body["posts"] or not page_cursor:
                    break
            for t, uri, mention in pending:
                mark.advance(t, uri)
                found.append((t, mention))
        found.sort(key=lambda pair: (pair[0], pair[1].id))
        out = [m for _, m in found if state.claim(m.id)]
        return out, state.dumps()

    def _mention(self, post: Any, fetched_at: datetime) -> tuple[int, str, Mention] | None:
        try:
            mention = post_to_mention(
                post, self.brand, self.settings.author_salt.get_secret_value(), fetched_at
            )
            indexed = parse_time(str(post["indexedAt"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
