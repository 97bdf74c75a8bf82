"""A real, single-node Apache Kafka (KRaft) on 127.0.0.1, run with the machine's Java.

``listenwell kafka start|stop|status|create-topics`` lands in :func:`main`. The broker's jars
are resolved once from Maven Central by Maven (``deploy/kafka/pom.xml`` → ``deploy/kafka/lib``);
each port gets its own broker home ``.listenwell/kafka-<port>/`` (config, data, ``kafka.log``,
``kafka.pid``). Every failure is reported as one line (:class:`KafkaLocalError`) instead of a
hang or a traceback.

Python API (used by tests and ``make demo``)::

    kafka = LocalKafka(port=free_port())
    kafka.start()                      # idempotent; raises KafkaLocalError with the reason
    create_topics(kafka.bootstrap)     # every topic of streams.topics.REGISTRY
    kafka.stop(wipe=True)              # only the broker this home's pid file names
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.topics import DEFAULT_PARTITIONS, REGISTRY, topic_name

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
POM = KAFKA_DEPLOY_DIR / "pom.xml"
LIB_DIR = KAFKA_DEPLOY_DIR / "lib"
STATE_DIR = REPO_ROOT / ".listenwell"
DEFAULT_PORT = 9092
HOST = "127.0.0.1"
PORT_ENV = "LISTENWELL_KAFKA_PORT"
PREFIX_ENV = "LISTENWELL_TOPIC_PREFIX"
_MARKER = ".resolved"
_MAIN_CLASS = "kafka.Kafka"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_JAVA_EXCEPTION = re.compile(r"^(Caused by: )?[\w.$]+(Exception|Error)\b")


class KafkaLocalError(RuntimeError):
    """Why the local broker could not be resolved, started, stopped or reached: one line."""


# --------------------------------------------------------------------------------------------
# Small helpers


def free_port() -> int:
    """A free TCP port on 127.0.0.1 whose successor is free too (the broker's controller port)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and _port_free(port) and _port_free(port + 1):
            return port
    raise KafkaLocalError("could not find two consecutive free TCP ports on 127.0.0.1")


def _port_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _tcp_open(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _cluster_id() -> str:
    """A fresh cluster id in Kafka's ``Uuid`` text form (what ``StorageTool random-uuid`` prints).

    Generated here rather than by a second JVM launch, which would add a second or so to every
    first start. Like Kafka's ``Uuid.randomUuid`` it never starts with ``-``.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaLocalError(
            "java not found on PATH (Kafka needs Java 11+): "
            "install one, e.g. `apt-get install openjdk-17-jre-headless`"
        )
    return java


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _first_error_line(lines: Sequence[str]) -> str | None:
    """The most telling line of a log: its last ERROR/FATAL line, with the exception it logged.

    Kafka logs ``ERROR Exiting Kafka due to fatal exception`` and puts the reason on the next line
    (``java.lang.RuntimeException: Stored node id ...``), so that line is appended when present.
    """
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if "ERROR" in line or "FATAL" in line:
            reason = line.strip()
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if _JAVA_EXCEPTION.match(following):
                reason = f"{reason}: {following}"
            return reason
    for line in reversed(lines):
        if _JAVA_EXCEPTION.match(line.strip()) or "Error:" in line:
            return line.strip()
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent ``start``/resolve calls (``make test`` and ``make demo`` at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_kafka_client() -> Iterator[None]:
    """kafka-python logs every refused connection; while we poll a starting broker that is noise."""
    logger = logging.getLogger("kafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _admin(bootstrap: str, timeout_ms: int = 5000) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="listenwell-kafka-local",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def answers_metadata(bootstrap: str, timeout_ms: int = 2000) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers a metadata request."""
    host, _, port = bootstrap.rpartition(":")
    if host == HOST and port.isdigit() and not _tcp_open(int(port)):
        return False  # nothing listens: skip the client's bootstrap timeout
    try:
        with _quiet_kafka_client():
            admin = _admin(bootstrap, timeout_ms)
            try:
                admin.list_topics()
            finally:
                admin.close()
    except Exception:  # any failure means "not answering"; the caller decides what to say
        return False
    return True


# --------------------------------------------------------------------------------------------
# Jars


def resolve_jars(lib_dir: Path = LIB_DIR, pom: Path = POM) -> Path:
    """Resolve Kafka's jars from Maven Central into ``lib_dir`` unless already done for this pom.

    A marker file holding the pom's hash is written after Maven succeeds, so an interrupted run or
    an edited pom resolves again.
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = lib_dir / _MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return lib_dir
    with _locked(STATE_DIR / "kafka-lib.lock"):
        if marker.is_file() and marker.read_text().strip() == digest:
            return lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLocalError(
                "mvn not found on PATH (needed once to fetch Kafka's jars from Maven Central): "
                "install Maven, e.g. `apt-get install maven`"
            )
        if lib_dir.exists():
            shutil.rmtree(lib_dir)
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={lib_dir}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()
            # Maven's first [ERROR] line holds the cause; the later ones are help links.
            lines = [_ANSI.sub("", line).strip() for line in output]
            errors = [line for line in lines if line.startswith("[ERROR]") and line[7:].strip()]
            reason = errors[0] if errors else (lines[-1] if lines else "no output")
            raise KafkaLocalError(f"mvn could not resolve Kafka's jars from {pom}: {reason}")
        if not any(lib_dir.glob("kafka_2.13-*.jar")):
            raise KafkaLocalError(f"mvn succeeded but {lib_dir} holds no kafka_2.13 jar")
        marker.write_text(digest + "\n")
    return lib_dir


# --------------------------------------------------------------------------------------------
# The broker


def _server_properties(
    port: int, controller_port: int, data_dir: Path, overrides: Mapping[str, str] | None = None
) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # A local broker for development and replays: keep a month of data, without a size cap.
        "log.retention.hours": "720",
        "log.retention.bytes": "-1",
        **(overrides or {}),
    }
    lines = ["# Written by services/kafka_local.py on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


_LOG4J_PROPERTIES = """\
# Written by services/kafka_local.py: everything goes to stdout, which is kafka.log.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
"""


@dataclass(frozen=True)
class Topic:
    """A topic as the broker reports it (for ``status``)."""

    name: str
    partitions: int
    cleanup_policy: str


@contextlib.contextmanager
def broker_unless_given(bootstrap: str | None) -> Iterator[tuple[str, LocalKafka | None]]:
    """``(bootstrap, None)`` when a broker is given; else a :class:`LocalKafka` on a free port,
    started for the block as ``(its bootstrap, it)`` and stopped by its pid with its home removed
    when the block ends, raises or is interrupted by Ctrl-C (or by a SIGTERM in a command that
    called :func:`services.process.exit_on_sigterm`, as every benchmark does); the benchmarks'
    ``--bootstrap`` option."""
    if bootstrap is not None:
        yield bootstrap, None
        return
    broker = LocalKafka(free_port())
    try:
        broker.start()
        yield broker.bootstrap, broker
    finally:
        broker.stop(wipe=True)


class LocalKafka:
    """One single-node KRaft broker on ``127.0.0.1:port``, homed in ``.listenwell/kafka-<port>/``.

    Only the process named by the home's pid file is ever signalled, and only if its command line
    is this home's ``kafka.Kafka``; a broker started by anyone else is never touched.
    """

    def __init__(
        self,
        port: int,
        controller_port: int | None = None,
        home: Path | None = None,
        broker_settings: Mapping[str, str] | None = None,
    ) -> None:
        """``broker_settings``: ``server.properties`` entries that replace or add to the defaults
        (e.g. ``{"log.cleaner.backoff.ms": "1000"}`` for a log cleaner that looks for dirty
        logs every second instead of every 15 s, as ``bench/restart.py`` uses)."""
        self.port = port
        self.controller_port = controller_port if controller_port is not None else port + 1
        self.home = home if home is not None else STATE_DIR / f"kafka-{port}"
        self.lib_dir = LIB_DIR
        self.broker_settings = dict(broker_settings or {})

    # paths -----------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string for clients: ``127.0.0.1:<port>``."""
        return f"{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's log (stdout, stderr and log4j output)."""
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        """Holds the pid of the broker this home started."""
        return self.home / "kafka.pid"

    @property
    def config_file(self) -> Path:
        """The generated ``server.properties``."""
        return self.home / "server.properties"

    @property
    def _lock_file(self) -> Path:
        return self.home.parent / f"{self.home.name}.start.lock"

    @property
    def data_dir(self) -> Path:
        """Kafka's ``log.dirs`` (topic data and KRaft metadata)."""
        return self.home / "data"

    # state -----------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The pid of this home's running broker, or None (a stale pid file counts as None)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._is_our_broker(pid) else None

    def _is_our_broker(self, pid: int) -> bool:
        # Reap it if it is our own exited child, so a zombie does not look alive.
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return False
        except OSError:  # no procfs: fall back to "a process with that pid exists"
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        args = [part.decode(errors="replace") for part in cmdline]
        return _MAIN_CLASS in args and str(self.config_file) in args

    def is_up(self) -> bool:
        """True when this home's broker process is alive and answers metadata requests."""
        return self.pid is not None and answers_metadata(self.bootstrap)

    # start -----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60) -> None:
        """Start the broker unless it already runs; return once it answers metadata requests.

        Raises :class:`KafkaLocalError` (one line) when Java or Maven is missing, a port is taken by
        another process, the broker exits during start, or it does not answer within ``timeout_s``.
        """
        with _locked(self._lock_file):
            running = self.pid
            if running is not None:
                self._wait_until_up(running, None, timeout_s)
                return
            self.pid_file.unlink(missing_ok=True)
            for port, role in ((self.port, "broker"), (self.controller_port, "controller")):
                if not _port_free(port):
                    raise KafkaLocalError(
                        f"cannot start Kafka: port {HOST}:{port} ({role} port) is already in use "
                        f"by another process; stop it or choose another port with --port"
                    )
            java = _java()
            lib_dir = resolve_jars(self.lib_dir)
            self._prepare_home(java, lib_dir)
            process = self._launch(java, lib_dir)
            try:
                self._wait_until_up(process.pid, process, timeout_s)
            except KafkaLocalError:
                self._terminate(process.pid, grace_s=10)
                self.pid_file.unlink(missing_ok=True)
                raise

    def _prepare_home(self, java: str, lib_dir: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.config_file.write_text(
            _server_properties(self.port, self.controller_port, self.data_dir, self.broker_settings)
        )
        (self.home / "log4j.properties").write_text(_LOG4J_PROPERTIES)
        if (self.data_dir / "meta.properties").is_file():
            return
        command = [
            java, *self._jvm_flags(), "-cp", f"{lib_dir}/*", "kafka.tools.StorageTool", "format",
            "-t", _cluster_id(), "-c", str(self.config_file), "--ignore-formatted",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).splitlines()
            reason = _first_error_line(output) or (output[-1] if output else "no output")
            raise KafkaLocalError(f"formatting Kafka storage in {self.data_dir} failed: {reason}")

    def _jvm_flags(self) -> list[str]:
        return [
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
        ]

    def _launch(self, java: str, lib_dir: Path) -> subprocess.Popen[bytes]:
        if self.log_file.exists():
            self.log_file.replace(self.home / "kafka.log.1")
        command = [
            java, "-Xmx512m", *self._jvm_flags(),
            "-cp", f"{lib_dir}/*", _MAIN_CLASS, str(self.config_file),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # survives the CLI and Ctrl-C in the terminal that ran it
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    def _wait_until_up(
        self, pid: int, process: subprocess.Popen[bytes] | None, timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if process is not None:
                exited = process.poll() is not None
            else:
                exited = not self._is_our_broker(pid)
            if exited:
                lines = _tail(self.log_file, 200)
                reason = _first_error_line(lines) or (lines[-1] if lines else "no output")
                raise KafkaLocalError(f"Kafka exited during start (see {self.log_file}): {reason}")
            if answers_metadata(self.bootstrap):
                return
            if time.monotonic() > deadline:
                tail = " | ".join(_tail(self.log_file, 3)) or "log is empty"
                raise KafkaLocalError(
                    f"Kafka did not answer on {self.bootstrap} within {timeout_s:.0f} s "
                    f"(see {self.log_file}): {tail}"
                )
            time.sleep(0.2)

    # stop ------------------------------------------------------------------------------------
    def stop(self, wipe: bool = False) -> None:
        """Stop this home's broker (SIGTERM, then SIGKILL after 20 s); ``wipe`` deletes the home."""
        pid = self.pid
        if pid is not None:
            self._terminate(pid, grace_s=20)
        self.pid_file.unlink(missing_ok=True)
        if wipe:
            if self.home.exists():
                shutil.rmtree(self.home)
            self._lock_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, grace_s: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not self._is_our_broker(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            if not self._is_our_broker(pid):
                return
            time.sleep(0.1)

    # status ----------------------------------------------------------------------------------
    def topics(self) -> list[Topic]:
        """The broker's (non-internal) topics with partition count and cleanup policy."""
        return list_topics(self.bootstrap)


def list_topics(bootstrap: str) -> list[Topic]:
    """Topics on the broker at ``bootstrap``, internal ones (``__*``) left out, sorted by name."""
    from kafka.admin import ConfigResource, ConfigResourceType

    with _quiet_kafka_client():
        admin = _admin(bootstrap)
        try:
            described = [
                t
                for t in admin.describe_topics()
                if not t.get("is_internal") and not str(t["name"]).startswith("__")
            ]
            if not described:
                return []
            names = sorted(str(t["name"]) for t in described)
            partitions = {str(t["name"]): len(t["partitions"]) for t in described}
            resources = [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None})
                for name in names
            ]
            configs = admin.describe_configs(resources, config_filter="all")
        finally:
            admin.close()
    by_topic = configs.get("topic", {})
    return [
        Topic(name, partitions[name], _config_value(by_topic.get(name, {}), "cleanup.policy"))
        for name in names
    ]


def partition_mismatches(
    bootstrap: str, prefix: str, partitions: int, changelogs: Sequence[str] = ()
) -> list[str]:
    """What is wrong with the partition counts of the scaling topics on the broker, one sentence
    each (empty: nothing): each registry topic that scales and each of ``changelogs`` (the
    worker's table changelog topics) that exists must have ``partitions`` partitions.

    A worker whose topics disagree would put a brand's state in another partition than its
    mentions, or leave partitions no worker reads: it must not start.
    """
    present = {topic.name: topic.partitions for topic in list_topics(bootstrap)}
    wanted = [topic_name(spec, prefix) for spec in REGISTRY if spec.scales] + list(changelogs)
    return [
        f"topic {name} has {present[name]} partitions, LISTENWELL_PARTITIONS is {partitions}"
        for name in wanted
        if name in present and present[name] != partitions
    ]


def _config_value(configs: dict[str, Any], key: str) -> str:
    entry = configs.get(key)
    if isinstance(entry, dict):
        return str(entry.get("value", "?"))
    return "?" if entry is None else str(entry)


def create_topics(
    bootstrap: str, prefix: str = "", partitions: int = DEFAULT_PARTITIONS
) -> list[str]:
    """Create every topic of the registry that the broker lacks; return the names created.

    Partitions and topic configuration (cleanup policy, retention) come from
    :data:`streams.topics.REGISTRY`, the scaling topics with ``partitions`` partitions
    (``LISTENWELL_PARTITIONS``); replication factor 1 (a single local broker).
    """
    with _quiet_kafka_client():
        admin = _admin(bootstrap)
        try:
            existing = set(admin.list_topics())
            wanted = {
                topic_name(spec, prefix): {
                    "num_partitions": spec.partition_count(partitions),
                    "replication_factor": 1,
                    "configs": spec.config(),
                }
                for spec in REGISTRY
                if topic_name(spec, prefix) not in existing
            }
            if wanted:
                admin.create_topics(wanted, wait_for_metadata=True)
        finally:
            admin.close()
    return sorted(wanted)


# --------------------------------------------------------------------------------------------
# CLI


def _port_default() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        raise KafkaLocalError(f"{PORT_ENV}={raw!r} is not a port number") from None


def _parser(default_port: int) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"broker port on {HOST} (default: ${PORT_ENV} or {DEFAULT_PORT})",
    )
    common.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port (default: port+1)"
    )
    parser = argparse.ArgumentParser(
        prog="listenwell kafka", description="A local single-node Apache Kafka (KRaft)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", parents=[common], help="start the broker (idempotent)")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it")
    stop = commands.add_parser("stop", parents=[common], help="stop the broker this tool started")
    stop.add_argument("--wipe", action="store_true", help="also delete its data and logs")
    commands.add_parser("status", parents=[common], help="up/down, port and topics")
    create = commands.add_parser(
        "create-topics", parents=[common], help="create the registry's topics"
    )
    create.add_argument(
        "--prefix",
        default=os.environ.get(PREFIX_ENV, ""),
        help=f"topic name prefix (default: ${PREFIX_ENV} or none)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``listenwell kafka start|stop|status|create-topics``; returns the process exit code."""
    try:
        args = _parser(_port_default()).parse_args(list(argv) if argv is not None else None)
        kafka = LocalKafka(args.port, args.controller_port)
        if args.command == "start":
            return _cmd_start(kafka, args.timeout)
        if args.command == "stop":
            return _cmd_stop(kafka, args.wipe)
        if args.command == "status":
            return _cmd_status(kafka)
        return _cmd_create_topics(kafka, args.prefix)
    except KafkaLocalError as error:
        print(f"kafka: error: {error}", file=sys.stderr)
        return 1


def _cmd_start(kafka: LocalKafka, timeout_s: float) -> int:
    if kafka.is_up():
        print(f"kafka: already running on {kafka.bootstrap} (pid {kafka.pid})")
        return 0
    began = time.monotonic()
    kafka.start(timeout_s=timeout_s)
    print(
        f"kafka: up on {kafka.bootstrap} (pid {kafka.pid}) after {time.monotonic() - began:.1f} s;"
        f" log {kafka.log_file}"
    )
    return 0


def _cmd_stop(kafka: LocalKafka, wipe: bool) -> int:
    pid = kafka.pid
    if pid is None and _tcp_open(kafka.port):
        print(
            f"kafka: port {kafka.port} is served by a process listenwell did not start; "
            "leaving it alone",
            file=sys.stderr,
        )
    kafka.stop(wipe=wipe)
    wiped = f"; deleted {kafka.home}" if wipe else ""
    if pid is None:
        print(f"kafka: not running (port {kafka.port}){wiped}")
    else:
        print(f"kafka: stopped pid {pid} (port {kafka.port}){wiped}")
    return 0


def _cmd_status(kafka: LocalKafka) -> int:
    pid = kafka.pid
    if not answers_metadata(kafka.bootstrap):
        suffix = f"; pid {pid} is alive but not answering" if pid is not None else ""
        print(f"kafka: down (port {kafka.port}){suffix}")
        return 1
    owner = f"pid {pid}" if pid is not None else "not started by listenwell"
    print(f"kafka: up on {kafka.bootstrap} ({owner})")
    try:
        topics = list_topics(kafka.bootstrap)
    except Exception as error:  # the broker answered a moment ago; say what failed, don't crash
        print(f"  (could not list topics: {type(error).__name__}: {error})")
        return 0
    if not topics:
        print("  no topics (run `listenwell kafka create-topics`)")
    width = max((len(t.name) for t in topics), default=0)
    for topic in topics:
        print(
            f"  {topic.name:<{width}}  partitions={topic.partitions}"
            f"  cleanup.policy={topic.cleanup_policy}"
        )
    return 0


def _cmd_create_topics(kafka: LocalKafka, prefix: str) -> int:
    if not answers_metadata(kafka.bootstrap):
        raise KafkaLocalError(
            f"no broker answers on {kafka.bootstrap}; start one with `listenwell kafka start`"
        )
    from streams.settings import Settings

    created = create_topics(kafka.bootstrap, prefix, Settings().partitions)
    if created:
        for name in created:
            print(f"kafka: created topic {name}")
    else:
        print(f"kafka: all {len(REGISTRY)} registry topics already exist on {kafka.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
