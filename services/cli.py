"""The ``listenwell`` command line: one entry point for every process a user runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from services.process import setup_logging
from streams.settings import Settings

log = logging.getLogger("listenwell")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the Faust streams worker (the fused worker, or the stage of the split deployment
    ``--stage`` names) until SIGTERM/SIGINT."""
    from prometheus_client import CollectorRegistry

    from services.kafka_local import create_topics, partition_mismatches
    from services.process import start_metrics_server
    from streams.app import StageSettingsError, make_app
    from streams.faust_app import use_event_loop
    from streams.rules import RuleFileError

    use_event_loop(settings.event_loop)
    registry = CollectorRegistry()
    try:
        worker = make_app(settings, registry=registry, stage=args.stage)
    except StageSettingsError as exc:
        print(f"listenwell worker --stage {args.stage}: {exc}", file=sys.stderr)
        return 2
    except RuleFileError as exc:
        print(f"listenwell worker: {exc}", file=sys.stderr)
        return 2
    try:
        # Faust creates the topics it consumes, not those it only writes to: make sure every
        # registry topic exists (idempotent), or a publish would wait forever for its metadata.
        created = create_topics(
            settings.kafka_bootstrap, settings.topic_prefix, settings.partitions
        )
        mismatched = partition_mismatches(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            settings.partitions,
            worker.changelog_topics(),
        )
    except Exception as exc:  # KafkaLocalError or a kafka-python error: one line, not a trace
        print(f"listenwell worker: Kafka at {settings.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 1
    if mismatched:
        for problem in mismatched:
            print(f"listenwell worker: {problem}", file=sys.stderr)
        print(
            "listenwell worker: a brand's state must live in the partition its mentions arrive "
            "on; set LISTENWELL_PARTITIONS to the topics' count, or recreate the topics with the "
            "new count (docs/operations.md, Scaling out)",
            file=sys.stderr,
        )
        return 2
    if created:
        log.warning("created missing topics: %s", ", ".join(created))
    start_metrics_server(settings.worker_metrics_port, settings.metrics_host, registry)
    tune_garbage_collector()
    quiet_faust_worker(worker.app, args.log_level).execute_from_commandline()
    return 0


def quiet_faust_worker(app: Any, loglevel: str) -> Any:
    """Faust's worker for ``app``, logging at ``loglevel`` and without its terminal spinner.

    With the spinner (any level from WARNING up), Faust sets the root logger to DEBUG and adds a
    handler that turns the spinner for every record: every ``log.debug`` of aiokafka and Faust
    then builds a record that the output handler drops. aiokafka's producer logs one per record
    sent: ~3% of the worker's CPU in ``bench/pipeline.py``'s drain (py-spy).
    """
    from faust import Worker

    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker


def tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections for the worker process.

    What is loaded by now (rules, lexicons, the scorer's tables, Faust and Kafka clients) lives as
    long as the process: ``gc.freeze()`` takes it out of every later collection. A batch allocates
    tens of thousands of short-lived objects, so the first generation is collected every 10,000
    allocations instead of 700. The collector took ~15 µs of the core's ~89 µs per mention
    (``bench/core.py``, docs/performance.md).
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


def cmd_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from services import kafka_local

    return kafka_local.main(list(args.kafka_args))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from services import demo

    return demo.main(settings, speedup=args.speedup, seed=args.seed)


COMMAND_MODULES: tuple[str, ...] = (
    "services.connectors_cli",
    "services.api_cli",
    "services.notify.cli",
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
    p.add_argument(
        "--stage",
        choices=("fused", "scoring", "brands"),
        default="fused",
        help="fused (default): one agent scores and folds each batch of mentions.raw keyed by "
        "brand; or one stage of the split deployment: scoring (mentions.raw → mentions.scored, "
        "stateless) or brands (mentions.scored → alerts, customers, incidents), each scaled and "
        "restarted on its own (docs/topology.md). Never mix fused and split in one group",
    )
    p.set_defaults(func=cmd_worker)

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
    setup_logging(args.log_level)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: name the variable that is wrong
        print(f"listenwell: invalid LISTENWELL_* setting: {exc}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
