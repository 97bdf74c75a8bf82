"""Hacker News stories and comments from the Algolia HN Search API, newest first.

``GET {base_url}/api/v1/search_by_date?query=<q>&tags=(story,comment)
&numericFilters=created_at_i>=<t>&hitsPerPage=<n>&page=<p>`` returns ``hits`` newest first with
``nbPages`` pages. One stream per query; the cursor keeps, per query, the newest ``created_at_i``
seen and the ``objectID``\\ s seen at that second (see :mod:`connectors.paging`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from connectors.http import get_json, html_to_text, opaque_author
from connectors.paging import CursorState, page_budget
from connectors.remote import HttpSource, HttpSourceSettings, problem, reason
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "hackernews"


class HackerNewsSettings(HttpSourceSettings):
    """Settings of a ``hackernews`` source instance."""

    queries: list[str] = Field(min_length=1, description="full-text queries (brand, products)")
    tags: str = Field(default="(story,comment)", description="Algolia tags filter")
    hits_per_page: int = Field(default=100, ge=1, le=1000, description="hits per API page")
    base_url: str = Field(default="https://hn.algolia.com", description="Algolia HN API base URL")


class HackerNewsSource(HttpSource[HackerNewsSettings]):
    """A live ``Source`` over the Algolia HN Search API (``search_by_date``)."""

    kind = SOURCE
    settings_model = HackerNewsSettings

    def check(self) -> list[str]:
        """Problems reaching the API (one small query), as readable strings."""
        try:
            self._page(self.settings.queries[0], 0, 0, hits=1)
        except Exception as exc:  # every failure is a problem to report, not a crash
            return [problem(self.name, exc)]
        return []

    def _page(self, query: str, since: int, page: int, hits: int | None = None) -> dict[str, Any]:
        params = {
            "query": query,
            "tags": self.settings.tags,
            "numericFilters": f"created_at_i>={since}",
            "hitsPerPage": hits or self.settings.hits_per_page,
            "page": page,
        }
        body, _ = get_json(self._client, "/api/v1/search_by_date", self.name, params=params)
        if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
            raise ValueError("answer has no hits list")
        return body

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Stories and comments newer than ``cursor``, oldest first; the cursor never ends."""
        state = CursorState.loads(cursor, self.name)
        fetched_at = self.clock.now()
        found: list[tuple[int, Mention]] = []
        for query in self.settings.queries:
            mark = state.mark(query)
            pending: list[tuple[int, str, Mention]] = []
            for page in range(page_budget(self.settings, mark)):
                body = self._page(query, mark.t, page)
                mark.collect((self._mention(hit, fetched_at) for hit in body["hits"]), pending)
                if page + 1 >= int(body.get("nbPages") or 0):
                    break
            else:
                log.warning(
                    "%s: %r: more than %d pages, older ones left", self.name, query, page + 1
                )
            mark.accept(pending, found)
        return state.answer(found)

    def _mention(self, hit: Any, fetched_at: datetime) -> tuple[int, str, Mention] | None:
        try:
            object_id = str(hit["objectID"])
            created = int(hit["created_at_i"])
            tags = hit.get("_tags") or []
            is_comment = "comment" in tags
            if is_comment:
                text = html_to_text(str(hit.get("comment_text") or ""))
            else:
                parts = [hit.get("title"), hit.get("story_text")]
                text = "\n\n".join(html_to_text(str(p)) for p in parts if p)
            if not text:
                raise ValueError("no text")
            mention = Mention(
                id=f"hn:{object_id}",
                source=SOURCE,
                kind=MentionKind.COMMENT if is_comment else MentionKind.POST,
                brand=self.brand,
                text=text,
                author=opaque_author(
                    SOURCE, str(hit["author"]), self.settings.author_salt.get_secret_value()
                ),
                url=f"https://news.ycombinator.com/item?id={object_id}",
                created_at=datetime.fromtimestamp(created, UTC),
                fetched_at=fetched_at,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            ident = hit.get("objectID", "?") if isinstance(hit, dict) else "?"
            self.skip(f"{self.name}: hit {ident}: {reason(exc)}")
            return None
        return created, object_id, mention
