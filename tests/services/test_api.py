"""The webhook API against a fake sink: every documented answer, and the secret never shows."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.api import (
    ApiSettings,
    RecentIds,
    SinkUnavailable,
    WebhookEvent,
    event_to_mention,
    make_api,
    sign,
)
from streams.clock import FakeClock
from streams.records import Mention

SECRET = "whsec-test-7f3a9c1e5b2d4f60"
NOW = 1_772_366_400  # 2026-03-01T12:00:00Z


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[Mention] = []
        self.down = False

    async def send(self, mention: Mention) -> None:
        if self.down:
            raise SinkUnavailable("Kafka at 127.0.0.1:1: NoBrokersAvailable")
        self.sent.append(mention)

    async def close(self) -> None:
        pass


def event(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": "rev-1001",
        "type": "review",
        "brand": "northwind-air",
        "customer_id": "cust-42",
        "text": "Lost my bag twice, nobody called back.",
        "rating": 1,
        "created_at": "2026-03-01T11:58:00Z",
        "source": "trustpilot",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def signed(body: bytes, *, ts: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Listenwell-Timestamp": str(ts),
        "X-Listenwell-Signature": sign(secret, ts, body),
        "Content-Type": "application/json",
    }


Scenario = Callable[[TestClient[web.Request, web.Application], FakeSink], Awaitable[None]]


def serve(
    scenario: Scenario,
    *,
    settings: ApiSettings | None = None,
    registry: CollectorRegistry | None = None,
) -> FakeSink:
    sink = FakeSink()
    app = make_api(
        settings or ApiSettings(),
        sink,
        secret=SecretStr(SECRET),
        registry=registry,
        clock=FakeClock(datetime.fromtimestamp(NOW, UTC)),
    )

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client, sink)

    asyncio.run(main())
    return sink


def test_a_valid_signed_review_is_accepted_as_a_mention() -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 202
        assert await resp.json() == {"accepted": True, "id": "webhook:rev-1001"}

    (mention,) = serve(scenario).sent
    assert mention.id == "webhook:rev-1001"
    assert (mention.kind, mention.source, mention.brand) == (
        "review",
        "trustpilot",
        "northwind-air",
    )
    assert mention.rating == 1 and mention.customer_id == "cust-42"
    assert mention.author.startswith("webhook:") and "cust-42" not in mention.author
    assert mention.created_at.isoformat() == "2026-03-01T11:58:00+00:00"
    assert mention.fetched_at.isoformat() == "2026-03-01T12:00:00+00:00"


def test_a_survey_without_source_or_customer() -> None:
    survey = event(
        event_id="nps-7", type="survey", nps=3, rating=None, customer_id=None, source=None
    )
    mention = event_to_mention(
        WebhookEvent.model_validate(survey), datetime.fromtimestamp(NOW, UTC)
    )
    assert (mention.kind, mention.source, mention.nps) == ("survey", "webhook", 3)
    assert mention.author == "webhook:anonymous"


def test_the_same_event_twice_is_accepted_once() -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        first = await client.post("/v1/events", data=body, headers=signed(body))
        again = await client.post("/v1/events", data=body, headers=signed(body))
        assert (first.status, again.status) == (202, 200)
        assert await again.json() == {"duplicate": True, "id": "webhook:rev-1001"}

    assert len(serve(scenario).sent) == 1


@pytest.mark.parametrize(
    ("case", "expected_error"),
    [
        ("tampered", "bad signature"),
        ("wrong-secret", "bad signature"),
        ("no-signature", "bad signature"),
        ("stale", "stale timestamp"),
        ("future", "stale timestamp"),
        ("no-timestamp", "missing or invalid X-Listenwell-Timestamp"),
    ],
)
def test_unauthenticated_requests_get_401(case: str, expected_error: str) -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        headers = signed(body)
        if case == "tampered":
            body = body.replace(b'rating": 1', b'rating": 5')
        elif case == "wrong-secret":
            headers = signed(body, secret="another-secret-of-16+")
        elif case == "no-signature":
            del headers["X-Listenwell-Signature"]
        elif case == "stale":
            headers = signed(body, ts=NOW - 301)
        elif case == "future":
            headers = signed(body, ts=NOW + 301)
        elif case == "no-timestamp":
            del headers["X-Listenwell-Timestamp"]
        resp = await client.post("/v1/events", data=body, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"].startswith(expected_error)

    assert serve(scenario).sent == []


def test_a_timestamp_within_the_skew_is_fine() -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        resp = await client.post("/v1/events", data=body, headers=signed(body, ts=NOW - 300))
        assert resp.status == 202

    assert len(serve(scenario).sent) == 1


def test_oversize_bodies_get_413_with_or_without_content_length() -> None:
    settings = ApiSettings(webhook_max_bytes=1024)

    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event(text="x" * 2000)).encode()
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 413
        assert await resp.json() == {"error": "body larger than 1024 bytes"}

        async def chunks() -> Any:
            for start in range(0, len(body), 256):
                yield body[start : start + 256]

        resp = await client.post("/v1/events", data=chunks(), headers=signed(body))
        assert resp.status == 413
        small = json.dumps(event()).encode()
        resp = await client.post("/v1/events", data=small, headers=signed(small))
        assert resp.status == 202

    assert len(serve(scenario, settings=settings).sent) == 1


def test_invalid_events_get_400_listing_the_failing_fields() -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        bad = event(rating=9, created_at="yesterday", colour="blue")
        del bad["brand"]
        body = json.dumps(bad).encode()
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 400
        answer = await resp.json()
        assert answer["error"] == "invalid event"
        fields = {f["field"]: f["message"] for f in answer["fields"]}
        assert set(fields) == {"brand", "rating", "created_at", "colour"}
        assert fields["rating"] == "Input should be less than or equal to 5"

        naive = json.dumps(event(created_at="2026-03-01T11:58:00", nps=11)).encode()
        resp = await client.post("/v1/events", data=naive, headers=signed(naive))
        naive_fields = {f["field"] for f in (await resp.json())["fields"]}
        assert resp.status == 400 and naive_fields == {"created_at", "nps"}

        garbage = b"{not json"
        resp = await client.post("/v1/events", data=garbage, headers=signed(garbage))
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid JSON"

    assert serve(scenario).sent == []


def test_kafka_unavailable_gets_503_with_retry_after_and_a_retry_is_accepted() -> None:
    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        sink.down = True
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        sink.down = False
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 202  # not a "duplicate": the first try was never accepted

    assert len(serve(scenario).sent) == 1


def test_health_and_metrics() -> None:
    registry = CollectorRegistry()

    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        resp = await client.get("/healthz")
        assert resp.status == 200 and await resp.json() == {"status": "ok"}
        body = json.dumps(event()).encode()
        await client.post("/v1/events", data=body, headers=signed(body))
        await client.post("/v1/events", data=body, headers=signed(body))
        await client.post("/v1/events", data=body, headers=signed(body, secret="x" * 20))
        text = await (await client.get("/metrics")).text()
        assert 'listenwell_webhook_requests_total{outcome="accepted"} 1.0' in text
        assert 'listenwell_webhook_requests_total{outcome="duplicate"} 1.0' in text
        assert 'listenwell_webhook_requests_total{outcome="unauthorized"} 1.0' in text
        assert SECRET not in text

    serve(scenario, registry=registry)


def test_the_secret_never_appears_in_logs_or_answers(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []

    async def scenario(client: TestClient[web.Request, web.Application], sink: FakeSink) -> None:
        body = json.dumps(event()).encode()
        requests = [
            (body, signed(body)),
            (body, signed(body)),
            (body + b" ", signed(body)),
            (body, signed(body, ts=NOW - 1000)),
            (b"{", signed(b"{")),
            (json.dumps(event(event_id="e2", text="y" * 70000)).encode(), {}),
        ]
        for data, headers in requests:
            resp = await client.post("/v1/events", data=data, headers=headers)
            answers.append(f"{resp.status} {dict(resp.headers)} {await resp.text()}")
        sink.down = True
        other = json.dumps(event(event_id="e3")).encode()
        resp = await client.post("/v1/events", data=other, headers=signed(other))
        answers.append(f"{resp.status} {await resp.text()}")

    serve(scenario)
    captured = capfd.readouterr()
    assert [a.split()[0] for a in answers] == ["202", "200", "401", "401", "400", "413", "503"]
    assert caplog.records  # something was logged (access log, the 503 warning)
    for text in (caplog.text, captured.out, captured.err, *answers):
        assert SECRET not in text


def test_settings_read_the_secret_from_a_file_and_refuse_short_or_missing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LISTENWELL_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("LISTENWELL_WEBHOOK_SECRET_FILE", raising=False)
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("LISTENWELL_WEBHOOK_SECRET_FILE", str(secret_file))
    settings = ApiSettings()
    assert settings.secret().get_secret_value() == SECRET
    assert settings.api_port == 8080 and settings.webhook_max_bytes == 65536
    assert SECRET not in repr(settings)

    monkeypatch.delenv("LISTENWELL_WEBHOOK_SECRET_FILE")
    with pytest.raises(ValueError, match="set LISTENWELL_WEBHOOK_SECRET or"):
        ApiSettings().secret()
    monkeypatch.setenv("LISTENWELL_WEBHOOK_SECRET", "short-one")
    with pytest.raises(ValueError, match="at least 16 characters") as info:
        ApiSettings().secret()
    assert "short-one" not in str(info.value)


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(2)
    for event_id in ("a", "b", "c"):
        recent.add(event_id)
    assert "a" not in recent and "b" in recent and "c" in recent and len(recent) == 2
