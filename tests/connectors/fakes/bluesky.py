"""Fake Bluesky service: createSession and app.bsky.feed.searchPosts (sort=latest, cursor)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.bluesky import BlueskySettings, BlueskySource
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request

HANDLE = "acme-listener.bsky.social"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
DID = "did:plc:z72i7hdynmk6r22z27h6tvur"


class FakeBluesky(FakeAPI):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.sessions = 0
        self.valid_tokens: set[str] = set()

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def route(self, request: Request) -> Reply:
        if request.path == "/xrpc/com.atproto.server.createSession" and request.method == "POST":
            body = request.json() or {}
            if self.reject_auth or body != {"identifier": HANDLE, "password": APP_PASSWORD}:
                return Reply(
                    401,
                    {
                        "error": "AuthenticationRequired",
                        "message": "Invalid identifier or password",
                    },
                )
            self.sessions += 1
            token = f"eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NksifQ.session{self.sessions}"
            self.valid_tokens.add(token)
            return Reply(
                200,
                {
                    "accessJwt": token,
                    "refreshJwt": f"refresh{self.sessions}",
                    "handle": HANDLE,
                    "did": "did:plc:listener",
                    "active": True,
                },
            )
        if request.path == "/xrpc/app.bsky.feed.searchPosts":
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer "):
                return Reply(401, {"error": "AuthMissing", "message": "Authentication Required"})
            if auth[7:] not in self.valid_tokens:
                return Reply(400, {"error": "ExpiredToken", "message": "Token has expired"})
            q = request.query.get("q", "").lower()
            limit = min(int(request.query.get("limit", 25)), 100)
            offset = int(request.query.get("cursor", "0"))
            hits = sorted(
                (p for p in self.posts if q in str(p.get("record", {}).get("text", "")).lower()),
                key=lambda p: str(p.get("indexedAt", "")),
                reverse=True,
            )
            chunk = hits[offset : offset + limit]
            body: dict[str, Any] = {"posts": chunk, "hitsTotal": len(hits)}
            if offset + limit < len(hits):
                body["cursor"] = str(offset + limit)
            return Reply(200, body)
        return Reply(404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"})


def post(n: int, t: int, text: str, reply: bool = False) -> dict[str, Any]:
    when = datetime.fromtimestamp(t, UTC)
    rkey = f"3kq{n:010d}"
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "langs": ["en"],
    }
    if reply:
        parent = {"uri": f"at://{DID}/app.bsky.feed.post/3kparent", "cid": "bafyparent"}
        record["reply"] = {"root": parent, "parent": parent}
    return {
        "uri": f"at://{DID}/app.bsky.feed.post/{rkey}",
        "cid": f"bafyreib{n:08d}",
        "author": {"did": DID, "handle": "kim.bsky.social", "displayName": "Kim", "labels": []},
        "record": record,
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 1,
        "quoteCount": 0,
        "indexedAt": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "labels": [],
    }


class BlueskyHarness(Harness):
    kind = "bluesky"
    secret = APP_PASSWORD
    listing = "searchPosts"

    def make_fake(self) -> FakeBluesky:
        return FakeBluesky()

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        assert isinstance(self.fake, FakeBluesky)
        ids = []
        for _ in range(n):
            p = post(self.n + 1, self.next_time(same_second), f"acme lost my bag {self.n}")
            p["record"]["text"] = f"acme lost my bag {self.n}"
            if self.n % 3 == 0:
                p["record"]["reply"] = {"root": {"uri": "at://x/y/z"}, "parent": {"uri": "at://x"}}
            self.fake.posts.append(p)
            ids.append(f"bluesky:{p['uri']}")
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeBluesky)
        p = post(self.n + 1, self.next_time(False), "acme post without a date")
        self.n += 1
        del p["record"]["createdAt"]
        self.fake.posts.append(p)

    def source(self, **overrides: Any) -> BlueskySource:
        settings = {
            "queries": ["acme"],
            "identifier": HANDLE,
            "app_password": APP_PASSWORD,
            "base_url": self.fake.base_url,
            "limit": 4,
            "max_pages": 50,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return BlueskySource("bluesky-acme", "acme", BlueskySettings.model_validate(settings))
