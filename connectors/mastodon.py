"""Public Mastodon statuses by hashtag and by full-text search on one instance.

* ``GET /api/v1/timelines/tag/:hashtag`` and ``GET /api/v2/search?type=statuses&q=...`` return
  statuses newest first (``limit`` ≤ 40). Paging follows Mastodon's id windows: ``max_id``
  walks back (the ``Link: <…max_id=…>; rel="next"`` header) and ``min_id`` walks forward from a
  known status (``rel="prev"``), returning the statuses immediately newer than it.
* 429 answers and rate-limit headers (``X-RateLimit-Limit/Remaining/Reset``) become
  :class:`~connectors.base.RateLimited` with the wait until the reset.
* HTML content becomes plain text (``<br>`` and ``</p>`` are line breaks, entities unescaped).

One stream per hashtag and per query; the cursor keeps, per stream, the newest status id seen
(statuses found by two streams are returned once). Status ids must be Mastodon's numeric ids.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import Field, SecretStr

from connectors.base import RateLimited
from connectors.http import (
    get_json,
    html_to_text,
    opaque_author,
    parse_time,
    retry_after_seconds,
)
from connectors.paging import CursorState, Mark
from connectors.remote import HttpSource, HttpSourceSettings, problem, reason
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "mastodon"


class MastodonSettings(HttpSourceSettings):
    """Settings of a ``mastodon`` source instance."""

    base_url: str = Field(default="https://mastodon.social", description="instance URL")
    hashtags: list[str] = Field(default=[], description="hashtags to follow (without '#')")
    queries: list[str] = Field(default=[], description="full-text status searches")
    access_token: SecretStr | None = Field(
        default=None, description="optional app token (many instances require one for search)"
    )
    limit: int = Field(default=40, ge=1, le=40, description="statuses per API page (≤ 40)")


class MastodonSource(HttpSource[MastodonSettings]):
    """A live ``Source`` over one Mastodon instance's hashtag timelines and status search."""

    kind = SOURCE
    settings_model = MastodonSettings

    def __init__(
        self,
        name: str,
        brand: str,
        settings: MastodonSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {}
        if settings.access_token is not None:
            headers["Authorization"] = f"Bearer {settings.access_token.get_secret_value()}"
        super().__init__(name, brand, settings, transport=transport, client=client, headers=headers)
        self._exhausted: float | None = None
        self.instance = urlsplit(settings.base_url).netloc.lower() or "mastodon"

    def _streams(self) -> list[str]:
        return [f"tag:{t.lstrip('#')}" for t in self.settings.hashtags] + [
            f"q:{q}" for q in self.settings.queries
        ]

    def check(self) -> list[str]:
        """Problems with the configuration, the token or the instance, as readable strings."""
        streams = self._streams()
        if not streams:
            return ["configure at least one of hashtags or queries"]
        try:
            if self.settings.access_token is not None:
                get_json(self._client, "/api/v1/apps/verify_credentials", self.name)
            for stream in streams:
                self._page(stream, {"limit": 1})
        except Exception as exc:  # every failure is a problem to report, not a crash
            return [problem(self.name, exc)]
        return []

    def _page(self, stream: str, params: dict[str, Any]) -> tuple[list[Any], httpx.Response]:
        kind, _, value = stream.partition(":")
        if kind == "tag":
            url = f"/api/v1/timelines/tag/{quote(value, safe='')}"
            body, response = get_json(self._client, url, self.name, params=params)
            statuses = body
        else:
            params = {"q": value, "type": "statuses", "resolve": "false", **params}
            body, response = get_json(self._client, "/api/v2/search", self.name, params=params)
            statuses = body.get("statuses") if isinstance(body, dict) else None
        if not isinstance(statuses, list):
            raise ValueError(f"answer for {stream} is not a list of statuses")
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.strip() == "0":
            # The page is good, but the next call would be refused: tell the runner to wait.
            log.info("%s: rate limit exhausted after this page", self.name)
            self._exhausted = retry_after_seconds(
                {"X-RateLimit-Reset": response.headers.get("X-RateLimit-Reset", "")}, self.clock
            )
        return statuses, response

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Statuses newer than ``cursor``, oldest first; the cursor never ends.

        When the instance says no requests are left (``X-RateLimit-Remaining: 0``), the pages read
        so far are returned and the next call raises :class:`RateLimited` until the reset time.
        """
        exhausted = self._exhausted
        if exhausted is not None:
            self._exhausted = None
            raise RateLimited(f"{self.name}: rate limit exhausted", exhausted)
        state = CursorState.loads(cursor, self.name)
        fetched_at = self.clock.now()
        found: list[tuple[int, Mention]] = []
        for stream in self._streams():
            mark = state.mark(stream)
            first = mark.t == 0  # nothing seen yet: back-fill the newest pages
            for t, mention in self._walk(stream, mark, first, fetched_at):
                mark.advance(t, str(t))
                found.append((t, mention))
            mark.ids = []
        return state.answer(found)

    def _walk(
        self, stream: str, mark: Mark, first: bool, fetched_at: datetime
    ) -> list[tuple[int, Mention]]:
        """Back-fill ``max_pages`` pages on the first fetch, else page forward from ``min_id``."""
        collected: dict[int, Mention] = {}
        params: dict[str, Any] = {"limit": self.settings.limit}
        if not first:
            params["min_id"] = str(mark.t)
        for _ in range(self.settings.max_pages):
            statuses, response = self._page(stream, params)
            ids: list[int] = []
            for status in statuses:
                item = self._mention(status, fetched_at)
                if item is None:
                    sid = status.get("id") if isinstance(status, dict) else None
                    if isinstance(sid, str) and sid.isdigit():
                        ids.append(int(sid))
                    continue
                ids.append(item[0])
                if first or item[0] > mark.t:
                    collected[item[0]] = item[1]
            if not statuses or not ids or len(statuses) < self.settings.limit:
                break
            link = "prev" if not first else "next"
            key = "min_id" if not first else "max_id"
            following = _link_param(response, link, key)
            if following is None:
                following = str(max(ids) if not first else min(ids))
            params = {"limit": self.settings.limit, key: following}
        return sorted(collected.items())

    def _mention(self, status: Any, fetched_at: datetime) -> tuple[int, Mention] | None:
        try:
            sid = str(status["id"])
            if not sid.isdigit():
                raise ValueError(f"status id {sid[:40]!r} is not numeric")
            text = html_to_text(str(status["content"]))
            spoiler = str(status.get("spoiler_text") or "").strip()
            if spoiler:
                text = f"{spoiler}\n\n{text}"
            account = status["account"]
            handle = str(account.get("url") or account["acct"])
            mention = Mention(
                id=f"mastodon:{self.instance}:{sid}",
                source=SOURCE,
                kind=MentionKind.COMMENT if status.get("in_reply_to_id") else MentionKind.POST,
                brand=self.brand,
                text=text,
                author=opaque_author(SOURCE, handle, self.settings.author_salt.get_secret_value()),
                url=str(status.get("url") or status["uri"]),
                created_at=parse_time(str(status["created_at"])),
                fetched_at=fetched_at,
                lang=status.get("language") or None,
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            ident = status.get("id", "?") if isinstance(status, dict) else "?"
            self.skip(f"{self.name}: status {ident}: {reason(exc)}")
            return None
        return int(sid), mention


def _link_param(response: httpx.Response, rel: str, key: str) -> str | None:
    """The ``key`` query parameter of the ``Link`` header's ``rel`` URL, if there is one."""
    link = response.links.get(rel)
    if not link or "url" not in link:
        return None
    values = parse_qs(urlsplit(link["url"]).query).get(key)
    return values[-1] if values else None
