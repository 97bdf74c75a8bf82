"""A small threaded HTTP server with failure injection, the base of every fake API."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


class FakeAPI:
    """Subclasses implement ``route(request) -> Reply``; failures are injected ahead of it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.failures: deque[Reply] = deque()
        self.requests: list[Request] = []
        self.reject_auth = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------------------
    def fail_next(self, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next ``times`` requests get ``status`` (with ``headers``) instead of an answer."""
        for _ in range(times):
            self.failures.append(Reply(status, {"error": f"injected {status}"}, headers or {}))

    def requests_to(self, path_part: str) -> list[Request]:
        return [r for r in self.requests if path_part in r.path]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = fake.dispatch(request)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                # One request per connection: no keep-alive race between a client reusing a
                # pooled connection and the server thread that owns it.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def dispatch(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            if self.failures:
                return self.failures.popleft()
            try:
                return self.route(request)
            except Exception as exc:  # a bug in a fake shows up as a 599 the test will notice
                return Reply(599, {"error": f"fake crashed: {exc!r}"})

    def route(self, request: Request) -> Reply:
        raise NotImplementedError


class Harness:
    """What the contract suite needs from each source: its fake, items to add, a source to test.

    ``add(n)`` adds ``n`` new items matching the brand, each newer than everything before it (or,
    with ``same_second=True``, at the same timestamp as the newest item so far) and returns the
    mention ids the source must produce for them.
    """

    kind = ""
    secret: str | None = None
    listing = ""

    def __init__(self) -> None:
        self.fake = self.make_fake().start()
        self.t = 1_700_000_000
        self.n = 0

    def make_fake(self) -> FakeAPI:
        raise NotImplementedError

    def next_time(self, same_second: bool) -> int:
        if not same_second:
            self.t += 60
        self.n += 1
        return self.t

    def add(self, n: int, *, same_second: bool = False) -> list[str]:
        raise NotImplementedError

    def add_malformed(self) -> None:
        raise NotImplementedError

    def source(self, **overrides: Any) -> Any:
        raise NotImplementedError

    def break_credentials(self) -> None:
        self.fake.reject_auth = True

    def close(self) -> None:
        self.fake.stop()
