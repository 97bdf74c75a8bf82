"""Reddit submissions and comments mentioning a brand, through praw with app-only OAuth.

* Auth: application-only OAuth (``client_credentials`` grant at
  ``{reddit_url}/api/v1/access_token``) with a client id, a client secret (``SecretStr``) and a
  descriptive user agent.
* Streams (each newest first, Reddit's ``Listing`` paging with ``after``, ≤ 100 per page):
  ``search:<query>`` in the chosen subreddits (``/r/a+b/search?q=…&sort=new&restrict_sr=on``),
  ``all:<query>`` site-wide (``/r/all/search``) when ``site_wide`` is on, and ``comments`` — the
  newest comments of the chosen subreddits (``/r/a+b/comments``) filtered by the brand queries
  (Reddit's search does not search comments).
* The cursor keeps, per stream, the newest ``created_utc`` second seen and the fullnames seen at it
  (see :mod:`connectors.paging`); a submission found by two streams is returned once.
* praw's own retries and sleeps are switched off: the runner owns backoff. Errors map onto
  :mod:`connectors.base`: 429 → ``RateLimited`` (``Retry-After``), 5xx and network errors →
  ``TransientError``, 401/403 and refused grants → ``AuthError``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import praw
import prawcore
from prawcore.rate_limit import RateLimiter
from prawcore.sessions import FiniteRetryStrategy
from pydantic import Field, SecretStr

from connectors.base import AuthError, RateLimited, SourceError, TransientError
from connectors.http import USER_AGENT, opaque_author, retry_after_seconds
from connectors.paging import CursorState, Mark, page_budget
from connectors.remote import RemoteSource, SourceSettings, problem, reason
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "reddit"
PAGE = 100  # Reddit's largest listing page


class RedditSettings(SourceSettings):
    """Settings of a ``reddit`` source instance."""

    client_id: str = Field(min_length=1, description="the app's client id (reddit.com/prefs/apps)")
    client_secret: SecretStr = Field(description="the app's client secret")
    user_agent: str = Field(
        default=USER_AGENT, min_length=10, description="descriptive user agent (Reddit API rules)"
    )
    queries: list[str] = Field(min_length=1, description="brand search queries")
    subreddits: list[str] = Field(default=[], description="subreddits to search and scan (no r/)")
    site_wide: bool = Field(default=True, description="also search all of Reddit")
    comments: bool = Field(default=True, description="scan new comments of the subreddits")
    oauth_url: str = Field(default="https://oauth.reddit.com", description="API base URL")
    reddit_url: str = Field(default="https://www.reddit.com", description="token/site base URL")


@dataclass(frozen=True)
class _NoRetry(FiniteRetryStrategy):
    """prawcore retry strategy that neither retries nor sleeps (the runner backs off)."""

    retries: int = 0

    def _sleep_seconds(self) -> float | None:
        return None


class _RaiseWhenUsedUp(RateLimiter):
    """prawcore's rate limiter, except that it raises instead of sleeping until the reset.

    prawcore spreads requests over Reddit's window (short sleeps, kept) but, once
    ``x-ratelimit-remaining`` reaches 0, would block the runner's thread until the reset; this
    raises :class:`RateLimited` with that wait so the runner schedules it instead.
    """

    def __init__(self, name: str, window_size: int) -> None:
        super().__init__(window_size=window_size)
        self.name = name

    def delay(self) -> None:
        if self.remaining is not None and self.remaining <= 0 and self.next_request_timestamp_ns:
            wait = (self.next_request_timestamp_ns - time.monotonic_ns()) / 1e9
            if wait > 0:
                raise RateLimited(f"{self.name}: Reddit rate limit used up", wait)
        super().delay()


class RedditSource(RemoteSource[RedditSettings]):
    """A live ``Source`` over Reddit search and subreddit comment listings."""

    kind = SOURCE
    settings_model = RedditSettings

    def __init__(
        self,
        name: str,
        brand: str,
        settings: RedditSettings,
        *,
        reddit: praw.Reddit | None = None,
        requestor_kwargs: dict[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, brand, settings, clock=clock)
        self._terms = [q.lower() for q in settings.queries]
        if reddit is None:
            reddit = praw.Reddit(
                client_id=settings.client_id,
                client_secret=settings.client_secret.get_secret_value(),
                user_agent=settings.user_agent,
                oauth_url=settings.oauth_url.rstrip("/"),
                reddit_url=settings.reddit_url.rstrip("/"),
                check_for_updates=False,
                timeout=max(1, math.ceil(settings.timeout_s)),
                requestor_kwargs=requestor_kwargs,
            )
            reddit.read_only = True
            # The runner owns waiting: no prawcore retries, no sleeping until a rate-limit reset.
            cores: list[Any] = [reddit._core, reddit._read_only_core]
            for core in {id(c): c for c in cores if c is not None}.values():
                core._retry_strategy_class = _NoRetry
                core._rate_limiter = _RaiseWhenUsedUp(name, core._rate_limiter.window_size)
        self._reddit = reddit

    def _streams(self) -> list[str]:
        s = self.settings
        streams = []
        for query in s.queries:
            if s.subreddits:
                streams.append(f"search:{query}")
            if s.site_wide:
                streams.append(f"all:{query}")
        if s.subreddits and s.comments:
            streams.append("comments")
        return streams

    def check(self) -> list[str]:
        """Problems with the configuration or the app credentials, as readable strings."""
        streams = self._streams()
        if not streams:
            return ["nothing to fetch: set subreddits or site_wide"]
        bad = [s for s in self.settings.subreddits if not re.fullmatch(r"[A-Za-z0-9_]{2,21}", s)]
        if bad:
            return [f"not subreddit names: {', '.join(bad)}"]
        try:
            with _PrawErrors(self.name):
                for _ in self._listing(streams[0], limit=1):
                    break
        except SourceError as exc:
            return [problem(self.name, exc)]
        return []

    def _listing(self, stream: str, limit: int) -> Iterator[Any]:
        subs = "+".join(self.settings.subreddits)
        kind, _, query = stream.partition(":")
        if kind == "comments":
            return iter(self._reddit.subreddit(subs).comments(limit=limit))
        where = "all" if kind == "all" else subs
        return iter(
            self._reddit.subreddit(where).search(
                query, sort="new", time_filter="all", syntax="lucene", limit=limit
            )
        )

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Submissions and comments newer than ``cursor``, oldest first; the cursor never ends."""
        state = CursorState.loads(cursor, self.name)
        fetched_at = self.clock.now()
        found: list[tuple[int, Mention]] = []
        with _PrawErrors(self.name):
            for stream in self._streams():
                mark = state.mark(stream)
                items = self._listing(stream, limit=page_budget(self.settings, mark) * PAGE)
                mark.accept(self._walk(items, mark, stream == "comments", fetched_at), found)
        return state.answer(found)

    def _walk(
        self, items: Iterable[Any], mark: Mark, filter_terms: bool, fetched_at: datetime
    ) -> list[tuple[int, str, Mention]]:
        pending = []
        for thing in items:
            item = self._mention(thing, fetched_at)
            if item is None:
                continue
            if mark.is_older(item[0]):
                break  # newest first: everything after this was seen before
            if not mark.is_new(item[0], item[1]):
                continue
            if filter_terms and not any(term in item[2].text.lower() for term in self._terms):
                continue
            pending.append(item)
        return pending

    def _mention(self, thing: Any, fetched_at: datetime) -> tuple[int, str, Mention] | None:
        # Read the listing data praw stored; attribute access on a lazy object would fetch it.
        data = dict(vars(thing))
        try:
            fullname = str(data["name"])
            created = float(data["created_utc"])
            is_comment = fullname.startswith("t1_")
            if is_comment:
                text = str(data["body"])
            else:
                title, body = str(data["title"]), str(data.get("selftext") or "")
                text = f"{title}\n\n{body}" if body else title
            handle = data.get("author_fullname") or str(data["author"])
            mention = Mention(
                id=f"reddit:{fullname}",
                source=SOURCE,
                kind=MentionKind.COMMENT if is_comment else MentionKind.POST,
                brand=self.brand,
                text=text,
                author=opaque_author(
                    SOURCE, str(handle), self.settings.author_salt.get_secret_value()
                ),
                url=f"https://www.reddit.com{data['permalink']}",
                created_at=datetime.fromtimestamp(created, UTC),
                fetched_at=fetched_at,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            self.skip(f"{self.name}: {data.get('name', '?')}: {reason(exc)}")
            return None
        return int(created), fullname, mention


class _PrawErrors:
    """Context manager turning praw/prawcore exceptions into ``connectors.base`` errors."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, SourceError):
            return
        name = self.name
        if isinstance(exc, prawcore.exceptions.ResponseException):
            status = exc.response.status_code
            where = f"{name}: HTTP {status} from Reddit"
            if status == 429:
                wait = retry_after_seconds(dict(exc.response.headers))
                raise RateLimited(f"{where} (rate limited)", wait) from None
            if status >= 500:
                raise TransientError(f"{where} (server error)") from None
            if status in (401, 403):
                raise AuthError(f"{where} (credentials refused)") from None
            raise SourceError(f"{where} (request refused)") from None
        if isinstance(exc, prawcore.exceptions.OAuthException):
            raise AuthError(f"{name}: Reddit refused the app credentials ({exc.error})") from None
        if isinstance(exc, prawcore.exceptions.RequestException):
            cause = type(exc.original_exception).__name__
            raise TransientError(f"{name}: request to Reddit failed ({cause})") from None
        if isinstance(exc, praw.exceptions.PRAWException):
            raise SourceError(f"{name}: {type(exc).__name__}") from None
