"""App Store customer reviews from Apple's public RSS feed (JSON), per app and country.

``GET {base_url}/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json``
returns ``feed.entry[]`` newest first (50 per page, at most 10 pages): ``id.label``,
``updated.label``, ``im:rating.label``, ``title.label``, ``content.label``, ``author.name.label``,
``author.uri.label``. One stream per country; the cursor keeps, per country, the newest
``updated`` second and the review ids seen at it (see :mod:`connectors.paging`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import Field

from connectors.http import get_json, opaque_author, parse_time
from connectors.paging import CursorState, page_budget
from connectors.remote import HttpSource, HttpSourceSettings, problem, reason
from streams.records import Mention, MentionKind

log = logging.getLogger(__name__)

SOURCE = "appstore"


class AppStoreSettings(HttpSourceSettings):
    """Settings of an ``appstore`` source instance."""

    app_id: int = Field(gt=0, description="numeric App Store id of the app (…/app/id<app_id>)")
    countries: list[str] = Field(
        default=["us"], min_length=1, description="two-letter storefront country codes"
    )
    max_pages: int = Field(
        default=10, ge=1, le=10, description="feed pages per country on the first fetch (≤ 10)"
    )
    base_url: str = Field(default="https://itunes.apple.com", description="feed base URL")


class AppStoreSource(HttpSource[AppStoreSettings]):
    """A live ``Source`` over the App Store customer-reviews feed (kind ``review``, rating 1–5)."""

    kind = SOURCE
    settings_model = AppStoreSettings

    def check(self) -> list[str]:
        """Problems reading the first feed page of each country, as readable strings."""
        problems = []
        for country in self.settings.countries:
            if len(country) != 2 or not country.isalpha():
                problems.append(f"country {country!r} is not a two-letter code")
                continue
            try:
                self._page(country, 1)
            except Exception as exc:  # every failure is a problem to report, not a crash
                problems.append(problem(self.name, exc))
        return problems

    def _page(self, country: str, page: int) -> list[Any]:
        path = (
            f"/{country.lower()}/rss/customerreviews/page={page}"
            f"/id={self.settings.app_id}/sortby=mostrecent/json"
        )
        body, _ = get_json(self._client, path, self.name)
        feed = body.get("feed") if isinstance(body, dict) else None
        if not isinstance(feed, dict):
            raise ValueError("answer has no feed object")
        entries = feed.get("entry", [])
        # A feed with a single review gives an object instead of a list.
        return [entries] if isinstance(entries, dict) else list(entries or [])

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Reviews newer than ``cursor``, oldest first; the cursor never ends."""
        state = CursorState.loads(cursor, self.name)
        fetched_at = self.clock.now()
        found: list[tuple[int, Mention]] = []
        for country in self.settings.countries:
            country = country.lower()
            mark = state.mark(country)
            pending: list[tuple[int, str, Mention]] = []
            # Apple serves at most 10 pages: a resumed walk may read them all to reach its cursor.
            for page in range(1, min(page_budget(self.settings, mark), 10) + 1):
                entries = self._page(country, page)
                reviews = (self._mention(country, entry, fetched_at) for entry in entries)
                reached_mark = mark.collect(reviews, pending)
                if reached_mark or not entries:
                    break
            mark.accept(pending, found)
        return state.answer(found)

    def _mention(
        self, country: str, entry: Any, fetched_at: datetime
    ) -> tuple[int, str, Mention] | None:
        if isinstance(entry, dict) and "im:name" in entry and "im:rating" not in entry:
            return None  # the app's own description, first entry of older feeds
        try:
            review_id = str(entry["id"]["label"])
            created = parse_time(str(entry["updated"]["label"]))
            title = str(entry.get("title", {}).get("label") or "").strip()
            body = str(entry["content"]["label"]).strip()
            author = entry["author"]
            handle = str((author.get("uri") or {}).get("label") or author["name"]["label"])
            text = f"{title}\n\n{body}" if title else body
            mention = Mention(
                id=f"appstore:{country}:{review_id}",
                source=SOURCE,
                kind=MentionKind.REVIEW,
                brand=self.brand,
                text=text,
                author=opaque_author(SOURCE, handle, self.settings.author_salt.get_secret_value()),
                url=f"https://apps.apple.com/{country}/app/id{self.settings.app_id}?see-all=reviews",
                created_at=created,
                fetched_at=fetched_at,
                rating=int(entry["im:rating"]["label"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            ident = "?"
            if isinstance(entry, dict) and isinstance(entry.get("id"), dict):
                ident = str(entry["id"].get("label", "?"))
            self.skip(f"{self.name}: {country} review {ident}: {reason(exc)}")
            return None
        return int(created.timestamp()), review_id, mention
