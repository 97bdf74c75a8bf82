"""The notifier's commands: ``listenwell notifier``, ``silence add|list|expire``,
``routes check``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from streams.clock import SYSTEM_CLOCK
from streams.settings import Settings

if TYPE_CHECKING:
    from services.notify.silences import SilenceStore


def cmd_silence_add(args: argparse.Namespace, settings: Settings) -> int:
    """Publish a silence to the ``silences`` topic and print its id."""
    from pydantic import ValidationError

    from services.notify.config import Matcher
    from services.notify.core import Silence
    from services.notify.silences import SilenceStore
    from streams import topics
    from streams.yamlfile import parse_duration

    try:
        for text in args.matcher:
            Matcher.parse(text)
        duration = parse_duration(args.duration)
        now = SYSTEM_CLOCK.now()
        silence = Silence(
            matchers=tuple(args.matcher),
            starts_at=now,
            ends_at=now + duration,
            created_by=args.author,
            comment=args.comment,
        )
    except (ValueError, ValidationError) as exc:
        print(f"error: {exc}")
        return 2
    store = SilenceStore(
        settings.kafka_bootstrap, topics.topic_name(topics.SILENCES, settings.topic_prefix)
    )
    store.put(silence)
    print(f"{silence.id}  until {silence.ends_at:%Y-%m-%d %H:%M}Z  {' '.join(silence.matchers)}")
    return 0


def _store(settings: Settings) -> SilenceStore:
    from services.notify.silences import SilenceStore
    from streams import topics

    return SilenceStore(
        settings.kafka_bootstrap, topics.topic_name(topics.SILENCES, settings.topic_prefix)
    )


def cmd_silence_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the active silences (``--all``: expired ones too)."""
    store = _store(settings)
    try:
        silences = store.load()
    finally:
        store.close()
    now = SYSTEM_CLOCK.now()
    shown = [s for s in silences.values() if args.all or s.ends_at > now]
    shown.sort(key=lambda s: s.starts_at)
    for s in shown:
        state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
        print(
            f"{s.id}  {state:<8} {s.starts_at:%Y-%m-%d %H:%M}Z → {s.ends_at:%Y-%m-%d %H:%M}Z  "
            f"{' '.join(s.matchers)}  by {s.created_by}: {s.comment}"
        )
    if not shown:
        print("no silences")
    return 0


def cmd_silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    """End a silence now (it stays listed by ``silence list --all``)."""
    store = _store(settings)
    try:
        silences = store.load()
        silence = silences.get(args.id)
        if silence is None:
            print(f"error: no silence {args.id!r}")
            return 1
        now = SYSTEM_CLOCK.now()
        store.put(silence.model_copy(update={"ends_at": min(now, silence.ends_at)}))
    finally:
        store.close()
    print(f"expired {args.id}")
    return 0


def cmd_routes_check(args: argparse.Namespace, settings: Settings) -> int:
    """Validate a routes file: ``file:line: reason`` and exit 1 on error."""
    from services.notify.config import RoutesFileError, load_routes

    try:
        tree = load_routes(Path(args.path))
    except RoutesFileError as exc:
        print(exc)
        return 1
    routes = len(tree.root.walk())
    print(f"{args.path}: ok ({routes} routes, {len(tree.receivers)} receivers)")
    return 0


def cmd_notifier(args: argparse.Namespace, settings: Settings) -> int:
    """Consume the alerts topic: print one line per transition and, with ``--routes``, deliver
    to the receivers of the routes file."""
    from prometheus_client import CollectorRegistry

    from services.notify.config import RoutesFileError, RouteTree, load_routes
    from services.notify.service import NotifierService
    from services.process import Stopper, start_metrics_server

    tree: RouteTree | None = None
    if args.routes:
        try:
            tree = load_routes(Path(args.routes))
        except RoutesFileError as exc:
            print(exc)
            return 2
    registry = CollectorRegistry()
    service = NotifierService(
        tree,
        bootstrap=settings.kafka_bootstrap,
        prefix=settings.topic_prefix,
        group=args.group,
        data_dir=settings.data_dir / "notifier",
        registry=registry,
        console=lambda line: print(line, flush=True),
        log_path=Path(args.delivery_log) if args.delivery_log else None,
    )
    start_metrics_server(settings.notifier_metrics_port, settings.metrics_host, registry)
    stopper = Stopper()
    try:
        service.run(lambda: stopper.stopping)
    finally:
        service.close()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``notifier``, ``silence`` and ``routes``."""
    p = sub.add_parser("notifier", help="print alert transitions from the alerts topic")
    p.add_argument("--group", default="listenwell-notifier", help="consumer group id")
    p.add_argument("--delivery-log", help="file of delivered transition ids")
    p.add_argument("--routes", help="routes.yaml: also deliver to its receivers (Slack, e-mail, …)")
    p.set_defaults(func=cmd_notifier)

    silence = sub.add_parser("silence", help="mute alerts: add | list | expire").add_subparsers(
        dest="silence_command", required=True
    )
    p = silence.add_parser("add", help="add a silence (prints its id)")
    p.add_argument(
        "--matcher", action="append", required=True, help="label=value, !=, =~ or !~ (repeat)"
    )
    p.add_argument("--for", dest="duration", default="2h", help="how long (30m, 2h, 1d)")
    p.add_argument("--comment", required=True, help="why")
    p.add_argument("--author", required=True, help="who")
    p.set_defaults(func=cmd_silence_add)
    p = silence.add_parser("list", help="list active silences")
    p.add_argument("--all", action="store_true", help="include expired silences")
    p.set_defaults(func=cmd_silence_list)
    p = silence.add_parser("expire", help="end a silence now")
    p.add_argument("id")
    p.set_defaults(func=cmd_silence_expire)

    routes = sub.add_parser("routes", help="notification routes").add_subparsers(
        dest="routes_command", required=True
    )
    p = routes.add_parser("check", help="validate a routes file")
    p.add_argument("path")
    p.set_defaults(func=cmd_routes_check)
