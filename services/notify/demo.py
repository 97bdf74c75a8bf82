"""Local stand-ins for Slack and a mail server, for ``make demo``.

``DemoSinks`` runs a Slack-like incoming-webhook server (each message appended to
``slack.jsonl``) and a real SMTP server (aiosmtpd; each mail saved as ``mail/NNN.eml``) in this
process, and writes a routes file that sends every alert to both.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from services.kafka_local import free_port

SLACK_URL_ENV = "LISTENWELL_DEMO_SLACK_URL"
SLACK_TOKEN_ENV = "LISTENWELL_DEMO_SLACK_TOKEN"
"""Optional: the last part of the local Slack webhook's path, which real Slack treats as a secret;
the receiver answers 404 on any other path (the secret-audit test sets a recognisable one)."""
SMTP_PASSWORD_ENV = "LISTENWELL_DEMO_SMTP_PASSWORD"
"""Optional: the local SMTP server then requires AUTH LOGIN/PLAIN with this password."""

ROUTES = """\
# Written by `make demo`: every alert goes to the local Slack-like receiver and to the local
# SMTP server, grouped by alert and brand, with short timers so the demo shows them quickly.
route:
  receiver: demo-slack
  group_by: [alertname, brand]
  group_wait: 2s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname=~".+"']
      receiver: demo-slack
      continue: true
    - matchers: ['alertname=~".+"']
      receiver: demo-email
digest_severities: []
receivers:
  demo-slack:
    type: slack
    webhook_url: {{env: {env}}}
    channel: "#demo"
  demo-email:
    type: email
    host: 127.0.0.1
    port: {smtp_port}
    from: listenwell-demo@example.com
    to: [marketing@example.com]
{smtp_auth}"""

SMTP_AUTH = """\
    username: listenwell-demo
    password: {{env: {env}}}
"""


class DemoSinks:
    """Context manager: start both servers in ``workdir``; ``routes`` is the routes file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._slack_port = free_port()
        self._slack_path = f"/services/T0DEMO/B0DEMO/{os.environ.get(SLACK_TOKEN_ENV) or 'demo'}"
        self._smtp_password = os.environ.get(SMTP_PASSWORD_ENV)
        self.slack_url = f"http://127.0.0.1:{self._slack_port}{self._slack_path}"
        self.slack_file = workdir / "slack.jsonl"
        self.mail_dir = workdir / "mail"
        self.routes = workdir / "routes.yaml"
        self.slack_messages = 0
        self.mails = 0
        self.last_message = time.monotonic()
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._smtp: Any = None

    def __enter__(self) -> DemoSinks:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(exist_ok=True)
        sinks = self

        class SlackHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != sinks._slack_path:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sinks._slack(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        class MailHandler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                sinks._mail(bytes(envelope.content))
                return "250 OK"

        self._http = ThreadingHTTPServer(("127.0.0.1", self._slack_port), SlackHandler)
        threading.Thread(target=self._http.serve_forever, args=(0.1,), daemon=True).start()
        smtp_port = free_port()
        auth: dict[str, Any] = {}
        if self._smtp_password is not None:
            password = self._smtp_password.encode()

            def check(
                server: object, session: object, envelope: object, mechanism: str, data: Any
            ) -> AuthResult:
                return AuthResult(
                    success=isinstance(data, LoginPassword) and data.password == password
                )

            auth = {"authenticator": check, "auth_require_tls": False, "auth_required": True}
        self._smtp = Controller(MailHandler(), hostname="127.0.0.1", port=smtp_port, **auth)
        self._smtp.start()
        smtp_auth = SMTP_AUTH.format(env=SMTP_PASSWORD_ENV) if self._smtp_password else ""
        self.routes.write_text(
            ROUTES.format(env=SLACK_URL_ENV, smtp_port=smtp_port, smtp_auth=smtp_auth)
        )
        return self

    def _slack(self, body: bytes) -> None:
        with self._lock, self.slack_file.open("a") as f:
            f.write(json.dumps(json.loads(body), ensure_ascii=False) + "\n")
            self.slack_messages += 1
            self.last_message = time.monotonic()

    def _mail(self, content: bytes) -> None:
        with self._lock:
            self.mails += 1
            (self.mail_dir / f"{self.mails:03d}.eml").write_bytes(content)
            self.last_message = time.monotonic()

    def where(self) -> str:
        """Where to look, for the demo's last lines."""
        return (
            f"  Slack-like receiver  {self.slack_messages:>4} messages  → {self.slack_file}\n"
            f"  SMTP server          {self.mails:>4} e-mails   → {self.mail_dir}/*.eml\n"
            f"  routes               {self.routes}"
        )

    def wait_quiet(self, quiet_s: float = 5.0, patience_s: float = 30.0) -> None:
        """Wait until nothing has arrived for ``quiet_s`` seconds (at most ``patience_s``)."""
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline and time.monotonic() - self.last_message < quiet_s:
            time.sleep(0.2)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._smtp is not None:
            self._smtp.stop()
