"""API security: bearer token on non-public endpoints, body limits everywhere, no stack traces to
clients, hostile webhook bodies and headers (hypothesis), safe YAML loading across the tree."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from services.api import ApiSettings, SinkUnavailable, make_api, sign
from streams.clock import FakeClock
from streams.records import Incident, Mention

SECRET = "whsec-test-7f3a9c1e5b2d4f60"
TOKEN = "api-token-5e1d0c9b8a7f6e5d"
NOW = 1_772_366_400
REPO = Path(__file__).resolve().parents[2]
Client = TestClient[web.Request, web.Application]


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[Mention] = []

    async def send(self, mention: Mention) -> None:
        if mention.text == "kafka-down":
            raise SinkUnavailable("down")
        self.sent.append(mention)

    async def close(self) -> None:
        pass


def run(
    scenario: Callable[[Client], Awaitable[None]],
    *,
    token: str | None = TOKEN,
    incidents: Callable[[], dict[str, Incident]] | None = dict,
    **settings: Any,
) -> FakeSink:
    sink = FakeSink()
    app = make_api(
        ApiSettings(**settings),
        sink,
        secret=SecretStr(SECRET),
        clock=FakeClock(datetime.fromtimestamp(NOW, UTC)),
        incidents=incidents,
        token=SecretStr(token) if token else None,
    )

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())
    return sink


def signed(body: bytes) -> dict[str, str]:
    return {
        "X-Listenwell-Timestamp": str(NOW),
        "X-Listenwell-Signature": sign(SECRET, NOW, body),
        "Content-Type": "application/json",
    }


def test_incidents_need_the_bearer_token_and_public_paths_do_not() -> None:
    async def scenario(client: Client) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            resp = await client.get("/v1/incidents", headers=headers)
            assert resp.status == 401
            assert "Bearer" in resp.headers["WWW-Authenticate"]
            assert (await client.get("/v1/incidents/x", headers=headers)).status == 401
        ok = await client.get("/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status == 200 and await ok.json() == {"incidents": []}
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200

    run(scenario)


def test_without_a_configured_token_incidents_are_not_served() -> None:
    async def scenario(client: Client) -> None:
        for auth in ("", "Bearer ", "Bearer None"):
            resp = await client.get("/v1/incidents", headers={"Authorization": auth})
            assert resp.status == 401

    run(scenario, token=None)


def test_token_settings_from_a_file_and_too_short_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv("LISTENWELL_API_TOKEN_FILE", str(path))
    token = ApiSettings().token()
    assert token is not None and token.get_secret_value() == TOKEN
    assert TOKEN not in repr(ApiSettings())
    monkeypatch.delenv("LISTENWELL_API_TOKEN_FILE")
    monkeypatch.setenv("LISTENWELL_API_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16"):
        ApiSettings().token()
    monkeypatch.delenv("LISTENWELL_API_TOKEN")
    assert ApiSettings().token() is None


def test_bodies_on_other_endpoints_are_limited() -> None:
    async def scenario(client: Client) -> None:
        for path in ("/healthz", "/metrics", "/v1/incidents"):
            resp = await client.get(
                path, data=b"x" * 2000, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert resp.status == 413, path

    run(scenario)


def test_an_unexpected_error_answers_500_without_a_stack_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> dict[str, Incident]:
        raise RuntimeError("secret internals: /etc/listenwell/token")

    async def scenario(client: Client) -> None:
        resp = await client.get("/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 500
        text = await resp.text()
        assert json.loads(text) == {"error": "internal"}
        assert "Traceback" not in text and "internals" not in text

    with caplog.at_level(logging.ERROR, logger="listenwell.api"):
        run(scenario, incidents=broken)
    assert any("unexpected error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_ten_megabyte_webhook_body_is_rejected() -> None:
    async def scenario(client: Client) -> None:
        body = b"x" * (10 * 1024 * 1024)
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 413

        async def chunks() -> Any:
            for _ in range(160):
                yield b"y" * 65536

        resp = await client.post("/v1/events", data=chunks(), headers=signed(b""))
        assert resp.status == 413
        assert (await client.get("/healthz")).status == 200

    run(scenario)


@pytest.mark.parametrize(
    "body",
    [b"[" * 60_000, b'{"a":' * 12_000, b"[" * 30_000 + b"]" * 30_000, b"\xff\xfe{", b'"\\ud800"'],
    ids=["open-brackets", "nested-objects", "nested-lists", "not-utf8", "lone-surrogate"],
)
def test_deep_or_broken_signed_json_is_a_400(body: bytes) -> None:
    async def scenario(client: Client) -> None:
        resp = await client.post("/v1/events", data=body, headers=signed(body))
        assert resp.status == 400
        assert (await resp.json())["error"] in {"invalid JSON", "invalid event"}

    run(scenario)


EVENT_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
FIELDS = ["event_id", "type", "brand", "customer_id", "text", "rating", "nps", "created_at"]
HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=126), max_size=80
)  # what an HTTP header can carry


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        body = draw(st.binary(max_size=300))
    elif kind == 1:
        body = json.dumps(draw(EVENT_VALUES)).encode()
    else:
        doc = {
            "event_id": "e-1",
            "type": "review",
            "brand": "acme",
            "text": "ok",
            "created_at": "2026-03-01T11:58:00Z",
        }
        doc.update(draw(st.dictionaries(st.sampled_from(FIELDS), EVENT_VALUES, max_size=3)))
        body = json.dumps(doc).encode()
    if kind == 3 or draw(st.booleans()):
        headers = signed(body)
    else:
        headers = {
            "X-Listenwell-Timestamp": draw(HEADER_TEXT),
            "X-Listenwell-Signature": draw(HEADER_TEXT),
        }
    return body, headers


def test_hostile_webhook_requests_get_documented_answers() -> None:
    answers: dict[int, int] = {}
    seen = 0

    async def scenario(client: Client) -> None:
        nonlocal seen

        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(hostile_request())
        def check(request: tuple[bytes, dict[str, str]]) -> None:
            body, headers = request
            requests.append((body, headers))

        requests: list[tuple[bytes, dict[str, str]]] = []
        check()
        for body, headers in requests:
            resp = await client.post("/v1/events", data=body, headers=headers)
            answers[resp.status] = answers.get(resp.status, 0) + 1
            assert resp.status in {200, 202, 400, 401, 503}, (body, headers)
            payload = await resp.json()
            assert "Traceback" not in json.dumps(payload)
            seen += 1
        assert (await client.get("/healthz")).status == 200

    run(scenario)
    assert seen >= 300
    assert answers.get(400, 0) > 0 and answers.get(401, 0) > 0


YAML_UNSAFE = re.compile(
    r"yaml\.(unsafe_load|full_load|load_all|load)\s*\(|Loader\s*=\s*(?!yaml\.SafeLoader\b|"
    r"yaml\.CSafeLoader\b|SafeLoader\b|CSafeLoader\b|_?\w*Safe\w*Loader\b)"
)


def test_only_safe_yaml_loaders_are_used_in_the_source_tree() -> None:
    offenders = []
    for folder in ("streams", "connectors", "services", "bench", "deploy", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if YAML_UNSAFE.search(line) and "YAML_UNSAFE" not in line:
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
