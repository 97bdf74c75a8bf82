"""Fake Bluesky Jetstream: a local WebSocket server replaying events from ``cursor`` (time_us)."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.sync.server import Server, ServerConnection, serve

from connectors.bluesky import BlueskyJetstreamSource, JetstreamSettings
from tests.connectors.fakes.base import FakeAPI, Harness, Reply, Request

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


class FakeJetstream(FakeAPI):
    """Events are kept in time order; a connection gets those at or after its ``cursor``."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.raw: list[tuple[int, str]] = []  # (time_us, message) sent as they are (malformed)
        self._ws: Server | None = None

    @property
    def base_url(self) -> str:
        assert self._ws is not None
        host, port = self._ws.socket.getsockname()[:2]
        return f"ws://{host}:{port}/subscribe"

    def start(self) -> FakeJetstream:
        def process_request(connection: ServerConnection, request: WsRequest) -> WsResponse | None:
            parts = urlsplit(request.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in request.headers.raw_items()}
            reply = self.dispatch(Request("GET", parts.path, query, headers))
            if reply.status == 101:
                return None
            response = connection.respond(HTTPStatus(reply.status), json.dumps(reply.body))
            response.headers = Headers({**dict(response.headers.raw_items()), **reply.headers})
            return response

        self._ws = serve(self._handler, "127.0.0.1", 0, process_request=process_request)
        threading.Thread(target=self._ws.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._ws is not None:
            self._ws.shutdown()
            self._ws = None

    def route(self, request: Request) -> Reply:
        if request.path != "/subscribe":
            return Reply(404, {"error": "not found"})
        if self.reject_auth:
            return Reply(403, {"error": "forbidden"})
        return Reply(101)

    def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][-1]) if "cursor" in query else 0
        wanted = set(query.get("wantedCollections", []))
        with self.lock:
            messages = sorted(
                [(e["time_us"], json.dumps(e)) for e in self.events if _wanted(e, wanted)]
                + self.raw,
                key=lambda pair: pair[0],
            )
        try:
            for t, message in messages:
                if t >= cursor:
                    ws.send(message)
            ws.recv()  # stay open (live stream) until the client leaves
        except ConnectionClosed:
            pass


def _wanted(event: dict[str, Any], wanted: set[str]) -> bool:
    commit = event.get("commit")
    return not wanted or not isinstance(commit, dict) or commit.get("collection") in wanted


def post_event(n: int, time_us: int, text: str, reply: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "createdAt": "2024-09-09T19:46:02.102Z",
        "langs": ["en"],
        "text": text,
    }
    if reply:
        parent = {"cid": "bafyreiparent", "uri": f"at://{DID}/app.bsky.feed.post/3lparent"}
        record["reply"] = {"parent": parent, "root": parent}
    return {
        "did": DID,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3l3qo2vutsw{n:04d}",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": f"3l3qo2vuowo{n:04d}",
            "record": record,
            "cid": f"bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi{n}",
        },
    }


class JetstreamHarness(Harness):
    kind = "bluesky"
    listing = "/subscribe"

    def make_fake(self) -> FakeJetstream:
        return FakeJetstream()

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        assert isinstance(self.fake, FakeJetstream)
        ids = []
        for _ in range(n):
            t = self.next_time(same_second) * 1_000_000
            # Other traffic the stream carries: identity events and posts about something else.
            self.fake.events.append({"did": DID, "time_us": t, "kind": "identity", "identity": {}})
            other = post_event(5000 + self.n, t, "nice weather today")
            self.fake.events.append(other)
            e = post_event(self.n, t, f"Acme cancelled my order {self.n}", reply=self.n % 2 == 0)
            self.fake.events.append(e)
            ids.append(f"bluesky:at://{DID}/app.bsky.feed.post/{e['commit']['rkey']}")
        return ids

    def add_malformed(self) -> None:
        assert isinstance(self.fake, FakeJetstream)
        t = self.next_time(False) * 1_000_000
        bad = post_event(self.n, t, "acme but no date")
        del bad["commit"]["record"]["createdAt"]
        self.fake.events.append(bad)
        self.fake.raw.append((t, "{not json"))

    def source(self, **overrides: Any) -> BlueskyJetstreamSource:
        settings = {
            "terms": ["acme"],
            "url": self.fake.base_url,
            "max_events": 12,
            "idle_s": 0.15,
            "max_seconds": 5,
            "timeout_s": 5,
            "author_salt": "pepper",
            **overrides,
        }
        return BlueskyJetstreamSource(
            "jetstream-acme", "acme", JetstreamSettings.model_validate(settings)
        )
