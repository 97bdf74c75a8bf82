"""The incident room's pages: an aiohttp sub-application mounted at ``/room`` by the API.

Server-rendered HTML (Jinja2 with autoescaping on for every template; record text only ever
reaches a page through it), SVG charts drawn here, one CSS file and one small script served from
``/room/static/``; nothing is loaded from elsewhere. Every answer carries a strict Content
Security Policy (``default-src 'self'``: no inline script or style anywhere), ``nosniff``, no
framing, and no referrer to other sites (``same-origin``: a login form's ``Origin`` must still be
sent). The pages are read-only (GET); the only POSTs are login and logout.

Pages: ``/room/`` (brands, recent incidents), ``/room/incidents/{id}``, ``/room/customers``,
``/room/alerts/{fingerprint}?at=…`` (an alert's link: redirects to its incident), and
``/room/events`` (server-sent events: the model's version, so the script re-fetches the page
when something changed). Access: the session cookie set by the login form, or
``Authorization: Bearer <API token>``; anything else is sent to ``/room/login`` (pages) or
answered 401 (the event stream).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notify.config import EmailConfig, RouteTree, SlackConfig
from services.room import auth
from services.room.charts import incident_chart, sparkline
from services.room.consumer import RoomFeed
from services.room.model import RoomModel
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Alert, AlertState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/room"
CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_FILES = {"room.css": "text/css", "room.js": "text/javascript"}
PUBLIC = frozenset({f"{PREFIX}/login", f"{PREFIX}/static/room.css", f"{PREFIX}/static/room.js"})
STOPPING = web.AppKey("stopping", asyncio.Event)
MAX_FLAGGED_SHOWN = 200
MAX_RECOVERED_SHOWN = 50
MAX_INCIDENTS_SHOWN = 20


class RoomSettings(BaseSettings):
    """Settings of the room (``LISTENWELL_ROOM_*``)."""

    model_config = SettingsConfigDict(env_prefix="LISTENWELL_ROOM_", frozen=True, extra="ignore")

    session_ttl_s: float = Field(default=12 * 3600, gt=0, description="login lifetime")
    routes_file: Path | None = Field(
        default=None, description="the notifier's routes.yaml: shows where each alert went"
    )
    lookback_s: float = Field(
        default=25 * 3600, gt=0, description="how far back alerts and mentions are read at start"
    )
    secure_cookie: bool | None = Field(
        default=None, description="Secure cookie flag; default: when the public URL is https"
    )
    sse_every_s: float = Field(default=1.0, gt=0, description="how often the event stream looks")
    sse_max_s: float = Field(
        default=300.0, gt=0, description="an event stream ends after this; the browser reconnects"
    )

    @field_validator("routes_file")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such routes file: {value}")
        return value


@dataclass
class Room:
    """What the room's pages need: the fed model, the session keys and the settings."""

    feed: RoomFeed
    sessions: auth.Sessions
    settings: RoomSettings = field(default_factory=RoomSettings)
    routes: RouteTree | None = None
    public_url: str | None = None
    clock: Clock = SYSTEM_CLOCK


# --- text ---------------------------------------------------------------------------------------

_KEEP = frozenset("\n\t")


def visible(text: str) -> str:
    """``text`` with invisible and direction-changing characters shown as ``[U+XXXX]``:
    format characters (bidi overrides and isolates, zero-width spaces and joiners, tag
    characters, BOM) and control characters. A zero-width joiner between two symbols (an emoji
    sequence) stays. The result is still plain text: the template escapes it."""
    out = []
    for i, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cf" or (category == "Cc" and char not in _KEEP):
            if char == "\u200d" and 0 < i < len(text) - 1:
                before, after = unicodedata.category(text[i - 1]), unicodedata.category(text[i + 1])
                if before in ("So", "Sk", "Mn") and after in ("So", "Sk"):
                    out.append(char)
                    continue
            out.append(f"[U+{ord(char):04X}]")
        else:
            out.append(char)
    return "".join(out)


def when(at: datetime | None) -> str:
    """``2026-01-05 09:54`` (UTC), as ``listenwell incidents show`` prints it; ``-`` for none."""
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


def duration(seconds: float | None) -> str:
    """``5h52m`` (as ``listenwell incidents`` prints a time to recover); ``-`` for none."""
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def anchor(text: str) -> str:
    """An HTML id for any text (record values never go into an id themselves)."""
    import hashlib

    return "c" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("services.room", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        visible=visible, when=when, duration=duration, pct=pct, number=number, anchor=anchor
    )
    env.globals.update(quote=lambda s: quote(s, safe=":"))
    return env


# --- where alerts went ----------------------------------------------------------------------------


def receivers_for(routes: RouteTree | None, alert: Alert) -> tuple[str, ...]:
    """The receivers the notifier's routes send ``alert`` to (resolved: only those that send
    resolved notices), described by name, type and, for Slack and e-mail, channel or addresses."""
    if routes is None:
        return ()
    described = []
    for route in routes.match(alert.labels):
        receiver = routes.receivers.get(route.receiver)
        if receiver is None:
            continue
        config = receiver.config
        if alert.state is AlertState.RESOLVED and not config.send_resolved:
            continue
        text = f"{receiver.name} ({config.type}"
        if isinstance(config, SlackConfig) and config.channel:
            text += f" {config.channel}"
        elif isinstance(config, EmailConfig):
            text += " to " + ", ".join(config.to)
        text += ")"
        if route.digest != "none" or alert.labels.get("severity") in routes.digest_severities:
            text += " in the daily digest"
        if text not in described:
            described.append(text)
    return tuple(described)


# --- the application ------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Where to go after login: a path of the room, never another site."""
    default = f"{PREFIX}/"
    if not value or not value.startswith(f"{PREFIX}/") or "//" in value or "\\" in value:
        return default
    if any(unicodedata.category(c).startswith("C") for c in value):
        return default
    return value


def _same_origin(request: web.Request) -> bool:
    """A missing ``Origin`` (older browsers, curl) is accepted; a present one must be ours."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.host and parts.scheme in ("http", "https")


def make_room_app(room: Room) -> web.Application:
    """The ``/room`` sub-application (mount it with ``app.add_subapp(PREFIX, …)``)."""
    env = _environment()
    feed, sessions, metrics = room.feed, room.sessions, room.feed.metrics
    secure = (
        room.settings.secure_cookie
        if room.settings.secure_cookie is not None
        else bool(room.public_url and room.public_url.startswith("https://"))
    )

    def signed_in(request: web.Request) -> bool:
        if sessions.valid(request.cookies.get(auth.SESSION_COOKIE)):
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        return scheme == "Bearer" and bool(presented) and sessions.token_matches(presented)

    def page(name: str, status: int = 200, **context: Any) -> web.Response:
        status_line = feed.read(lambda m: (m.version, m.now))
        body = env.get_template(name).render(
            version=status_line[0],
            room_now=status_line[1],
            caught_up=feed.caught_up.is_set(),
            behind=feed.behind,
            **context,
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC and not signed_in(request):
            if request.path == f"{PREFIX}/events" or request.method != "GET":
                response: web.StreamResponse = web.json_response(
                    {"error": "log in or send the bearer token"}, status=401
                )
            else:
                target = quote(request.path_qs, safe="/")
                response = web.HTTPSeeOther(f"{PREFIX}/login?next={target}")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    async def brands(request: web.Request) -> web.Response:
        def query(m: RoomModel) -> Any:
            rows = m.brand_rows()
            recent = {r.brand: m.recent_mentions(r.brand)[:8] for r in rows}
            return rows, recent, m.incident_list()[:MAX_INCIDENTS_SHOWN]

        rows, recent, incidents = feed.read(query)
        sparks = {r.brand: sparkline(r.volume_series, r.negative_series) for r in rows}
        return page("brands.html", rows=rows, recent=recent, incidents=incidents, sparks=sparks)

    async def incident(request: web.Request) -> web.Response:
        incident_id = request.match_info["id"]
        view = feed.read(lambda m: m.incident_view(incident_id))
        if view is None:
            return page("missing.html", status=404, what="incident")
        chart = incident_chart(view.incident)
        sent = [(a, receivers_for(room.routes, a)) for a in view.alerts]
        return page(
            "incident.html",
            view=view,
            inc=view.incident,
            chart=chart,
            sent=sent,
            routes_known=room.routes is not None,
        )

    async def alert(request: web.Request) -> web.StreamResponse:
        fingerprint = request.match_info["fingerprint"]
        try:
            at = datetime.fromisoformat(request.query.get("at", "").replace("Z", "+00:00"))
        except ValueError:
            return page("missing.html", status=404, what="alert")
        if at.tzinfo is None:
            return page("missing.html", status=404, what="alert")
        found = feed.read(lambda m: m.incident_for_alert(fingerprint, at))
        if found is None:
            return page("missing.html", status=404, what="incident of this alert")
        raise web.HTTPSeeOther(f"{PREFIX}/incidents/{quote(found, safe=':')}")

    async def customers(request: web.Request) -> web.Response:
        flagged, recovered = feed.read(lambda m: m.customer_queue())
        return page(
            "customers.html",
            flagged=flagged[:MAX_FLAGGED_SHOWN],
            flagged_total=len(flagged),
            recovered=recovered[:MAX_RECOVERED_SHOWN],
        )

    async def login_form(request: web.Request) -> web.Response:
        return _login_page(request, status=200, error=None)

    def _login_page(request: web.Request, *, status: int, error: str | None) -> web.Response:
        value = auth.new_form_value()
        response = page(
            "login.html",
            status=status,
            form_value=value,
            next=_safe_next(request.query.get("next")),
            error=error,
        )
        response.set_cookie(
            auth.LOGIN_COOKIE,
            value,
            max_age=600,
            path=f"{PREFIX}/login",
            httponly=True,
            samesite="Strict",
            secure=secure,
        )
        return response

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        token, check = form.get("token"), form.get("form_value")
        cookie = request.cookies.get(auth.LOGIN_COOKIE)
        if (
            not _same_origin(request)
            or not isinstance(check, str)
            or not auth.same_value(cookie, check)
        ):
            metrics.logins.labels("bad_form").inc()
            return _login_page(request, status=400, error="The form expired; please try again.")
        if not isinstance(token, str) or not sessions.token_matches(token):
            metrics.logins.labels("bad_token").inc()
            return _login_page(request, status=401, error="That is not the API token.")
        metrics.logins.labels("ok").inc()
        target = form.get("next")
        response = web.HTTPSeeOther(_safe_next(target if isinstance(target, str) else None))
        response.set_cookie(
            auth.SESSION_COOKIE,
            sessions.issue(),
            max_age=int(sessions.ttl_s),
            path=f"{PREFIX}/",
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        response.del_cookie(auth.LOGIN_COOKIE, path=f"{PREFIX}/login")
        raise response

    async def logout(request: web.Request) -> web.Response:
        if not _same_origin(request):
            return web.json_response({"error": "cross-site request"}, status=403)
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(auth.SESSION_COOKIE, path=f"{PREFIX}/")
        raise response

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        data = resources.files("services.room").joinpath("static", name).read_bytes()
        return web.Response(
            body=data,
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        await response.prepare(request)
        seen = -1
        started = room.clock.monotonic()
        quiet_since = started
        stopping = request.app[STOPPING]
        while not stopping.is_set() and room.clock.monotonic() - started < room.settings.sse_max_s:
            version = feed.model.version  # an int read: no lock needed
            if version != seen:
                seen = version
                await response.write(f"event: version\ndata: {version}\n\n".encode())
                quiet_since = room.clock.monotonic()
            elif room.clock.monotonic() - quiet_since >= 15:
                await response.write(b": keep-alive\n\n")
                quiet_since = room.clock.monotonic()
            await room.clock.asleep(room.settings.sse_every_s)
        return response

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING].set()

    app = web.Application(middlewares=[guard])
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/", brands)
    app.router.add_get("/incidents/{id}", incident)
    app.router.add_get("/alerts/{fingerprint}", alert)
    app.router.add_get("/customers", customers)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/events", events)
    return app
