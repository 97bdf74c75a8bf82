"""``POST /v1/forget``: the erasure request over the API (bearer token, validation, answers) and the
request model shared with ``listenwell forget``. The erasure itself against a real broker is in
``tests/integration/test_forget.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr, ValidationError

from services.api import ApiSettings, SinkUnavailable, make_api
from services.cli import main
from services.erasure import ForgetRequest, erasure_record
from streams.records import Mention

SECRET = "whsec-test-7f3a9c1e5b2d4f60"
TOKEN = "api-token-5e1d0c9b8a7f6e5d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]


class NoSink:
    async def send(self, mention: Mention) -> None:
        raise AssertionError("the webhook sink is not used here")

    async def close(self) -> None:
        pass


class Eraser:
    """Records the requests it gets; answers like ``forget`` would with two tombstones."""

    def __init__(self, *, unavailable: bool = False) -> None:
        self.requests: list[ForgetRequest] = []
        self.unavailable = unavailable

    def __call__(self, request: ForgetRequest) -> dict[str, Any]:
        self.requests.append(request)
        if self.unavailable:
            raise SinkUnavailable("Kafka at 127.0.0.1:1: NoBrokersAvailable")
        keys = [f"{b}/{request.customer}" for b in ("acme", "globex")] if request.customer else []
        record = erasure_record(
            request.author, request.customer, request.brand, keys, datetime(2026, 3, 1, tzinfo=UTC)
        )
        return {**record, "dry_run": request.dry_run}


def run(scenario: Callable[[Client], Awaitable[None]], eraser: Eraser) -> None:
    app = make_api(
        ApiSettings(), NoSink(), secret=SecretStr(SECRET), token=SecretStr(TOKEN), forget=eraser
    )

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(go())


def test_an_erasure_request_is_carried_out_and_answered_with_what_was_tombstoned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    eraser = Eraser()
    answers: list[tuple[int, dict[str, Any]]] = []

    async def scenario(client: Client) -> None:
        for body in (
            {"customer": "cust-0042", "author": "reddit:3f9a"},
            {"author": "reddit:3f9a", "dry_run": True},
        ):
            resp = await client.post("/v1/forget", json=body, headers=AUTH)
            answers.append((resp.status, await resp.json()))

    run(scenario, eraser)

    assert eraser.requests == [
        ForgetRequest(customer="cust-0042", author="reddit:3f9a"),
        ForgetRequest(author="reddit:3f9a", dry_run=True),
    ]
    (status, first), (status2, second) = answers
    assert status == status2 == 202
    assert first["done"]["customers.health tombstones"] == ["acme/cust-0042", "globex/cust-0042"]
    assert first["customer_id"] == "cust-0042" and first["author"] == "reddit:3f9a"
    assert first["dry_run"] is False
    assert second["done"]["customers.health tombstones"] == [] and second["dry_run"] is True
    assert first["not_covered"] and len(first["request_id"]) == 32
    # The log says that an erasure happened, never whose.
    assert first["request_id"] in caplog.text
    assert "reddit:3f9a" not in caplog.text and "cust-0042" not in caplog.text


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": TOKEN}]
)
def test_without_the_bearer_token_nothing_is_erased(headers: dict[str, str]) -> None:
    eraser = Eraser()

    async def scenario(client: Client) -> None:
        resp = await client.post("/v1/forget", json={"customer": "c1"}, headers=headers)
        assert resp.status == 401
        assert "Bearer" in resp.headers["WWW-Authenticate"]

    run(scenario, eraser)
    assert eraser.requests == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{}", "body"),
        (b'{"author": null, "customer": null}', "body"),
        (b'{"author": ""}', "author"),
        (b'{"customer": "   "}', "customer"),
        (b'{"customer": 42}', "customer"),
        (b'{"customer": "c1", "dry_run": "yes"}', "dry_run"),
        (b'{"customer": "c1", "everything": true}', "everything"),
        (b'["c1"]', "body"),
        (b'"c1"', "body"),
        (b"customer=c1", "body"),
        (b"\xff\xfe", "body"),
        (b"[" * 400 + b"]" * 400, "body"),
    ],
)
def test_bad_requests_get_400_with_the_failing_field_and_nothing_is_erased(
    body: bytes, field: str
) -> None:
    eraser = Eraser()

    async def scenario(client: Client) -> None:
        resp = await client.post(
            "/v1/forget", data=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert resp.status == 400
        answer = await resp.json()
        assert field in {f["field"] for f in answer["fields"]}

    run(scenario, eraser)
    assert eraser.requests == []


def test_a_body_above_the_limit_gets_413_even_without_content_length() -> None:
    eraser = Eraser()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"customer": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    async def scenario(client: Client) -> None:
        sized = await client.post("/v1/forget", data=b" " * 2000, headers=AUTH)
        assert sized.status == 413
        chunked = await client.post("/v1/forget", data=chunks(), headers=AUTH)
        assert chunked.status == 413

    run(scenario, eraser)
    assert eraser.requests == []


def test_kafka_unavailable_answers_503_with_retry_after() -> None:
    eraser = Eraser(unavailable=True)

    async def scenario(client: Client) -> None:
        resp = await client.post("/v1/forget", json={"author": "reddit:3f9a"}, headers=AUTH)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        assert await resp.json() == {"error": "Kafka unavailable"}

    run(scenario, eraser)
    assert len(eraser.requests) == 1


def test_the_request_model_needs_an_author_or_a_customer() -> None:
    assert ForgetRequest(customer=" c1 ").customer == "c1"
    assert ForgetRequest(author="a").dry_run is False
    with pytest.raises(ValidationError, match="give an author or a customer"):
        ForgetRequest()
    with pytest.raises(ValidationError):
        ForgetRequest(brand="acme")


def test_the_cli_refuses_a_request_without_author_or_customer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["forget", "--brand", "acme"]) == 2
    assert "give an author or a customer" in capsys.readouterr().err


def test_the_request_id_is_stable_for_the_same_request() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    one = erasure_record("a", "c1", None, [], at)["request_id"]
    assert one == erasure_record("a", "c1", None, ["x"], at)["request_id"]
    assert one != erasure_record(None, "c1", None, [], at)["request_id"]
