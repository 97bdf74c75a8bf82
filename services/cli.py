"""The ``listenwell`` command line: one entry point for every process a user runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from streams import topics
from streams.settings import Settings

log = logging.getLogger("listenwell")


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # kafka-python warns about transient metadata states (a topic's first poll) at WARNING.
    logging.getLogger("kafka").setLevel(max(logging.ERROR, logging.getLogger().level))


def _start_metrics(port: int, registry: object) -> None:
    from prometheus_client import start_http_server

    if port:
        host = Settings().metrics_host
        start_http_server(port, addr=host, registry=registry)  # type: ignore[arg-type]
        log.info("metrics on http://%s:%d/metrics", host, port)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Faust streams worker until SIGTERM/SIGINT."""
    from faust import Worker
    from prometheus_client import CollectorRegistry

    from services.kafka_local import create_topics
    from streams.app import make_app
    from streams.rules import RuleFileError

    registry = CollectorRegistry()
    try:
        worker = make_app(settings, registry=registry)
    except RuleFileError as exc:
        print(f"listenwell worker: {exc}", file=sys.stderr)
        return 2
    try:
        # Faust creates the topics it consumes, not those it only writes to: make sure every
        # registry topic exists (idempotent), or a publish would wait forever for its metadata.
        created = create_topics(settings.kafka_bootstrap, settings.topic_prefix)
    except Exception as exc:  # KafkaLocalError or a kafka-python error: one line, not a trace
        print(f"listenwell worker: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    _start_metrics(settings.worker_metrics_port, registry)
    faust_worker = Worker(worker.app, loglevel=args.log_level, quiet=True)
    faust_worker.execute_from_commandline()
    return 0


class _Stopper:
    """Turns SIGTERM/SIGINT into a flag a polling loop checks."""

    def __init__(self) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def cmd_notifier(args: argparse.Namespace, settings: Settings) -> int:
    """Consume the alerts topic and print one line per transition."""
    if args.routes:
        from services.notify_cli import run_notifier

        return run_notifier(args, settings)
    from kafka import KafkaConsumer
    from prometheus_client import CollectorRegistry

    from services.notifier import ConsoleNotifier, DeliveryLog, NotifierMetrics

    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    _start_metrics(settings.notifier_metrics_port, registry)
    delivery_log = DeliveryLog(
        Path(args.delivery_log)
        if args.delivery_log
        else settings.data_dir / "notifier" / f"{args.group}.delivered"
    )
    notifier = ConsoleNotifier(delivery_log, metrics, lambda line: print(line, flush=True))
    consumer = KafkaConsumer(
        topics.topic_name(topics.ALERTS, settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    stopper = _Stopper()
    try:
        while not stopper.stopping:
            batches = consumer.poll(timeout_ms=500)
            for messages in batches.values():
                notifier.handle_all(m.value for m in messages)
            if batches:
                consumer.commit()
    finally:
        consumer.close()
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Produce a simulated scenario to mentions.raw."""
    from connectors.simulate import SimulateSource

    source = SimulateSource(scenario=args.scenario, seed=args.seed, rate_scale=args.rate_scale)
    return _produce(source, settings, speedup=args.speedup)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Produce a JSONL/CSV file of mentions to mentions.raw."""
    from connectors.replay import ReplaySource

    return _produce(ReplaySource(Path(args.file)), settings, speedup=args.speedup)


def _produce(source: object, settings: Settings, *, speedup: float | None) -> int:
    from connectors.runner import MentionProducer, Progress, run_source

    def progress(p: Progress) -> None:
        print(f"\r{p}", end="", file=sys.stderr, flush=True)

    topic = topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix)
    with MentionProducer(settings.kafka_bootstrap) as producer:
        stats = run_source(source, producer, topic=topic, speedup=speedup, progress=progress)  # type: ignore[arg-type]
    print(file=sys.stderr)
    print(f"produced {stats.produced} mentions to {topic} in {stats.seconds:.1f}s")
    return 0


def cmd_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from services import kafka_local

    return kafka_local.main(list(args.kafka_args))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from services import demo

    return demo.main(speedup=args.speedup, seed=args.seed)


COMMAND_MODULES: tuple[str, ...] = (
    "services.connectors_cli",
    "services.api_cli",
    "services.notify_cli",
    "services.detect_cli",
    "services.score_cli",
    "services.rules_cli",
    "services.doctor",
    "services.incidents",
    "services.forget_cli",
)
"""Modules that add subcommands: each has ``register(subparsers)``, which adds parsers whose
``func(args, settings) -> int`` runs the command. Keep heavy imports inside those functions."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="listenwell", description=__doc__)
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run the Faust streams worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("notifier", help="print alert transitions from the alerts topic")
    p.add_argument("--group", default="listenwell-notifier", help="consumer group id")
    p.add_argument("--delivery-log", help="file of delivered transition ids")
    p.add_argument("--routes", help="routes.yaml: also deliver to its receivers (Slack, e-mail, …)")
    p.set_defaults(func=cmd_notifier)

    p = sub.add_parser("simulate", help="produce a simulated scenario to mentions.raw")
    p.add_argument("--scenario", default="crisis")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate-scale", type=float, default=1.0, help="multiply the mention volume")
    p.add_argument("--speedup", type=float, help="pace by event time, N times faster than real")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="produce a JSONL or CSV file of mentions to mentions.raw")
    p.add_argument("file")
    p.add_argument("--speedup", type=float, help="pace by event time, N times faster than real")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("kafka", help="local Apache Kafka: start | stop | status | create-topics")
    p.add_argument("kafka_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_kafka)

    p = sub.add_parser("demo", help="run the whole pipeline on a simulated crisis")
    p.add_argument("--speedup", type=float, default=1440.0, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``listenwell`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    _setup_logging(args.log_level)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: name the variable that is wrong
        print(f"listenwell: invalid LISTENWELL_* setting: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
