"""The room's pages over HTTP (aiohttp test client, no browser): login, access, headers,
escaping, the alert link, the event stream."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.api import ApiSettings, make_api
from services.notify.config import parse_routes
from services.room.auth import SESSION_COOKIE, Sessions
from services.room.consumer import RoomFeed
from services.room.metrics import RoomMetrics
from services.room.model import RoomModel, TopicKind
from services.room.pages import CSP, Room, RoomSettings, visible
from streams.clock import FakeClock
from streams.records import AlertState, CustomerTier, Mention, SentimentLabel
from tests.services.room.records import alert, health, incident, scored

TOKEN = "room-token-0123456789abcdef"
Client = TestClient[web.Request, web.Application]
ROUTES = """
route:
  receiver: slack
  routes:
    - matchers: [severity=critical]
      receiver: pager
      continue: true
    - matchers: [alertname=~".+"]
      receiver: mail
receivers:
  slack: {type: slack, webhook_url: {env: NOPE}, channel: "#brand"}
  pager: {type: alertmanager, url: "http://127.0.0.1:1"}
  mail: {type: email, host: h, from: a@example.com, to: [care@example.com], send_resolved: false}
"""
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)><b>bold</b>'


class NoSink:
    async def send(self, mention: Mention) -> None:
        raise AssertionError("not used")

    async def close(self) -> None:
        return None


def room_with(records: list[Any], clock: FakeClock | None = None) -> Room:
    from tests.services.room.test_model import s

    model = RoomModel()
    for record in records:
        model.apply(*s(record))
    feed = RoomFeed(model, RoomMetrics(CollectorRegistry()))
    feed.mark_caught_up()
    clock = clock or FakeClock()
    return Room(
        feed=feed,
        sessions=Sessions(SecretStr(TOKEN), ttl_s=3600, clock=clock),
        settings=RoomSettings(sse_max_s=3, sse_every_s=1),
        routes=parse_routes(ROUTES),
        clock=clock,
    )


def crisis_records() -> list[Any]:
    inc = incident("northwind-air", minutes=180)
    records: list[Any] = [inc, alert("northwind-air", starts_at=inc.firing_at)]
    records.append(
        alert(
            "northwind-air",
            state=AlertState.RESOLVED,
            starts_at=inc.firing_at,
            ends_at=inc.resolved_at,
        )
    )
    for i in range(60):
        at = inc.onset + timedelta(minutes=i)
        records.append(
            scored(i, brand="northwind-air", at=at, label=SentimentLabel.NEGATIVE, text="lost bag")
        )
    records.append(
        scored(
            999,
            brand="northwind-air",
            at=inc.onset + timedelta(minutes=61),
            label=SentimentLabel.NEGATIVE,
            text=HOSTILE,
            url="javascript:alert(1)",
            customer="cust-<b>1</b>",
        )
    )
    records.append(
        health(
            "cust-<b>1</b>",
            CustomerTier.AT_RISK,
            88,
            brand="northwind-air",
            mentions=(("test:northwind-air-999", HOSTILE),),
        )
    )
    return records


def run(room: Room, scenario: Callable[[Client], Awaitable[None]]) -> None:
    app = make_api(
        ApiSettings(), NoSink(), secret=SecretStr("s" * 16), token=SecretStr(TOKEN), room=room
    )

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(go())


async def log_in(client: Client, token: str = TOKEN) -> Any:
    form = await client.get("/room/login")
    value = re.search(r'name="form_value" value="([^"]+)"', await form.text())
    assert value is not None
    return await client.post(
        "/room/login",
        data={"token": token, "form_value": value.group(1), "next": "/room/customers"},
        allow_redirects=False,
    )


class Elements(HTMLParser):
    """Tags and attributes of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def test_pages_need_a_login_and_the_login_sets_a_derived_http_only_cookie() -> None:
    async def scenario(client: Client) -> None:
        page = await client.get("/room/incidents/x?y=1", allow_redirects=False)
        assert page.status == 303
        assert page.headers["Location"] == "/room/login?next=/room/incidents/x?y%3D1"
        assert (await client.get("/room/events")).status == 401
        assert (await client.get("/v1/incidents")).status == 401  # the API's own guard stays

        wrong = await log_in(client, "not-the-token-at-all")
        assert wrong.status == 401 and "not the API token" in await wrong.text()
        ok = await log_in(client)
        assert ok.status == 303 and ok.headers["Location"] == "/room/customers"
        cookie = ok.headers["Set-Cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/room/" in cookie
        assert TOKEN not in cookie
        assert (await client.get("/room/customers")).status == 200

        logout = await client.post("/room/logout", allow_redirects=False)
        assert logout.status == 303
        assert (await client.get("/room/", allow_redirects=False)).status == 303

    run(room_with([]), scenario)


def test_the_login_form_refuses_a_post_without_its_cookie_or_from_another_site() -> None:
    async def scenario(client: Client) -> None:
        bare = await client.post(
            "/room/login", data={"token": TOKEN, "form_value": "guess"}, allow_redirects=False
        )
        assert bare.status == 400 and SESSION_COOKIE not in bare.headers.get("Set-Cookie", "")
        form = await client.get("/room/login")
        value = re.search(r'name="form_value" value="([^"]+)"', await form.text())
        assert value is not None
        cross = await client.post(
            "/room/login",
            data={"token": TOKEN, "form_value": value.group(1)},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert cross.status == 400
        assert "Strict" in form.headers["Set-Cookie"]

    run(room_with([]), scenario)


def test_next_after_login_never_leaves_the_room() -> None:
    from services.room.pages import _safe_next

    assert _safe_next("/room/incidents/a") == "/room/incidents/a"
    for bad in ("https://evil.example/", "//evil.example", "/room/..\\x", "/v1/forget", None):
        assert _safe_next(bad) == "/room/"


def test_a_session_expires_and_a_changed_token_ends_it() -> None:
    clock = FakeClock()
    sessions = Sessions(SecretStr(TOKEN), ttl_s=60, clock=clock)
    value = sessions.issue()
    assert sessions.valid(value)
    assert not Sessions(SecretStr(TOKEN + "x"), ttl_s=60, clock=clock).valid(value)
    assert not sessions.valid(value[:-1] + ("0" if value[-1] != "0" else "1"))
    clock.advance(61)
    assert not sessions.valid(value)


def test_bearer_token_reads_the_pages_and_every_answer_carries_the_strict_policy() -> None:
    room = room_with(crisis_records())
    inc_id = next(iter(room.feed.model.incidents))

    async def scenario(client: Client) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in (
            "/room/",
            f"/room/incidents/{inc_id}",
            "/room/customers",
            "/room/login",
            "/room/static/room.js",
            "/room/static/room.css",
        ):
            answer = await client.get(path, headers=auth)
            assert answer.status == 200, path
            assert answer.headers["Content-Security-Policy"] == CSP
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert answer.headers["Referrer-Policy"] == "same-origin"
            if path.endswith(".js") or path.endswith(".css"):
                continue
            html = await answer.text()
            tags = parse(html).tags
            scripts = [a for t, a in tags if t == "script"]
            assert scripts == [{"src": "/room/static/room.js", "defer": None}], path
            assert not any("style" in a for _, a in tags), path
            assert not any(k.startswith("on") for _, a in tags for k in a), path
        redirect = await client.get("/room/", allow_redirects=False)
        assert redirect.headers["Content-Security-Policy"] == CSP
        missing = await client.get("/room/incidents/nope", headers=auth)
        assert missing.status == 404
        assert (await client.get("/room/static/../pages.py", headers=auth)).status == 404

    run(room, scenario)


def test_hostile_text_is_text_everywhere() -> None:
    room = room_with(crisis_records())
    inc_id = next(iter(room.feed.model.incidents))

    async def scenario(client: Client) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/room/", f"/room/incidents/{inc_id}", "/room/customers"):
            html = await (await client.get(path, headers=auth)).text()
            elements = parse(html)
            assert not any(t in ("img", "b") for t, _ in elements.tags), path
            assert "<script>document" not in html
            hrefs = [a.get("href") or "" for t, a in elements.tags if t == "a"]
            assert not any(h.lower().startswith("javascript") for h in hrefs), path
        customers = parse(await (await client.get("/room/customers", headers=auth)).text())
        assert "cust-<b>1</b>" in "".join(customers.text)
        assert HOSTILE in "".join(customers.text)

    run(room, scenario)


def test_the_incident_page_shows_the_moments_and_where_the_alerts_went() -> None:
    room = room_with(crisis_records())
    inc = next(iter(room.feed.model.incidents.values()))

    async def scenario(client: Client) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        html = await (await client.get(f"/room/incidents/{inc.id}", headers=auth)).text()
        assert '<dd id="onset">2026-01-05 09:54</dd>' in html
        assert '<dd id="recovered">2026-01-05 12:54</dd>' in html
        assert '<dd id="ttr">3h00m</dd>' in html
        for kind in ("onset", "firing", "peak", "resolved", "recovered"):
            assert f'class="marker {kind}"' in html
        # Firing: pager and mail (the first matching child without continue); resolved: not mail.
        assert "pager (alertmanager); mail (email to care@example.com)" in html
        assert html.count("pager (alertmanager)") == 2
        assert "lost bag" in html

        link = await client.get(
            f"/room/alerts/{inc.fingerprint}",
            params={"at": f"{inc.firing_at:%Y-%m-%dT%H:%M:%SZ}"},
            headers=auth,
            allow_redirects=False,
        )
        assert link.status == 303 and link.headers["Location"] == f"/room/incidents/{inc.id}"
        unknown = await client.get(
            f"/room/alerts/{inc.fingerprint}", params={"at": "2020-01-01T00:00:00Z"}, headers=auth
        )
        assert unknown.status == 404

    run(room, scenario)


def test_the_event_stream_sends_the_version_when_it_changes() -> None:
    from dataclasses import replace

    from streams.clock import SYSTEM_CLOCK

    room = replace(
        room_with([]), clock=SYSTEM_CLOCK, settings=RoomSettings(sse_every_s=0.05, sse_max_s=60)
    )

    async def scenario(client: Client) -> None:
        stream = await client.get("/room/events", headers={"Authorization": f"Bearer {TOKEN}"})
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await stream.content.readuntil(b"\n\n")
        assert first == b"event: version\ndata: 0\n\n"
        room.feed.apply(TopicKind.SCORED, b"acme", scored(1).to_json())
        second = await stream.content.readuntil(b"\n\n")
        assert second == b"event: version\ndata: 1\n\n"
        stream.close()

    run(room, scenario)


def test_visible_shows_direction_and_zero_width_tricks() -> None:
    assert visible("abc\u202edcba") == "abc[U+202E]dcba"
    assert visible("pay\u200bpal\u2066x\u2069") == "pay[U+200B]pal[U+2066]x[U+2069]"
    assert visible("line\nnext\ttab\x07") == "line\nnext\ttab[U+0007]"
    family = "\U0001f468\u200d\U0001f469"
    assert visible(family) == family  # an emoji sequence keeps its joiner
    assert visible("a\u200db") == "a[U+200D]b"
    assert visible("مرحبا") == "مرحبا"


def test_the_package_ships_its_templates_and_static_files() -> None:
    root = Path(__file__).resolve().parents[3]
    text = (root / "pyproject.toml").read_text()
    assert '"services.room" = ["templates/*.html", "static/*.css", "static/*.js"]' in text
    assert (root / "services/room/static/room.js").is_file()
