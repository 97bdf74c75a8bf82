"""Fake Algolia HN Search API (https://hn.algolia.com/api): ``/api/v1/search_by_date``."""

from __future__ import annotations

import math
import re
from typing import Any

from connectors.hackernews import HackerNewsSettings, HackerNewsSource
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request


class FakeAlgoliaHN(FakeAPI):
    def __init__(self) -> None:
        super().__init__()
        self.hits: list[dict[str, Any]] = []

    def route(self, request: Request) -> Reply:
        if request.path != "/api/v1/search_by_date":
            return Reply(404, {"message": "Not Found", "status": 404})
        if self.reject_auth:
            return Reply(403, {"message": "Invalid Application-ID or API key", "status": 403})
        q = request.query
        query = q.get("query", "").lower()
        tags = q.get("tags", "(story,comment)").strip("()").split(",")
        since, strict = 0, False
        if m := re.fullmatch(r"created_at_i(>=|>)(\d+)", q.get("numericFilters", "")):
            since, strict = int(m.group(2)), m.group(1) == ">"
        per_page = min(int(q.get("hitsPerPage", 20)), 1000)
        page = int(q.get("page", 0))

        def matches(hit: dict[str, Any]) -> bool:
            text = " ".join(
                str(hit.get(k) or "") for k in ("title", "story_text", "comment_text")
            ).lower()
            t = hit.get("created_at_i")
            if isinstance(t, int) and (t <= since if strict else t < since):
                return False
            return query in text and any(tag in hit.get("_tags", []) for tag in tags)

        selected = sorted(
            (h for h in self.hits if matches(h)),
            key=lambda h: (h.get("created_at_i") or 0, str(h.get("objectID"))),
            reverse=True,
        )
        pages = math.ceil(len(selected) / per_page)
        return Reply(
            200,
            {
                "hits": selected[page * per_page : (page + 1) * per_page],
                "nbHits": len(selected),
                "page": page,
                "nbPages": pages,
                "hitsPerPage": per_page,
                "exhaustiveNbHits": True,
                "query": query,
                "params": "",
                "processingTimeMS": 1,
            },
        )


def story(object_id: int, t: int, title: str, author: str = "pg") -> dict[str, Any]:
    return {
        "created_at": "2023-11-14T22:13:20.000Z",
        "title": title,
        "url": "https://example.com/post",
        "author": author,
        "points": 12,
        "story_text": None,
        "comment_text": None,
        "num_comments": 3,
        "story_id": None,
        "story_title": None,
        "parent_id": None,
        "created_at_i": t,
        "_tags": ["story", f"author_{author}", f"story_{object_id}"],
        "objectID": str(object_id),
    }


def comment(object_id: int, t: int, html: str, author: str = "dang") -> dict[str, Any]:
    return {
        "created_at": "2023-11-14T22:13:20.000Z",
        "title": None,
        "url": None,
        "author": author,
        "points": None,
        "story_text": None,
        "comment_text": html,
        "story_id": 1,
        "story_title": "Ask HN: Acme?",
        "parent_id": 1,
        "created_at_i": t,
        "_tags": ["comment", f"author_{author}", "story_1"],
        "objectID": str(object_id),
    }


class HackerNewsHarness(Harness):
    kind = "hackernews"
    listing = "/search_by_date"

    def make_fake(self) -> FakeAlgoliaHN:
        return FakeAlgoliaHN()

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        ids = []
        assert isinstance(self.fake, FakeAlgoliaHN)
        for _ in range(n):
            t = self.next_time(same_second)
            oid = 38000000 + self.n
            if self.n % 2:
                self.fake.hits.append(story(oid, t, f"Acme launches thing number {self.n}"))
            else:
                self.fake.hits.append(comment(oid, t, f"<p>I think Acme is fine {self.n}</p>"))
            ids.append(f"hn:{oid}")
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeAlgoliaHN)
        t = self.next_time(False)
        bad = story(39000000 + self.n, t, "Acme broken item")
        del bad["author"]
        self.fake.hits.append(bad)

    def source(self, **overrides: Any) -> HackerNewsSource:
        settings = {
            "queries": ["acme"],
            "hits_per_page": 4,
            "max_pages": 50,
            "base_url": self.fake.base_url,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return HackerNewsSource("hn-acme", "acme", HackerNewsSettings.model_validate(settings))
