"""``listenwell api``: run the HTTP API (webhook ingest, incidents, erasure requests, health,
metrics)."""

from __future__ import annotations

import argparse
import sys

from streams.settings import Settings


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT."""
    from aiohttp import web
    from pydantic import ValidationError

    from services.api import ApiSettings, KafkaEventSink, KafkaForget, make_api
    from streams import topics

    try:
        api_settings = ApiSettings()
        secret = api_settings.secret()
        token = api_settings.token()
    except (ValidationError, ValueError) as exc:
        print(f"listenwell api: {exc}", file=sys.stderr)
        return 2
    sink = KafkaEventSink(
        settings.kafka_bootstrap,
        topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix),
        timeout_s=api_settings.kafka_timeout_s,
    )
    from services.incidents import CachedIncidents

    incidents = CachedIncidents(
        settings.kafka_bootstrap, topics.topic_name(topics.INCIDENTS, settings.topic_prefix)
    )
    app = make_api(
        api_settings,
        sink,
        secret=secret,
        incidents=incidents,
        token=token,
        forget=KafkaForget(settings.kafka_bootstrap, settings.topic_prefix),
    )
    host = args.host or api_settings.api_host
    port = api_settings.api_port if args.port is None else args.port
    print(f"listenwell api on http://{host}:{port} (POST /v1/events)", file=sys.stderr, flush=True)
    web.run_app(app, host=host, port=port, print=None, handle_signals=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``api``."""
    p = sub.add_parser("api", help="run the HTTP API (signed webhook ingest, /healthz, /metrics)")
    p.add_argument("--host", help="listen address (default LISTENWELL_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default LISTENWELL_API_PORT or 8080)")
    p.set_defaults(func=cmd_api)
