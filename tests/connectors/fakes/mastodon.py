"""Fake Mastodon instance: hashtag timelines and v2 search, with id-window paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from connectors.mastodon import MastodonSettings, MastodonSource
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request

TOKEN = "mastodon-token-s3cr3t-9f8e7d"


class FakeMastodon(FakeAPI):
    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[dict[str, Any]] = []
        self.rate_headers: dict[str, str] = {}

    def route(self, request: Request) -> Reply:
        auth = request.headers.get("authorization")
        if auth is not None and (self.reject_auth or auth != f"Bearer {TOKEN}"):
            return Reply(401, {"error": "The access token is invalid"})
        if request.path == "/api/v1/apps/verify_credentials":
            if auth is None:
                return Reply(401, {"error": "The access token is invalid"})
            return Reply(200, {"name": "listenwell", "website": None, "vapid_key": "BCk-QqER"})
        if request.path.startswith("/api/v1/timelines/tag/"):
            tag = unquote(request.path.rsplit("/", 1)[1]).lower()
            pool = [
                s for s in self.statuses if any(t.get("name") == tag for t in s.get("tags", []))
            ]
            page, headers = self._window(pool, request)
            return Reply(200, page, headers)
        if request.path == "/api/v2/search":
            if request.query.get("type") != "statuses":
                return Reply(400, {"error": "type must be statuses"})
            q = request.query.get("q", "").lower()
            pool = [s for s in self.statuses if q in str(s.get("content", "")).lower()]
            page, _ = self._window(pool, request)
            return Reply(200, {"accounts": [], "statuses": page, "hashtags": []}, self.rate_headers)
        return Reply(404, {"error": "Record not found"})

    def _window(
        self, pool: list[dict[str, Any]], request: Request
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        q = request.query
        limit = min(int(q.get("limit", 20)), 40)
        ordered = sorted(pool, key=lambda s: int(s["id"]))
        if "max_id" in q:
            ordered = [s for s in ordered if int(s["id"]) < int(q["max_id"])]
        if "since_id" in q:
            ordered = [s for s in ordered if int(s["id"]) > int(q["since_id"])]
        if "min_id" in q:
            ordered = [s for s in ordered if int(s["id"]) > int(q["min_id"])][:limit]
        else:
            ordered = ordered[-limit:]
        page = list(reversed(ordered))
        headers = dict(self.rate_headers)
        if page:
            base = f"http://{request.headers.get('host')}{request.path}"
            headers["Link"] = (
                f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                f'<{base}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return page, headers


def status(n: int, t: int, html: str, tag: str = "acme", reply: bool = False) -> dict[str, Any]:
    sid = str(((t * 1000) << 16) + n)
    return {
        "id": sid,
        "created_at": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "in_reply_to_id": "109" if reply else None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"https://social.example/users/kim/statuses/{sid}",
        "url": f"https://social.example/@kim/{sid}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "content": html,
        "reblog": None,
        "account": {
            "id": "14715",
            "username": "kim",
            "acct": "kim",
            "display_name": "Kim",
            "url": "https://social.example/@kim",
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": tag, "url": f"https://social.example/tags/{tag}"}],
        "emojis": [],
        "card": None,
        "poll": None,
    }


class MastodonHarness(Harness):
    kind = "mastodon"
    secret = TOKEN
    listing = "/api/"

    def make_fake(self) -> FakeMastodon:
        return FakeMastodon()

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        assert isinstance(self.fake, FakeMastodon)
        host = self.fake.base_url.split("//", 1)[1]
        ids = []
        for _ in range(n):
            t = self.next_time(same_second)
            s = status(
                self.n, t, f"<p>Acme support &amp; me {self.n}<br>again</p>", reply=self.n % 2 == 0
            )
            self.fake.statuses.append(s)
            ids.append(f"mastodon:{host}:{s['id']}")
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeMastodon)
        bad = status(self.n, self.next_time(False), "<p>acme without a date</p>")
        del bad["created_at"]
        self.fake.statuses.append(bad)

    def source(self, **overrides: Any) -> MastodonSource:
        settings = {
            "base_url": self.fake.base_url,
            "hashtags": ["acme"],
            "queries": ["acme"],
            "access_token": TOKEN,
            "limit": 4,
            "max_pages": 50,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return MastodonSource("mastodon-acme", "acme", MastodonSettings.model_validate(settings))
