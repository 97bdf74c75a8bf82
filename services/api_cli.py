"""``listenwell api``: run the HTTP API (webhook ingest, incidents, erasure requests, health,
metrics, and the incident room's pages when an API token is configured)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from streams.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from pydantic import SecretStr

    from services.room.consumer import RoomConsumer
    from services.room.pages import Room


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT."""
    from aiohttp import web
    from prometheus_client import CollectorRegistry
    from pydantic import ValidationError

    from services.api import ApiSettings, KafkaEventSink, KafkaForget, make_api
    from services.notify.config import RoutesFileError
    from streams import topics

    try:
        api_settings = ApiSettings()
        secret = api_settings.secret()
        token = api_settings.token()
    except (ValidationError, ValueError) as exc:
        print(f"listenwell api: {exc}", file=sys.stderr)
        return 2
    registry = CollectorRegistry()
    room: Room | None = None
    consumer: RoomConsumer | None = None
    if token is not None and not args.no_room:
        try:
            room, consumer = build_room(settings, token, registry, args.routes)
        except (ValidationError, RoutesFileError) as exc:
            print(f"listenwell api: {exc}", file=sys.stderr)
            return 2
    sink = KafkaEventSink(
        settings.kafka_bootstrap,
        topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix),
        timeout_s=api_settings.kafka_timeout_s,
        key_by=settings.raw_key,
    )
    from services.incidents import CachedIncidents

    incidents = CachedIncidents(
        settings.kafka_bootstrap, topics.topic_name(topics.INCIDENTS, settings.topic_prefix)
    )
    app = make_api(
        api_settings,
        sink,
        secret=secret,
        registry=registry,
        incidents=incidents,
        token=token,
        forget=KafkaForget(settings.kafka_bootstrap, settings.topic_prefix),
        room=room,
    )
    host = args.host or api_settings.api_host
    port = api_settings.api_port if args.port is None else args.port
    print(f"listenwell api on http://{host}:{port} (POST /v1/events)", file=sys.stderr, flush=True)
    if consumer is not None:
        room_consumer = consumer

        async def start_room(app: web.Application) -> None:
            room_consumer.start()

        async def stop_room(app: web.Application) -> None:
            import asyncio

            await asyncio.to_thread(room_consumer.stop)

        app.on_startup.append(start_room)
        app.on_cleanup.append(stop_room)
        print(f"incident room on http://{host}:{port}/room/", file=sys.stderr, flush=True)
    web.run_app(app, host=host, port=port, print=None, handle_signals=True, shutdown_timeout=5)
    return 0


def build_room(
    settings: Settings, token: SecretStr, registry: CollectorRegistry, routes: str | None
) -> tuple[Room, RoomConsumer]:
    """The room's pages and the consumer that feeds them (not started); raises
    ``ValidationError`` or ``RoutesFileError`` (``file:line: reason``) on bad settings."""
    from services.notify.config import load_routes
    from services.room.auth import Sessions
    from services.room.consumer import RoomConsumer, RoomFeed
    from services.room.metrics import RoomMetrics
    from services.room.model import RoomModel
    from services.room.pages import Room, RoomSettings

    room_settings = RoomSettings()
    routes_file = Path(routes) if routes else room_settings.routes_file
    tree = load_routes(routes_file) if routes_file is not None else None
    feed = RoomFeed(RoomModel(), RoomMetrics(registry))
    consumer = RoomConsumer(
        feed, settings.kafka_bootstrap, settings.topic_prefix, lookback_s=room_settings.lookback_s
    )
    room = Room(
        feed=feed,
        sessions=Sessions(token, ttl_s=room_settings.session_ttl_s),
        settings=room_settings,
        routes=tree,
        public_url=settings.public_url,
    )
    return room, consumer


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``api``."""
    p = sub.add_parser(
        "api", help="run the HTTP API (signed webhook ingest, /healthz, /metrics, /room/ pages)"
    )
    p.add_argument("--host", help="listen address (default LISTENWELL_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default LISTENWELL_API_PORT or 8080)")
    p.add_argument(
        "--routes",
        help="the notifier's routes.yaml, so the incident page shows where each alert went "
        "(default LISTENWELL_ROOM_ROUTES_FILE)",
    )
    p.add_argument(
        "--no-room", action="store_true", help="serve no incident room (it needs an API token)"
    )
    p.set_defaults(func=cmd_api)
