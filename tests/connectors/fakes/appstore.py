"""Fake App Store customer-reviews RSS feed (JSON), as served by itunes.apple.com."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from connectors.appstore import AppStoreSettings, AppStoreSource
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request

APP_ID = 284882215
PATH = re.compile(
    r"^/(?P<country>[a-z]{2})/rss/customerreviews/page=(?P<page>\d+)/id=(?P<app>\d+)"
    r"/sortby=mostrecent/json$"
)
PACIFIC = timezone(timedelta(hours=-7))


class FakeAppStoreFeed(FakeAPI):
    """Reviews per country, newest first, ``page_size`` per page, at most 10 pages like Apple."""

    def __init__(self, page_size: int = 50) -> None:
        super().__init__()
        self.page_size = page_size
        self.reviews: dict[str, list[dict[str, Any]]] = {}

    def route(self, request: Request) -> Reply:
        m = PATH.match(request.path)
        if not m:
            return Reply(404, raw=b"<html>Not Found</html>", headers={"Content-Type": "text/html"})
        if self.reject_auth:
            return Reply(403, raw=b"<html>Forbidden</html>", headers={"Content-Type": "text/html"})
        page = int(m.group("page"))
        if page < 1 or page > 10:
            return Reply(400, {"error": "page out of range"})
        entries = sorted(
            self.reviews.get(m.group("country"), []),
            key=lambda e: e["updated"]["label"] if isinstance(e.get("updated"), dict) else "",
            reverse=True,
        )
        chunk = entries[(page - 1) * self.page_size : page * self.page_size]
        base = f"https://itunes.apple.com/{m.group('country')}/rss/customerreviews"
        feed: dict[str, Any] = {
            "author": {
                "name": {"label": "iTunes Store"},
                "uri": {"label": "http://www.apple.com/itunes/"},
            },
            "updated": {"label": "2023-11-14T15:13:20-07:00"},
            "rights": {"label": "Copyright 2008 Apple Inc."},
            "title": {"label": "iTunes Store: Customer Reviews"},
            "icon": {"label": "http://itunes.apple.com/favicon.ico"},
            "link": [
                {"attributes": {"rel": "alternate", "type": "text/html", "href": base}},
                {"attributes": {"rel": "next", "href": f"{base}/page={page + 1}/id={APP_ID}"}},
            ],
            "id": {"label": f"{base}/page={page}/id={APP_ID}/sortby=mostrecent/json"},
        }
        if chunk:
            feed["entry"] = chunk[0] if len(chunk) == 1 else chunk
        return Reply(200, {"feed": feed})


def review(review_id: int, t: int, rating: int, title: str, body: str, user: str) -> dict[str, Any]:
    updated = datetime.fromtimestamp(t, UTC).astimezone(PACIFIC).isoformat()
    return {
        "author": {
            "uri": {"label": f"https://itunes.apple.com/us/reviews/id{abs(hash(user)) % 10**9}"},
            "name": {"label": user},
            "label": "",
        },
        "updated": {"label": updated},
        "im:rating": {"label": str(rating)},
        "im:version": {"label": "4.12.1"},
        "id": {"label": str(review_id)},
        "title": {"label": title},
        "content": {"label": body, "attributes": {"type": "text"}},
        "link": {
            "attributes": {
                "rel": "related",
                "href": f"https://itunes.apple.com/us/review?id={APP_ID}&type=Purple%20Software",
            }
        },
        "im:voteSum": {"label": "0"},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "im:voteCount": {"label": "0"},
    }


class AppStoreHarness(Harness):
    kind = "appstore"
    listing = "/rss/customerreviews/"

    def make_fake(self) -> FakeAppStoreFeed:
        return FakeAppStoreFeed(page_size=4)

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        assert isinstance(self.fake, FakeAppStoreFeed)
        ids = []
        for _ in range(n):
            t = self.next_time(same_second)
            rid = 10_000_000_000 + self.n
            self.fake.reviews.setdefault("us", []).append(
                review(rid, t, 1 + self.n % 5, f"Review {self.n}", "The app crashes a lot", "kim")
            )
            ids.append(f"appstore:us:{rid}")
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeAppStoreFeed)
        t = self.next_time(False)
        bad = review(10_000_000_000 + self.n, t, 9, "Bad", "rating out of range", "kim")
        self.fake.reviews.setdefault("us", []).append(bad)

    def source(self, **overrides: Any) -> AppStoreSource:
        settings = {
            "app_id": APP_ID,
            "countries": ["us"],
            "base_url": self.fake.base_url,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return AppStoreSource("appstore-acme", "acme", AppStoreSettings.model_validate(settings))
