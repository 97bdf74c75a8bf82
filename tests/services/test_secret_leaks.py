"""Secrets never leak: connectors (check, fetch, bad credentials) against their fake APIs, the pure
pipeline fed with what they fetched, the notifier's Slack, webhook and SMTP receivers against local
servers (success and failure), and the webhook API. Every log line (caplog and the process's
stdout/stderr), every metric text, every produced record, alert payload and exception text is
scanned for each recognisable fake secret: zero occurrences."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr

from connectors.base import AuthError
from services.api import ApiSettings, make_api, sign
from services.kafka_local import free_port
from services.notify.config import parse_routes
from services.notify.metrics import NotifierMetrics
from services.notify.receivers import DeliveryError, EmailSender, build_sender
from streams.clock import FakeClock
from streams.engine import Engine
from streams.metrics import WorkerMetrics
from streams.pipeline import Pipeline, RawRecord
from streams.records import Mention
from streams.rules import load_rules
from streams.scoring import Scorer
from tests.connectors.fakes import bluesky as fake_bluesky
from tests.connectors.fakes import reddit as fake_reddit
from tests.services.notify.fakes import fake_slack
from tests.services.notify.test_delivery import notification

REDDIT_SECRET = "reddit-secret-Zq81xKc3Lm"
BLUESKY_PASSWORD = "bsky-4kd9-ww2p-q7rt"
SLACK_PATH = "/services/T0LEAK/B0LEAK/slackLeakCheck9x8y7z"
SMTP_PASSWORD = "smtp-pass-Hy7u6t5r4e"
HMAC_KEY = "whsec-leakcheck-5a6b7c8d9e"
API_TOKEN = "api-token-leakcheck-1a2b3c"
SECRETS = [
    REDDIT_SECRET,
    BLUESKY_PASSWORD,
    SLACK_PATH.rsplit("/", 1)[-1],
    SMTP_PASSWORD,
    HMAC_KEY,
    API_TOKEN,
    fake_reddit.CLIENT_SECRET,
    fake_bluesky.APP_PASSWORD,
]
RULES = Path(__file__).resolve().parents[2] / "alert_rules" / "default.yaml"


class Seen:
    """Everything observable, to be scanned at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *items: object) -> None:
        for item in items:
            if isinstance(item, bytes):
                self.texts.append(item.decode("utf-8", "replace"))
                # base64 too: HTTP Basic auth and SMTP AUTH carry secrets encoded
            else:
                self.texts.append(str(item))

    def leaks(self) -> list[str]:
        found = []
        for secret in SECRETS:
            encoded = base64.b64encode(secret.encode()).decode()
            for text in self.texts:
                if secret in text or encoded in text:
                    found.append(f"{secret!r} in {text[:200]!r}")
        return found


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[Seen]:
    caplog.set_level(logging.DEBUG)
    s = Seen()
    yield s
    out, err = capfd.readouterr()
    s.add(out, err, caplog.text, *(r.getMessage() for r in caplog.records))
    assert s.leaks() == []


def test_connectors_pipeline_and_metrics(seen: Seen) -> None:
    mentions: list[Mention] = []
    for harness_cls, secret_field, wrong in [
        (fake_reddit.RedditHarness, "client_secret", REDDIT_SECRET),
        (fake_bluesky.BlueskyHarness, "app_password", BLUESKY_PASSWORD),
    ]:
        harness = harness_cls()
        try:
            harness.add(5)
            harness.add_malformed()
            good = harness.source()
            seen.add(good.check())
            page, cursor = good.fetch(None)
            mentions.extend(page)
            seen.add(cursor, good.problems, [m.to_json() for m in page])
            bad = harness.source(**{secret_field: wrong})
            failures = [_failure(bad.fetch, None), _failure(bad.check)]
            harness.break_credentials()
            fresh = harness.source()
            failures += [_failure(fresh.fetch, None), _failure(fresh.check)]
            assert any(isinstance(f, AuthError) for f in failures), failures
            seen.add(*failures, *map(repr, failures), repr(good.settings), repr(bad))
        finally:
            harness.close()
    assert len(mentions) >= 10

    registry = CollectorRegistry()
    WorkerMetrics(registry)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    pipeline = Pipeline(
        Scorer(),
        Engine(load_rules(RULES), allowed_lateness=timedelta(minutes=2)),
        clock=FakeClock(now),
    )
    records = [
        RawRecord("mentions.raw", 0, i, m.brand.encode(), m.to_json())
        for i, m in enumerate(mentions)
    ]
    records.append(RawRecord("mentions.raw", 0, len(records), b"acme", b"{bad"))
    result = pipeline.process(records, lambda brand: None)
    assert len(result.scored) == len(mentions) and len(result.dead_letters) == 1
    seen.add(
        *(s.to_json() for s in result.scored),
        *(d.to_json() for d in result.dead_letters),
        *(a.to_json() for a in result.alerts),
        *(s.to_changelog() for s in result.states.values()),
        generate_latest(registry),
    )


def _failure(call: Any, *args: Any) -> object:
    """The exception a call raised, or what it returned (``check()`` returns its problems)."""
    try:
        return call(*args)
    except Exception as exc:
        return exc


class _Auth:
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)


class _Sink:
    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        return "250 OK"


def test_notifier_receivers_success_and_failure(
    seen: Seen, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "hmac"
    key.write_text(HMAC_KEY + "\n")
    monkeypatch.setenv("LEAK_SLACK_URL", "")
    monkeypatch.setenv("LEAK_SMTP_PASSWORD", SMTP_PASSWORD)
    registry = CollectorRegistry()
    NotifierMetrics(registry)
    smtp_sink = _Sink()
    port = free_port()
    controller = Controller(
        smtp_sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=_Auth(),
        auth_require_tls=False,
    )
    controller.start()
    try:
        with fake_slack([(500, {}), (404, {})]) as slack, httpx.Client(timeout=5) as client:
            slack_url = slack.url.rsplit("/services/", 1)[0] + SLACK_PATH
            monkeypatch.setenv("LEAK_SLACK_URL", slack_url)
            for password_env in ("LEAK_SMTP_PASSWORD", "LEAK_WRONG_PASSWORD"):
                monkeypatch.setenv("LEAK_WRONG_PASSWORD", "wrong-" + SMTP_PASSWORD[::-1])
                tree = parse_routes(
                    f"""
route: {{receiver: slack}}
receivers:
  slack: {{type: slack, webhook_url: {{env: LEAK_SLACK_URL}}}}
  hook: {{type: webhook, url: "{slack.url}", hmac_secret: {{file: "{key}"}}}}
  mail: {{type: email, host: 127.0.0.1, port: {port}, from: a@example.com, to: [b@example.com],
          username: lw, password: {{env: {password_env}}}}}
"""
                )
                seen.add(repr(tree))
                for name in ("slack", "hook", "mail"):
                    sender = build_sender(tree.receivers[name], client)
                    if isinstance(sender, EmailSender):
                        sender._timeout = 1.0  # a refused login makes aiosmtpd go quiet
                    seen.add(repr(sender))
                    for _ in range(2):
                        try:
                            sender.send(notification(name))
                        except DeliveryError as exc:
                            seen.add(exc, repr(exc))
            seen.add(*(body for _, body in slack.requests))
            seen.add(*(json.dumps(h) for h, _ in slack.requests if "Authorization" in h))
        assert len(slack.requests) >= 4
    finally:
        controller.stop()
    # the right password delivered mail; the wrong one was refused
    assert len(smtp_sink.raw) >= 1
    seen.add(*smtp_sink.raw, generate_latest(registry))


def test_webhook_api(seen: Seen) -> None:
    class Sink:
        def __init__(self) -> None:
            self.sent: list[Mention] = []

        async def send(self, mention: Mention) -> None:
            self.sent.append(mention)

        async def close(self) -> None:
            pass

    registry = CollectorRegistry()
    sink = Sink()
    now = 1_772_366_400

    def boom() -> dict[str, Any]:
        raise RuntimeError("loader failed")

    app = make_api(
        ApiSettings(),
        sink,
        secret=SecretStr(HMAC_KEY),
        registry=registry,
        clock=FakeClock(datetime.fromtimestamp(now, UTC)),
        incidents=boom,
        token=SecretStr(API_TOKEN),
    )
    body = json.dumps(
        {
            "event_id": "e1",
            "type": "review",
            "brand": "acme",
            "text": "slow",
            "created_at": "2026-03-01T11:58:00Z",
        }
    ).encode()

    async def main() -> None:
        async with TestClient(TestServer(app)) as c:
            good = {
                "X-Listenwell-Timestamp": str(now),
                "X-Listenwell-Signature": sign(HMAC_KEY, now, body),
            }
            for headers in (good, {**good, "X-Listenwell-Signature": "sha256=00"}, {}):
                resp = await c.post("/v1/events", data=body, headers=headers)
                seen.add(resp.status, dict(resp.headers), await resp.text())
            for auth in (f"Bearer {API_TOKEN}", "Bearer nope"):
                resp = await c.get("/v1/incidents", headers={"Authorization": auth})
                seen.add(resp.status, dict(resp.headers), await resp.text())
            seen.add(await (await c.get("/metrics")).text())

    asyncio.run(main())
    assert len(sink.sent) == 1
    seen.add(*(m.to_json() for m in sink.sent), generate_latest(registry))
    settings_env = ApiSettings(api_token=SecretStr(API_TOKEN), webhook_secret=SecretStr(HMAC_KEY))
    seen.add(repr(settings_env), str(settings_env), settings_env.model_dump_json())
