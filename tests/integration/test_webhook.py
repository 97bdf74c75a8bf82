"""The webhook API with the real Kafka sink: each documented answer, records in mentions.raw."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from services.api import ApiSettings, KafkaEventSink, make_api, sign
from services.kafka_local import free_port
from streams import topics
from streams.records import Mention
from tests.integration.harness import Run

pytestmark = pytest.mark.integration

SECRET = "whsec-integration-0d9c8b7a6f5e"


def event(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "event_id": "survey-9001",
        "type": "survey",
        "brand": "northwind-air",
        "customer_id": "cust-77",
        "text": "The crew was kind but the refund never came.",
        "nps": 2,
        "created_at": "2026-03-01T09:30:00+00:00",
    }
    data.update(changes)
    return json.dumps(data).encode()


def headers(body: bytes, *, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "X-Listenwell-Timestamp": str(ts),
        "X-Listenwell-Signature": sign(secret, ts, body),
        "Content-Type": "application/json",
    }


Client = TestClient[web.Request, web.Application]


def serve(bootstrap: str, topic: str, scenario: Callable[[Client], Any], **kw: Any) -> None:
    settings = ApiSettings(webhook_max_bytes=4096, **kw)
    sink = KafkaEventSink(bootstrap, topic, timeout_s=settings.kafka_timeout_s)
    app = make_api(settings, sink, secret=SecretStr(SECRET))

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())


def test_every_answer_on_the_real_broker_and_the_secret_is_never_logged(
    run_factory: Callable[[str], Run],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    run = run_factory("webhook")
    raw = run.topic(topics.MENTIONS_RAW)
    answers: dict[str, tuple[int, dict[str, Any]]] = {}

    async def scenario(client: Client) -> None:
        async def post(case: str, body: bytes, hdrs: dict[str, str]) -> None:
            resp = await client.post("/v1/events", data=body, headers=hdrs)
            answers[case] = (resp.status, await resp.json())

        valid = event()
        await post("valid", valid, headers(valid))
        await post("duplicate", valid, headers(valid))
        await post("tampered", valid.replace(b'"nps": 2', b'"nps": 9'), headers(valid))
        await post("stale", valid, headers(valid, ts=int(time.time()) - 600))
        big = event(event_id="big-1", text="z" * 5000)
        await post("oversize", big, headers(big))
        bad = event(event_id="bad-1", nps=12, type="tweet")
        await post("malformed", bad, headers(bad))

    serve(run.bootstrap, raw, scenario)

    assert answers["valid"] == (202, {"accepted": True, "id": "webhook:survey-9001"})
    assert answers["duplicate"] == (200, {"duplicate": True, "id": "webhook:survey-9001"})
    assert answers["tampered"] == (401, {"error": "bad signature"})
    assert answers["stale"][0] == 401
    assert answers["oversize"] == (413, {"error": "body larger than 4096 bytes"})
    status, body = answers["malformed"]
    assert status == 400 and {f["field"] for f in body["fields"]} == {"nps", "type"}

    (mention,) = [Mention.from_json(v) for v in run.read(topics.MENTIONS_RAW)]
    assert mention.id == "webhook:survey-9001"
    assert (mention.kind, mention.nps, mention.customer_id) == ("survey", 2, "cust-77")

    captured = capfd.readouterr()
    assert caplog.records
    for text in (caplog.text, captured.out, captured.err, json.dumps(answers)):
        assert SECRET not in text


def test_kafka_unavailable_answers_503_with_retry_after() -> None:
    statuses: list[tuple[int, str | None]] = []

    async def scenario(client: Client) -> None:
        body = event()
        resp = await client.post("/v1/events", data=body, headers=headers(body))
        statuses.append((resp.status, resp.headers.get("Retry-After")))

    serve(f"127.0.0.1:{free_port()}", "mentions.raw", scenario, kafka_timeout_s=1.0)
    assert statuses == [(503, "5")]
