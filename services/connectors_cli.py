"""The connector runtime's CLI: ``listenwell simulate``, ``replay`` and ``connect`` run sources
through ``connectors.runner.InstanceRunner``; ``listenwell connectors list|check`` describe them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from streams.clock import SYSTEM_CLOCK
from streams.settings import Settings

if TYPE_CHECKING:
    from connectors.base import Source

log = logging.getLogger("listenwell.connectors")

DEFAULT_CONFIG = "connectors.yaml"


def _config_path(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.config) if args.config else settings.connectors_config or Path(DEFAULT_CONFIG)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Produce a simulated scenario to mentions.raw."""
    from connectors.simulate import SimulateSource

    source = SimulateSource(scenario=args.scenario, seed=args.seed, rate_scale=args.rate_scale)
    return _produce(source, settings, speedup=args.speedup)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Produce a JSONL/CSV file of mentions to mentions.raw."""
    from connectors.replay import ReplaySource

    return _produce(ReplaySource(Path(args.file)), settings, speedup=args.speedup)


def _produce(source: Source, settings: Settings, *, speedup: float | None) -> int:
    from connectors.producer import MentionProducer
    from connectors.runner import Progress, run_source
    from streams import topics

    def progress(p: Progress) -> None:
        print(f"\r{p}", end="", file=sys.stderr, flush=True)

    topic = topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix)
    with MentionProducer(settings.kafka_bootstrap, key_by=settings.raw_key) as producer:
        stats = run_source(source, producer, topic=topic, speedup=speedup, progress=progress)
    print(file=sys.stderr)
    print(f"produced {stats.produced} mentions to {topic} in {stats.seconds:.1f}s")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every source kind with its settings fields."""
    from connectors.registry import describe_kinds

    for line in describe_kinds():
        print(line)
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``check()`` of one instance; print what is wrong and exit 1, or ``ok``."""
    from connectors.config import ConfigError, build_source, load_config

    try:
        instance = load_config(_config_path(args, settings)).get(args.instance)
    except (ConfigError, KeyError) as exc:
        print(f"listenwell connectors check: {exc.args[0]}", file=sys.stderr)
        return 1
    try:
        problems = build_source(instance).check()
    except Exception as exc:  # a broken source must still give a readable answer
        problems = [f"check failed: {type(exc).__name__}: {exc}"]
    if problems:
        for problem in problems:
            print(f"{instance.name}: {problem}")
        return 1
    print(f"{instance.name}: ok ({instance.source}, brand {instance.brand})")
    return 0


class ProgressPrinter:
    """Live progress: redraws one line per instance on a terminal, else prints them periodically."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn = 0

    def show(self, lines: list[str]) -> None:
        if self.tty:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            for line in lines:
                self.out.write(f"{line}\x1b[K\n")
            self._drawn = len(lines)
        else:
            for line in lines:
                self.out.write(f"{line}\n")
        self.out.flush()


def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    """Run every instance of the config until SIGTERM/SIGINT or until all finite sources end."""
    from prometheus_client import CollectorRegistry

    from connectors.checkpoints import KafkaStateStore
    from connectors.config import ConfigError, build_source, load_config
    from connectors.producer import MentionProducer, MentionSink, ProducerError
    from connectors.runner import ConnectorMetrics, InstanceRunner
    from connectors.supervisor import Supervisor, progress_lines
    from services.process import Stopper, start_metrics_server
    from streams import topics

    try:
        config = load_config(_config_path(args, settings))
    except ConfigError as exc:
        print(f"listenwell connect: {exc}", file=sys.stderr)
        return 2
    registry = CollectorRegistry()
    metrics = ConnectorMetrics(registry)
    start_metrics_server(settings.connector_metrics_port, settings.metrics_host, registry)
    bootstrap = settings.kafka_bootstrap
    state = KafkaStateStore(
        bootstrap, topics.topic_name(topics.CONNECTORS_STATE, settings.topic_prefix)
    )

    def sink_factory(name: str) -> MentionSink:
        return MentionProducer(
            bootstrap, client_id=f"listenwell-connector-{name}", key_by=settings.raw_key
        )

    raw_topic = topics.topic_name(topics.MENTIONS_RAW, settings.topic_prefix)
    runners = []
    for instance in config.instances:
        try:
            source = build_source(instance)
            problems = source.check()
        except Exception as exc:  # a source that cannot even be built: say which and why
            print(
                f"listenwell connect: {config.source}:{instance.line}: {instance.name}: "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            return 2
        for problem in problems:
            log.warning("%s: check: %s", instance.name, problem)
        runner = InstanceRunner(
            instance.name,
            instance.source,
            source,
            sink_factory=sink_factory,
            state=state,
            topic=raw_topic,
            metrics=metrics,
            interval_s=instance.interval_s,
            speedup=instance.speedup,
        )
        if problems:
            runner.status.last_error = "; ".join(problems)
        runners.append(runner)
    supervisor = Supervisor(runners, state)
    Stopper(supervisor.request_stop)
    try:
        supervisor.start()
    except ProducerError as exc:
        print(f"listenwell connect: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # kafka-python errors while reading checkpoints
        print(f"listenwell connect: cannot read checkpoints at {bootstrap}: {exc}", file=sys.stderr)
        return 1
    printer = ProgressPrinter(sys.stderr, tty=sys.stderr.isatty())
    every = args.progress_interval or (1.0 if printer.tty else 10.0)
    try:
        while not supervisor.finished() and not supervisor.wait(every):
            printer.show(progress_lines(supervisor.statuses(), SYSTEM_CLOCK.time()))
    finally:
        supervisor.stop()
        state.close()
    printer.show(progress_lines(supervisor.statuses(), SYSTEM_CLOCK.time()))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate``, ``replay``, ``connectors list|check`` and ``connect``."""
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

    connectors = sub.add_parser("connectors", help="connector source kinds and instances")
    csub = connectors.add_subparsers(dest="connectors_command", required=True)
    p = csub.add_parser("list", help="every source kind with its settings")
    p.set_defaults(func=cmd_list)
    p = csub.add_parser("check", help="run check() of one instance and print what is wrong")
    p.add_argument("instance", help="instance name from the config file")
    p.add_argument("--config", help=f"connector config (default {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("connect", help="run the connector instances of a config file")
    p.add_argument("--config", help=f"connector config (default {DEFAULT_CONFIG})")
    p.add_argument(
        "--progress-interval",
        type=float,
        help="seconds between progress lines (default 1 on a terminal, else 10)",
    )
    p.set_defaults(func=cmd_connect)
