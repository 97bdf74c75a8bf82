"""``listenwell doctor``: is this installation ready to run? One ✓/✗ line per check.

Checks, in order: Kafka reachable; every registry topic present (with the prefix) with the right
partition count and cleanup policy; the rule file loads; the routes file loads (or "not
configured"); receivers configured; every secret the routes and the API reference is present
(values are never printed); each configured connector's ``check()``; metrics ports free. Every ✗
comes with a hint. The exit code is 1 when anything failed, else 0.

Each check is a small function returning :class:`Check` objects, so tests call them one by one.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from streams import topics
from streams.settings import Settings

if TYPE_CHECKING:
    from services.api import ApiSettings

OK, FAIL, SKIP = "✓", "✗", "–"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ✓, ✗ or – (not configured); ✗ has a hint."""

    status: str
    what: str
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def ok(what: str) -> Check:
    return Check(OK, what)


def fail(what: str, hint: str) -> Check:
    return Check(FAIL, what, hint)


def skip(what: str) -> Check:
    return Check(SKIP, what)


# --- Kafka ----------------------------------------------------------------------------------------


def check_kafka(settings: Settings) -> list[Check]:
    """Kafka answers, then every registry topic exists with its partitions and cleanup policy."""
    from services.kafka_local import answers_metadata, list_topics

    bootstrap = settings.kafka_bootstrap
    if not answers_metadata(bootstrap, timeout_ms=3000):
        return [
            fail(
                f"Kafka reachable at {bootstrap}",
                "start a broker (`listenwell kafka start` or `make kafka-start`) or point "
                "LISTENWELL_KAFKA_BOOTSTRAP at a running one",
            )
        ]
    checks = [ok(f"Kafka reachable at {bootstrap}")]
    present = {topic.name: topic for topic in list_topics(bootstrap)}
    for spec in topics.REGISTRY:
        name = topics.topic_name(spec, settings.topic_prefix)
        topic = present.get(name)
        if topic is None:
            checks.append(
                fail(
                    f"topic {name} present",
                    "create the registry's topics: `listenwell kafka create-topics` (set "
                    "LISTENWELL_TOPIC_PREFIX if you use a prefix)",
                )
            )
        elif (
            topic.partitions != spec.partition_count(settings.partitions)
            or topic.cleanup_policy != spec.cleanup_policy
        ):
            expected = spec.partition_count(settings.partitions)
            source = "LISTENWELL_PARTITIONS" if spec.scales else "streams/topics.py"
            checks.append(
                fail(
                    f"topic {name}: {topic.partitions} partitions, cleanup.policy "
                    f"{topic.cleanup_policy}",
                    f"expected {expected} partitions ({source}) and cleanup.policy "
                    f"{spec.cleanup_policy}; set LISTENWELL_PARTITIONS to the topics' count, or "
                    "recreate the topics (see docs/operations.md, Scaling out)",
                )
            )
        else:
            checks.append(
                ok(f"topic {name} ({topic.partitions} partitions, {topic.cleanup_policy})")
            )
    return checks


# --- rules, routes, receivers, secrets --------------------------------------------------------


def check_rules(settings: Settings) -> list[Check]:
    from streams.rules import RuleFileError, load_rule_paths

    path = settings.rules_path
    try:
        rules = load_rule_paths(path)
    except (RuleFileError, OSError) as exc:
        return [fail(f"rules load from {path}", f"{exc} (check with `listenwell rules check`)")]
    count = len(getattr(rules, "rules", ()))
    return [ok(f"rules load from {path}" + (f" ({count} rules)" if count else ""))]


def check_routes(path: Path | None) -> list[Check]:
    """The routes file loads, has receivers, and every secret it references is present."""
    if path is None:
        return [skip("routes not configured (--routes or LISTENWELL_ROUTES_PATH)")]
    from services.notify.config import RoutesFileError, SecretRef, load_routes

    try:
        tree = load_routes(path)
    except (RoutesFileError, OSError) as exc:
        return [fail(f"routes load from {path}", f"{exc} (check with `listenwell routes check`)")]
    checks = [ok(f"routes load from {path}")]
    if not tree.receivers:
        checks.append(fail("receivers configured", f"add receivers to {path}"))
        return checks
    checks.append(ok(f"receivers configured: {', '.join(sorted(tree.receivers))}"))
    for name, receiver in sorted(tree.receivers.items()):
        for field, value in _fields(receiver.config):
            if isinstance(value, SecretRef):
                where = f"env {value.env}" if value.env else f"file {value.file}"
                try:
                    value.resolve()
                except (KeyError, OSError):
                    checks.append(
                        fail(
                            f"secret {name}.{field} present ({where})",
                            f"set {value.env}" if value.env else f"create {value.file}",
                        )
                    )
                else:
                    checks.append(ok(f"secret {name}.{field} present ({where})"))
    return checks


def _fields(model: Any) -> Iterable[tuple[str, Any]]:
    return ((name, getattr(model, name)) for name in type(model).model_fields)


def check_api_secret(api: ApiSettings) -> list[Check]:
    """The API's webhook secret, when configured by variable or file (never printed)."""
    if api.webhook_secret_file is not None:
        path = api.webhook_secret_file
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            return [
                fail(
                    "secret api webhook present (LISTENWELL_WEBHOOK_SECRET_FILE)",
                    f"{path} is missing or empty",
                )
            ]
        return [ok("secret api webhook present (LISTENWELL_WEBHOOK_SECRET_FILE)")]
    if api.webhook_secret is not None and api.webhook_secret.get_secret_value():
        return [ok("secret api webhook present (LISTENWELL_WEBHOOK_SECRET)")]
    return [skip("api webhook secret not configured (only `listenwell api` needs it)")]


# --- connectors -----------------------------------------------------------------------------------


def check_connectors(path: Path | None) -> list[Check]:
    """Each configured connector instance's ``check()``."""
    if path is None:
        return [skip("connectors not configured (LISTENWELL_CONNECTORS_CONFIG)")]
    from connectors.config import ConfigError, build_source, load_config

    try:
        config = load_config(path)
    except (ConfigError, OSError) as exc:
        return [fail(f"connectors config {path}", str(exc))]
    checks: list[Check] = []
    for instance in config.instances:
        try:
            problems = build_source(instance).check()
        except Exception as exc:  # a broken source still gives a readable line
            problems = [f"check failed: {type(exc).__name__}: {exc}"]
        what = f"connector {instance.name} ({instance.source}) check"
        if problems:
            checks.append(fail(what, "; ".join(problems)))
        else:
            checks.append(ok(what))
    return checks


# --- ports ----------------------------------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(settings: Settings, is_free: Callable[[str, int], bool] = port_free) -> list[Check]:
    """Metrics ports this machine's processes would listen on are free (0 = off)."""
    checks: list[Check] = []
    for process, variable, port in (
        ("worker", "LISTENWELL_WORKER_METRICS_PORT", settings.worker_metrics_port),
        ("notifier", "LISTENWELL_NOTIFIER_METRICS_PORT", settings.notifier_metrics_port),
        ("connectors", "LISTENWELL_CONNECTOR_METRICS_PORT", settings.connector_metrics_port),
    ):
        if not port:
            checks.append(skip(f"{process} metrics off ({variable}=0)"))
        elif is_free(settings.metrics_host, port):
            checks.append(ok(f"{process} metrics port {port} free"))
        else:
            checks.append(
                fail(
                    f"{process} metrics port {port} free",
                    f"another process listens on {settings.metrics_host}:{port} (a {process} "
                    f"already running?); stop it or set {variable}",
                )
            )
    return checks


# --- the command ----------------------------------------------------------------------------------


def run_checks(
    settings: Settings, *, routes: Path | None, connectors: Path | None, api: ApiSettings
) -> list[Check]:
    """Every check, in report order."""
    return [
        *check_kafka(settings),
        *check_rules(settings),
        *check_routes(routes),
        *check_api_secret(api),
        *check_connectors(connectors),
        *check_ports(settings),
    ]


def report(checks: list[Check], out: TextIO) -> int:
    """Print one line per check (and its hint); 1 when anything failed."""
    for check in checks:
        print(f"{check.status} {check.what}", file=out)
        if check.failed:
            print(f"    hint: {check.hint}", file=out)
    failed = sum(check.failed for check in checks)
    print(f"{failed} problem(s)" if failed else "all good", file=out)
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """``listenwell doctor``."""
    from pydantic import ValidationError

    from services.api import ApiSettings

    try:
        api = ApiSettings()
    except ValidationError as exc:
        print(f"listenwell doctor: invalid LISTENWELL_* setting of the API: {exc}", file=sys.stderr)
        return 2
    checks = run_checks(
        settings,
        routes=Path(args.routes) if args.routes else settings.routes_path,
        connectors=Path(args.connectors) if args.connectors else settings.connectors_config,
        api=api,
    )
    return report(checks, sys.stdout)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listenwell doctor``."""
    p = sub.add_parser(
        "doctor", help="check Kafka, topics, rules, routes, secrets, connectors, ports"
    )
    p.add_argument("--routes", help="routes file (default $LISTENWELL_ROUTES_PATH)")
    p.add_argument("--connectors", help="connector config (default $LISTENWELL_CONNECTORS_CONFIG)")
    p.set_defaults(func=cmd_doctor)
