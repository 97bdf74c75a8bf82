"""The HTTP API (aiohttp): signed webhook ingest of reviews and surveys, health and metrics.

``POST /v1/events`` takes one JSON event (``WebhookEvent``) signed with a shared secret::

    X-Listenwell-Timestamp: <unix seconds>
    X-Listenwell-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

and answers, in the order checked:

* 413 when the body is larger than ``webhook_max_bytes`` (checked before the body is read);
* 401 when the timestamp is missing, not an integer, or more than ``webhook_max_skew_s`` away from
  now, or the signature does not match (constant-time comparison);
* 400 with the failing fields when the body is not a valid event;
* 200 ``{"duplicate": true}`` for an event id this process accepted recently;
* 202 once Kafka acknowledged the ``Mention`` (id ``webhook:<event_id>``) on ``mentions.raw``;
* 503 with ``Retry-After`` when Kafka is unavailable.

The same event id twice is accepted once: the mention id is stable, so the worker's dedupe drops a
repeat this process did not remember (after a restart, or from another API replica).

``GET /healthz`` is public; ``GET /metrics`` is Prometheus text and public too (it holds counts by
bounded labels, never a mention, an author or a secret: keep the port inside the cluster). The
secret is a ``SecretStr`` read from ``LISTENWELL_WEBHOOK_SECRET`` or the file
``LISTENWELL_WEBHOOK_SECRET_FILE`` and never logged.

The incident room (``/room/``, when the API runs with it) has its own login: a session cookie
from its login form, or the same bearer token (see :mod:`services.room.pages`).

Every other endpoint (``/v1/incidents``, ``/v1/incidents/{id}``, ``POST /v1/forget``) needs
``Authorization: Bearer <token>``, the token from ``LISTENWELL_API_TOKEN`` or the file
``LISTENWELL_API_TOKEN_FILE`` (constant-time comparison); with no token configured they answer 401.
Requests other than ``POST /v1/events`` may not carry a body larger than ``MAX_OTHER_BODY_BYTES``
(413).

``POST /v1/forget`` takes ``{"author": …}`` and/or ``{"customer": …}`` (optionally ``"brand"`` and
``"dry_run"``), a :class:`services.erasure.ForgetRequest`, and does what ``listenwell forget``
does, through the same function (:func:`services.erasure.forget`): 202 with the erasure record
(request id, the ``customers.health`` keys tombstoned, what is not covered) once Kafka acknowledged
it, 400 with the failing fields on a bad request, 503 with ``Retry-After`` when Kafka is
unavailable. The log line names only the request id, never the person.

An unexpected error answers 500 ``{"error": "internal"}`` and is logged; no stack trace or
exception text reaches the client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.erasure import ForgetRequest
from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import MAX_TEXT_CHARS, AwareDatetime, Incident, Mention, MentionKind
from streams.topics import RawKey, raw_key

if TYPE_CHECKING:
    from services.room.pages import Room

log = logging.getLogger("listenwell.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TIMESTAMP_HEADER = "X-Listenwell-Timestamp"
SIGNATURE_HEADER = "X-Listenwell-Signature"
PUBLIC_PATHS = frozenset({"/healthz", "/metrics", "/v1/events"})
"""Paths without the bearer token (``/v1/events`` has its own HMAC signature)."""
MAX_OTHER_BODY_BYTES = 1024
"""Largest body accepted by endpoints other than ``POST /v1/events`` (only ``/v1/forget`` reads
one: a small JSON object)."""


class ApiSettings(BaseSettings):
    """Settings of ``listenwell api`` (``LISTENWELL_*`` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="LISTENWELL_", frozen=True, extra="ignore")

    api_host: str = Field(default="127.0.0.1", description="address the API listens on")
    api_port: int = Field(default=8080, ge=0, le=65535)
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC secret")
    webhook_secret_file: Path | None = Field(default=None, description="file holding the secret")
    webhook_max_bytes: int = Field(default=65536, ge=1, description="largest accepted body")
    webhook_max_skew_s: int = Field(default=300, ge=1, description="timestamp tolerance")
    webhook_recent_ids: int = Field(default=100_000, ge=0, description="remembered event ids")
    kafka_timeout_s: float = Field(default=10.0, gt=0, description="wait for a Kafka ack")
    api_token: SecretStr | None = Field(default=None, description="bearer token of /v1/incidents")
    api_token_file: Path | None = Field(default=None, description="file holding the bearer token")

    def token(self) -> SecretStr | None:
        """The API bearer token, from the variable or the file; ``None`` when neither is set;
        ``ValueError`` if the file cannot be read or the token is shorter than 16 characters."""
        return _secret(self.api_token, self.api_token_file, "LISTENWELL_API_TOKEN", "API token")

    def secret(self) -> SecretStr:
        """The webhook secret, from the variable or the file; ``ValueError`` if neither works."""
        secret = _secret(
            self.webhook_secret,
            self.webhook_secret_file,
            "LISTENWELL_WEBHOOK_SECRET",
            "webhook secret",
        )
        if secret is None:
            raise ValueError("set LISTENWELL_WEBHOOK_SECRET or LISTENWELL_WEBHOOK_SECRET_FILE")
        return secret


def _secret(
    value: SecretStr | None, file: Path | None, variable: str, what: str
) -> SecretStr | None:
    """``value``, or what ``file`` holds (without its line end) when it is set; ``ValueError``
    when the file cannot be read or the secret is shorter than 16 characters."""
    if file is not None:
        try:
            value = SecretStr(file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as exc:
            raise ValueError(f"cannot read {variable}_FILE {file}: {exc.strerror}") from None
    if value is not None and len(value.get_secret_value()) < 16:
        raise ValueError(f"the {what} must be at least 16 characters")
    return value


class WebhookEvent(BaseModel):
    """One review or survey answer posted to ``/v1/events``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    type: Literal["review", "survey"]
    brand: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    created_at: AwareDatetime
    source: str | None = Field(default=None, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")


def event_to_mention(event: WebhookEvent, fetched_at: datetime) -> Mention:
    """The ``Mention`` of an event: stable id ``webhook:<event_id>``, opaque author."""
    author = (
        "webhook:" + hashlib.sha256(event.customer_id.encode()).hexdigest()[:16]
        if event.customer_id
        else "webhook:anonymous"
    )
    return Mention(
        id=f"webhook:{event.event_id}",
        source=event.source or "webhook",
        kind=MentionKind(event.type),
        brand=event.brand,
        text=event.text,
        author=author,
        customer_id=event.customer_id,
        created_at=event.created_at,
        fetched_at=fetched_at,
        rating=event.rating,
        nps=event.nps,
    )


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 over ``f"{timestamp}.{body}"``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class SinkUnavailable(Exception):
    """Kafka did not acknowledge the event (unreachable, timed out)."""


class EventSink(Protocol):
    """Delivers a mention and returns only after the broker acknowledged it."""

    async def send(self, mention: Mention) -> None: ...

    async def close(self) -> None: ...


class KafkaEventSink:
    """Produces to ``mentions.raw`` with acks=all and idempotence; waits for each ack."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        timeout_s: float = 10.0,
        key_by: RawKey = "brand",
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.key_by: RawKey = key_by
        self.timeout_s = timeout_s
        self._producer: Any = None
        self._lock = asyncio.Lock()

    def _make(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(
            bootstrap_servers=self.bootstrap_servers.split(","),
            client_id="listenwell-api",
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            bootstrap_timeout_ms=int(self.timeout_s * 1000),
            max_block_ms=int(self.timeout_s * 1000),
        )

    async def send(self, mention: Mention) -> None:
        from kafka.errors import KafkaError

        loop = asyncio.get_running_loop()
        try:
            async with self._lock:
                if self._producer is None:
                    self._producer = await loop.run_in_executor(None, self._make)
            producer = self._producer

            def deliver() -> None:
                key = raw_key(mention, self.key_by)
                future = producer.send(self.topic, value=mention.to_json(), key=key)
                future.get(timeout=self.timeout_s)

            await loop.run_in_executor(None, deliver)
        except KafkaError as exc:
            raise SinkUnavailable(f"Kafka at {self.bootstrap_servers}: {exc}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.get_running_loop().run_in_executor(None, producer.close, 5)


Forget = Callable[[ForgetRequest], dict[str, Any]]
"""Carries out an erasure request (blocking) and returns its record; raises ``SinkUnavailable``
when Kafka cannot be read or written."""


class KafkaForget:
    """:func:`services.erasure.forget` against one broker and topic prefix, with Kafka errors
    raised as ``SinkUnavailable``."""

    def __init__(self, bootstrap_servers: str, prefix: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix

    def __call__(self, request: ForgetRequest) -> dict[str, Any]:
        from kafka.errors import KafkaError

        from services.erasure import forget

        try:
            return forget(request, bootstrap=self.bootstrap_servers, prefix=self.prefix)
        except KafkaError as exc:
            raise SinkUnavailable(f"Kafka at {self.bootstrap_servers}: {exc}") from exc


class RecentIds:
    """A bounded set of recently accepted event ids (oldest forgotten first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if self.limit <= 0:
            return
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)


OUTCOMES = (
    "accepted",
    "duplicate",
    "unauthorized",
    "invalid",
    "oversize",
    "unavailable",
)


class ApiMetrics:
    """Webhook answers by outcome (a bounded label)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "listenwell_webhook_requests_total",
            "POST /v1/events answers, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.requests.labels(outcome)


def _json(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers=headers or None)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    fields = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        fields.append({"field": where, "message": error["msg"]})
    return fields


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it grows beyond ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _in_room(path: str) -> bool:
    """The room's paths: it checks its own session cookie or bearer token."""
    return path == "/room" or path.startswith("/room/")


def make_api(
    settings: ApiSettings,
    sink: EventSink,
    *,
    secret: SecretStr,
    registry: CollectorRegistry | None = None,
    clock: Clock = SYSTEM_CLOCK,
    incidents: Callable[[], dict[str, Incident]] | None = None,
    token: SecretStr | None = None,
    forget: Forget | None = None,
    room: Room | None = None,
) -> web.Application:
    """The aiohttp application; ``sink`` delivers mentions, ``clock`` tells the time;
    ``incidents`` (if given) serves ``GET /v1/incidents`` and ``/v1/incidents/{id}``, ``forget``
    (if given) serves ``POST /v1/forget``, both to clients presenting ``token`` as
    ``Authorization: Bearer`` (none are served without a token); ``room`` (if given) serves the
    incident room's pages under ``/room/`` (:mod:`services.room.pages`, its own login)."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ApiMetrics(registry)
    recent = RecentIds(settings.webhook_recent_ids)
    key = secret.get_secret_value().encode()

    def answer(outcome: str, status: int, body: dict[str, Any], **headers: str) -> web.Response:
        metrics.requests.labels(outcome).inc()
        return _json(status, body, **headers)

    async def post_event(request: web.Request) -> web.Response:
        limit = settings.webhook_max_bytes
        if request.content_length is not None and request.content_length > limit:
            return answer("oversize", 413, {"error": f"body larger than {limit} bytes"})
        body = await _read_limited(request, limit)
        if body is None:
            return answer("oversize", 413, {"error": f"body larger than {limit} bytes"})

        raw_ts = request.headers.get(TIMESTAMP_HEADER, "")
        provided = request.headers.get(SIGNATURE_HEADER, "")
        try:
            timestamp = int(raw_ts)
        except ValueError:
            return answer("unauthorized", 401, {"error": f"missing or invalid {TIMESTAMP_HEADER}"})
        if abs(clock.time() - timestamp) > settings.webhook_max_skew_s:
            return answer(
                "unauthorized",
                401,
                {"error": f"stale timestamp (more than {settings.webhook_max_skew_s}s from now)"},
            )
        expected = sign(key, timestamp, body)
        if not hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace")):
            return answer("unauthorized", 401, {"error": "bad signature"})

        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return answer(
                "invalid",
                400,
                {"error": "invalid JSON", "fields": [{"field": "body", "message": str(exc)}]},
            )
        except RecursionError:  # "[[[[…": deeper than the decoder's recursion limit
            return answer(
                "invalid",
                400,
                {
                    "error": "invalid JSON",
                    "fields": [{"field": "body", "message": "nested too deeply"}],
                },
            )
        try:
            event = WebhookEvent.model_validate(data)
        except ValidationError as exc:
            return answer("invalid", 400, {"error": "invalid event", "fields": _field_errors(exc)})

        mention_id = f"webhook:{event.event_id}"
        if event.event_id in recent:
            return answer("duplicate", 200, {"duplicate": True, "id": mention_id})
        mention = event_to_mention(event, clock.now())
        try:
            await sink.send(mention)
        except SinkUnavailable as exc:
            log.warning("event %s not accepted: %s", event.event_id, exc)
            return answer(
                "unavailable", 503, {"error": "Kafka unavailable"}, **{"Retry-After": "5"}
            )
        recent.add(event.event_id)
        return answer("accepted", 202, {"accepted": True, "id": mention_id})

    async def post_forget(request: web.Request) -> web.Response:
        assert forget is not None
        body = await _read_limited(request, MAX_OTHER_BODY_BYTES)
        if body is None:
            return _json(413, {"error": f"body larger than {MAX_OTHER_BODY_BYTES} bytes"})
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return _json(
                400,
                {"error": "invalid JSON", "fields": [{"field": "body", "message": "not JSON"}]},
            )
        try:
            erasure = ForgetRequest.model_validate(data)
        except ValidationError as exc:
            return _json(400, {"error": "invalid request", "fields": _field_errors(exc)})
        try:
            done = await asyncio.to_thread(forget, erasure)
        except SinkUnavailable as exc:
            log.warning("erasure request not carried out: %s", exc)
            return _json(503, {"error": "Kafka unavailable"}, **{"Retry-After": "5"})
        log.info(
            "erasure request %s%s: %d customers.health tombstones",
            done["request_id"],
            " (dry run)" if erasure.dry_run else "",
            len(done["done"]["customers.health tombstones"]),
        )
        return _json(202, done)

    async def healthz(request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def metrics_endpoint(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def close_sink(app: web.Application) -> None:
        await sink.close()

    expected_auth = b"Bearer " + token.get_secret_value().encode() if token is not None else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/v1/events" and (request.content_length or 0) > MAX_OTHER_BODY_BYTES:
            return _json(413, {"error": f"body larger than {MAX_OTHER_BODY_BYTES} bytes"})
        if request.path not in PUBLIC_PATHS and not (room is not None and _in_room(request.path)):
            provided = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if expected_auth is None or not hmac.compare_digest(expected_auth, provided):
                return _json(
                    401,
                    {"error": "missing or bad bearer token"},
                    **{"WWW-Authenticate": 'Bearer realm="listenwell"'},
                )
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.path)
            return _json(500, {"error": "internal"})

    # aiohttp's own limit stays above ours so our 413 answers first.
    app = web.Application(client_max_size=settings.webhook_max_bytes + 1024, middlewares=[guard])
    app.router.add_post("/v1/events", post_event)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    if incidents is not None:
        from services.incidents import add_incident_routes

        add_incident_routes(app, incidents)
    if forget is not None:
        app.router.add_post("/v1/forget", post_forget)
    if room is not None:
        from services.room.pages import PREFIX, make_room_app

        app.add_subapp(PREFIX, make_room_app(room))
    app.on_cleanup.append(close_sink)
    return app
