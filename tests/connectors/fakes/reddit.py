"""Fake Reddit: app-only OAuth token endpoint and the Listing endpoints praw calls."""

from __future__ import annotations

import base64
from typing import Any

from connectors.reddit import RedditSettings, RedditSource
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request

CLIENT_ID = "p-jcoLKBynTLew"
CLIENT_SECRET = "gko_LXELoV07ZBNUXrvWZfzE3aI"
TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6IlNIQTI1NjpzS3dsMnlsV0VtMjVmcXhwTU40cWY4MXE2OWFF"


class FakeReddit(FakeAPI):
    def __init__(self, page_size: int = 100) -> None:
        super().__init__()
        self.page_size = page_size
        self.things: list[dict[str, Any]] = []  # {"kind": "t3"|"t1", "data": {...}}
        self.rate_headers: dict[str, str] = {}  # x-ratelimit-used/remaining/reset

    def route(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if path == "/api/v1/access_token" and request.method == "POST":
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.reject_auth or request.headers.get("authorization") != f"Basic {expected}":
                return Reply(401, {"message": "Unauthorized", "error": 401})
            if request.form().get("grant_type") != "client_credentials":
                return Reply(200, {"error": "unsupported_grant_type"})
            return Reply(
                200,
                {"access_token": TOKEN, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
            )
        if request.headers.get("authorization") != f"bearer {TOKEN}":
            return Reply(401, {"message": "Unauthorized", "error": 401})
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "r" and parts[2] in ("search", "comments"):
            subs = {s.lower() for s in parts[1].split("+")}
            kind = "t3" if parts[2] == "search" else "t1"
            q = request.query.get("q", "").lower()
            if kind == "t3" and (request.query.get("sort") != "new" or not q):
                return Reply(400, {"message": "Bad Request", "error": 400})

            def keep(thing: dict[str, Any]) -> bool:
                d = thing["data"]
                if thing["kind"] != kind:
                    return False
                if "all" not in subs and str(d.get("subreddit", "")).lower() not in subs:
                    return False
                text = f"{d.get('title', '')} {d.get('selftext', '')}".lower()
                return kind == "t1" or q in text

            listing = self._listing([t for t in self.things if keep(t)], request)
            return Reply(200, listing, dict(self.rate_headers))
        return Reply(404, {"message": "Not Found", "error": 404})

    def _listing(self, things: list[dict[str, Any]], request: Request) -> dict[str, Any]:
        ordered = sorted(
            things,
            key=lambda t: (t["data"].get("created_utc") or 0, t["data"]["name"]),
            reverse=True,
        )
        start = 0
        after = request.query.get("after")
        if after:
            names = [t["data"]["name"] for t in ordered]
            start = names.index(after) + 1 if after in names else len(ordered)
        limit = min(int(request.query.get("limit", 25)), 100, self.page_size)
        chunk = ordered[start : start + limit]
        more = start + limit < len(ordered)
        return {
            "kind": "Listing",
            "data": {
                "after": chunk[-1]["data"]["name"] if chunk and more else None,
                "dist": len(chunk),
                "modhash": "",
                "geo_filter": "",
                "children": chunk,
                "before": None,
            },
        }


def submission(n: int, t: int, title: str, selftext: str = "", sub: str = "acme") -> dict[str, Any]:
    sid = f"17x{n:04d}"
    return {
        "kind": "t3",
        "data": {
            "subreddit": sub,
            "selftext": selftext,
            "author_fullname": "t2_8k2j1x",
            "title": title,
            "subreddit_name_prefixed": f"r/{sub}",
            "name": f"t3_{sid}",
            "id": sid,
            "score": 3,
            "subreddit_id": "t5_2qh1i",
            "author": "kim_the_customer",
            "num_comments": 0,
            "permalink": f"/r/{sub}/comments/{sid}/post/",
            "url": f"https://www.reddit.com/r/{sub}/comments/{sid}/post/",
            "created_utc": float(t),
            "over_18": False,
            "is_self": True,
        },
    }


def comment(n: int, t: int, body: str, sub: str = "acme") -> dict[str, Any]:
    cid = f"k9c{n:04d}"
    return {
        "kind": "t1",
        "data": {
            "subreddit": sub,
            "link_id": "t3_17x0001",
            "author": "kim_the_customer",
            "author_fullname": "t2_8k2j1x",
            "body": body,
            "body_html": f'&lt;div class="md"&gt;&lt;p&gt;{body}&lt;/p&gt;&lt;/div&gt;',
            "id": cid,
            "name": f"t1_{cid}",
            "parent_id": "t3_17x0001",
            "permalink": f"/r/{sub}/comments/17x0001/post/{cid}/",
            "created_utc": float(t),
            "score": 1,
            "link_title": "post",
            "subreddit_id": "t5_2qh1i",
        },
    }


class RedditHarness(Harness):
    kind = "reddit"
    secret = CLIENT_SECRET
    listing = "/r/"

    def make_fake(self) -> FakeReddit:
        return FakeReddit(page_size=4)

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        assert isinstance(self.fake, FakeReddit)
        ids = []
        for _ in range(n):
            t = self.next_time(same_second)
            if self.n % 2:
                thing = submission(self.n, t, f"Acme lost my luggage {self.n}", "again")
            else:
                thing = comment(self.n, t, f"acme support was slow {self.n}")
            self.fake.things.append(thing)
            ids.append(f"reddit:{thing['data']['name']}")
        # A comment in the same subreddit that does not mention the brand is never returned.
        self.fake.things.append(comment(9000 + self.n, self.t, "unrelated chatter"))
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeReddit)
        t = self.next_time(False)
        bad = submission(self.n, t, "Acme post without a time")
        del bad["data"]["created_utc"]
        self.fake.things.append(bad)

    def source(self, **overrides: Any) -> RedditSource:
        settings = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "user_agent": "listenwell-tests/0.1 by listenwell",
            "queries": ["acme"],
            "subreddits": ["acme"],
            "site_wide": True,
            "comments": True,
            "oauth_url": self.fake.base_url,
            "reddit_url": self.fake.base_url,
            "max_pages": 50,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return RedditSource("reddit-acme", "acme", RedditSettings.model_validate(settings))
