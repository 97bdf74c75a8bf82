"""A local Slack-like incoming-webhook server: counts messages, can answer scripted errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeSlack:
    """Answers each POST with the next scripted status (then 200); keeps what it accepted."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    messages: list[dict[str, object]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        self.requests.append((headers, body))
        status, extra = self.script.pop(0) if self.script else (200, {})
        if status == 200:
            self.messages.append(json.loads(body))
        return status, extra


@contextmanager
def fake_slack(script: list[tuple[int, dict[str, str]]] | None = None) -> Iterator[FakeSlack]:
    """Run a ``FakeSlack`` on a free local port for the duration of the block."""
    fake = FakeSlack(script=list(script or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status, extra = fake.answer(dict(self.headers.items()), body)
            text = b"ok" if status == 200 else b"error"
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
