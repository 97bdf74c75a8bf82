"""Fault injection (``make chaos``): kill -9 every part of a running pipeline, then prove that no
mention was lost or counted twice, that the alerts are those of an undisturbed run, and that each
alert transition reached Slack once.

One run, on a Kafka broker of its own (a free port, its own home, stopped by pid at the end):

1. **Undisturbed baseline.** N simulated mentions (the seeded ``crisis`` scenario, scaled to N and
   written as a replay file) go through ``listenwell connect`` (unpaced) → ``mentions.raw`` → one
   worker; its ``alerts`` are the reference.
2. **Chaos.** The same mentions, paced by event time over ``--duration`` seconds, through the
   connector runner → Kafka → worker(s) → notifier (routes: every alert its own group, no wait) →
   a local Slack-like receiver. At seeded random moments the driver sends SIGKILL to: the worker;
   the notifier; the connector runner; the broker itself (restarted on the same port and home);
   and, in a last phase with a second worker in the consumer group, one of them (rebalances).
   With ``--deployment split`` the worker is the split deployment instead (one ``--stage
   scoring`` and one ``--stage brands`` process, ``mentions.scored`` between them) and the kills
   are of the scoring stage and of the brand stage, each in turn, besides the notifier, the
   runner and the broker; its alerts must still equal the (fused) baseline's.
   Each killed process is restarted at once, as a process supervisor would; a process that exits
   by itself is restarted too and reported.
3. **Checks.** Every mention id produced is in ``mentions.scored`` (0 lost); ``mentions.scored`` is
   at-least-once by design (``streams/pipeline.py``): a record replayed after a crash is published
   again, so re-deliveries are counted apart and each id published more than once is checked
   (``redelivered``): copies of one raw record must be equal except ``scored_at`` (0 replays
   scored differently, the differing fields are named); copies whose ``mention`` differs mean two
   raw records of one id were both scored (0: the worker's dedupe keeps one); and every copy
   after the first must be scored inside a fault window — from a worker or broker kill (or a
   worker joining) until the killed part made progress again, plus ``SETTLE_S`` — where the
   group replays what it had not committed (0 re-delivered outside one: this catches a
   byte-identical runner re-send scored twice, which content alone cannot tell from a replay,
   except inside a window). The children run a copy of the source taken
   when the run starts (``snapshot_code``), so an edit of the working tree during the run cannot
   make a restarted process score differently; files edited meanwhile are reported. The alert
   transitions (fingerprint, state, starts_at) equal the baseline's; every firing/resolved
   transition has exactly one Slack message — except the documented exceptions, counted: a second
   message when the notifier was killed between Slack's answer and its notification log's fsync,
   and no message
   for an episode whose firing and resolve both reached the notifier in one batch (a group that
   starts resolved says nothing, as in Alertmanager); and the recovery time after each kill
   (until the killed part makes progress again).

Usage: ``.venv/bin/python bench/chaos.py [--mentions 50000] [--seed 7] [--duration 300]
[--kills worker,notifier,runner,broker,scoring,brands,pair,pair] [--port P]``. Prints progress
lines, a summary table, writes ``bench/results/chaos.json`` and exits 1 if any check fails. Logs
stay in ``.listenwell/chaos/<run>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.checkpoints import KafkaStateStore  # noqa: E402
from connectors.replay import write_jsonl  # noqa: E402
from connectors.simulate import generate  # noqa: E402
from services.demo import scrape, total  # noqa: E402
from services.kafka_local import (  # noqa: E402
    KafkaLocalError,
    LocalKafka,
    create_topics,
    free_port,
)
from streams import topics  # noqa: E402
from streams.records import Alert, AlertState, Mention, ScoredMention  # noqa: E402
from streams.topic_reader import read_topic  # noqa: E402

RESULTS = REPO / "bench" / "results" / "chaos.json"
Deployment = Literal["fused", "split"]
KINDS: dict[Deployment, tuple[str, ...]] = {
    "fused": ("worker", "notifier", "runner", "broker", "pair"),
    "split": ("scoring", "brands", "notifier", "runner", "broker"),
}
DEFAULT_KILLS: dict[Deployment, tuple[str, ...]] = {
    "fused": ("worker", "notifier", "runner", "broker", "pair", "pair"),
    "split": ("scoring", "notifier", "brands", "broker", "scoring", "brands"),
}
STAGE_KILLS = {"scoring": "scoring-a", "brands": "brands-a"}
"""Kill kinds that target one stage of the split deployment (``listenwell worker --stage
scoring|brands``). Fused and split never meet in one run's consumer group: the brand states of
one cannot be taken over by the other (``streams.pipeline.StateTopicMismatch``)."""
INSTANCE = "chaos-replay"
SLACK_ENV = "LISTENWELL_CHAOS_SLACK_URL"
NOTIFIER_GROUP = "chaos-notifier"
KILL_WINDOW_S = 1.0
SETTLE_S = 10.0
"""A fault window lasts from a worker or broker kill until the killed part made progress again,
plus this (one session timeout): replays of the records since the last commit happen inside."""
CRASH_WINDOW_S = 60.0
"""The fault window after a worker that exited by itself is restarted."""
"""A second message whose first copy reached Slack this soon before a notifier kill is the
documented send-then-log window (the notification log is written after Slack answers)."""

ROUTES = f"""\
# Written by bench/chaos.py: every alert is its own group (group_by '...'), sent at once, never
# repeated during the run, so each firing/resolved transition should give exactly one message.
route:
  receiver: chaos-slack
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 24h
digest_severities: []
receivers:
  chaos-slack:
    type: slack
    webhook_url: {{env: {SLACK_ENV}}}
    rate_limit_per_minute: 60000
"""


def say(text: str) -> None:
    """A progress line, with the time since the driver started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {text}", flush=True)


_T0 = time.monotonic()


# --- mentions -----------------------------------------------------------------------------------


def simulated(count: int, seed: int) -> list[Mention]:
    """The first ``count`` mentions of the ``crisis`` day, its volume scaled so the day holds
    ``count`` (the crisis, and so the alerts, stay inside the run)."""
    scale = 1.0
    while True:
        mentions = generate("crisis", seed=seed, rate_scale=scale)
        if len(mentions) >= count:
            return mentions[:count]
        scale *= count / max(1, len(mentions)) * 1.02


# --- the code the children run ------------------------------------------------------------------

CODE_PARTS = ("streams", "services", "connectors", "alert_rules", "pyproject.toml")
"""What a child process needs: its packages, the shipped rules (the worker's default
``alert_rules/default.yaml`` is relative to its working directory) and the project file."""


def snapshot_code(workdir: Path) -> Path:
    """Copy the source as it is now into ``workdir/code``; every child runs from that copy.

    A restarted process must run the same code as the one it replaces: otherwise an edit to the
    working tree during the run (a model retrained, a module saved) changes what a replay
    produces, and the checks would measure the edit, not the faults. (The first 50,000-mention
    run did: 192 replayed mentions were scored by a sentiment layer rewritten mid-run.)
    """
    import shutil

    code = workdir / "code"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in CODE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, code / part, ignore=ignore, dirs_exist_ok=True)
        else:
            code.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, code / part)
    return code


def code_changed(code: Path) -> list[str]:
    """Files of the working tree that differ from the run's copy now (edited during the run)."""
    import filecmp

    changed: list[str] = []
    for copied in sorted(code.rglob("*")):
        if not copied.is_file() or "__pycache__" in copied.parts:
            continue
        relative = copied.relative_to(code)
        live = REPO / relative
        if not live.is_file() or not filecmp.cmp(copied, live, shallow=False):
            changed.append(str(relative))
    return changed


def _git_head() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *CODE_PARTS],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return "unknown"


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Child:
    """A ``python -m services.cli …`` child: started, SIGKILLed and restarted by its pid."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    metrics_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    crashes: list[str] = field(default_factory=list)
    code: Path = REPO

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n=== start #{self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "--log-level", "INFO", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.code,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> int | None:
        """SIGKILL the process (by its pid) and reap it; returns the pid, None if not running."""
        if self.process is None or self.process.poll() is not None:
            return None
        pid = self.process.pid
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        return pid

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def metrics_up(self) -> bool:
        if not self.running or not self.metrics_port:
            return False
        try:
            scrape(self.metrics_port)
        except OSError:
            return False
        return True


def broker_port(seed: int) -> int:
    """Two free consecutive ports below the ephemeral range (32768+): a port from that range
    can be taken, while the broker is down, by a client's own outgoing socket reconnecting to it."""
    rng = random.Random(f"{seed}-{os.getpid()}-{time.time_ns()}")
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        if _free(port) and _free(port + 1):
            return port
    return free_port()


def _free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Broker:
    """The run's own ``LocalKafka``; ``kill9`` SIGKILLs its JVM, ``start`` brings it back on the
    same port and home."""

    def __init__(self, port: int, home: Path) -> None:
        self.kafka = LocalKafka(port, home=home)
        self.bootstrap = self.kafka.bootstrap

    def start(self, patience_s: float = 60.0) -> None:
        """Start (again); a port briefly held by a client's outgoing socket is waited out."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                self.kafka.start(timeout_s=120)
                return
            except KafkaLocalError as exc:
                if "already in use" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def kill9(self) -> int | None:
        pid = self.kafka.pid
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            if self.kafka.pid is None:
                break
            time.sleep(0.05)
        return pid

    def stop(self) -> None:
        self.kafka.stop()


class SlackReceiver:
    """A local Slack-like incoming webhook: keeps every message with its arrival time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.messages.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/services/T0/B0/chaos"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def last_at(self) -> float:
        with self._lock:
            return self.messages[-1][0] if self.messages else 0.0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- probes -------------------------------------------------------------------------------------


class Probe:
    """End offsets and committed group offsets, through short-lived clients (the broker dies)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def end_offsets(self, topic: str) -> dict[int, int] | None:
        """Partition → end offset of ``topic`` (None while the broker does not answer)."""
        from kafka import KafkaConsumer, TopicPartition

        with contextlib.suppress(Exception):
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, request_timeout_ms=5000
            )
            try:
                parts = consumer.partitions_for_topic(topic) or set()
                tps = [TopicPartition(topic, p) for p in sorted(parts)]
                ends = consumer.end_offsets(tps)
                return {tp.partition: int(o) for tp, o in ends.items()}
            finally:
                consumer.close()
        return None

    def committed(self, group: str, topic: str) -> dict[int, int] | None:
        """Partition → offset ``group`` committed on ``topic`` (None while the broker does not
        answer; partitions never committed are left out)."""
        from kafka.admin import KafkaAdminClient

        with contextlib.suppress(Exception):
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                offsets = admin.list_group_offsets({group: None}).get(group, {})
            finally:
                admin.close()
            return {
                tp.partition: int(m.offset)
                for tp, m in offsets.items()
                if tp.topic == topic and m.offset >= 0
            }
        return None


# --- one pipeline run ---------------------------------------------------------------------------


@dataclass
class Kill:
    """One fault: what was killed, when, and how long until it made progress again."""

    kind: str
    target: str
    planned_at_s: float
    at_s: float = 0.0
    pid: int | None = None
    resumed_s: float | None = None
    broker_up_s: float | None = None
    note: str = ""


class Pipeline:
    """Topics, children and probes of one run (baseline or chaos) on the shared broker."""

    def __init__(
        self,
        name: str,
        broker: Broker,
        workdir: Path,
        data: Path,
        speedup: float | None,
        code: Path = REPO,
    ):
        self.name = name
        self.code = code
        self.fault_windows: list[tuple[float, float]] = []
        """Epoch-second intervals in which the worker group recovered from a fault (a kill of a
        worker or of the broker, a worker joining or crashing): where replays are expected."""
        self.broker = broker
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.prefix = f"chaos-{name}-{os.getpid()}-{time.monotonic_ns()}."
        self.app_id = f"listenwell-{self.prefix.rstrip('.')}"
        create_topics(broker.bootstrap, self.prefix)
        self.probe = Probe(broker.bootstrap)
        config = workdir / "connectors.yaml"
        pace = f"    speedup: {speedup:.4f}\n" if speedup else ""
        config.write_text(
            "instances:\n"
            f"  - name: {INSTANCE}\n"
            "    source: replay\n"
            "    brand: northwind-air\n"
            f"{pace}"
            f"    settings: {{path: {json.dumps(str(data))}, page_size: 200}}\n"
        )
        self.config = config
        self.children: dict[str, Child] = {}

    def topic(self, spec: topics.TopicSpec) -> str:
        return topics.topic_name(spec, self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(
            os.environ,
            PYTHONPATH=str(self.code),
            LISTENWELL_KAFKA_BOOTSTRAP=self.broker.bootstrap,
            LISTENWELL_TOPIC_PREFIX=self.prefix,
            LISTENWELL_APP_ID=self.app_id,
            LISTENWELL_CONNECTOR_METRICS_PORT="0",
            LISTENWELL_NOTIFIER_METRICS_PORT="0",
            LISTENWELL_WORKER_METRICS_PORT="0",
        )
        env.update(extra)
        return env

    def add_workers(self, deployment: Deployment) -> None:
        """The worker: one fused process, or the split deployment's two stage processes."""
        if deployment == "fused":
            self.add_worker("worker-a")
        else:
            self.add_worker("scoring-a", stage="scoring")
            self.add_worker("brands-a", stage="brands")

    def add_worker(self, name: str, stage: str = "fused") -> Child:
        port = free_port()
        child = Child(
            name,
            ["worker", "--stage", stage],
            self.env(
                LISTENWELL_WORKER_METRICS_PORT=str(port),
                LISTENWELL_DATA_DIR=str(self.workdir / name),
            ),
            self.workdir / f"{name}.log",
            metrics_port=port,
            code=self.code,
        )
        self.children[name] = child
        child.start()
        return child

    def add_runner(self) -> Child:
        child = Child(
            "runner",
            ["connect", "--config", str(self.config), "--progress-interval", "5"],
            self.env(),
            self.workdir / "runner.log",
            code=self.code,
        )
        self.children["runner"] = child
        child.start()
        return child

    def add_notifier(self, slack_url: str) -> Child:
        routes = self.workdir / "routes.yaml"
        routes.write_text(ROUTES)
        port = free_port()
        data = self.workdir / "notifier"
        child = Child(
            "notifier",
            ["notifier", "--routes", str(routes), "--group", NOTIFIER_GROUP,
             "--delivery-log", str(data / "delivered.log")],
            self.env(
                LISTENWELL_NOTIFIER_METRICS_PORT=str(port),
                LISTENWELL_DATA_DIR=str(data),
                **{SLACK_ENV: slack_url},
            ),
            self.workdir / "notifier.log",
            metrics_port=port,
            code=self.code,
        )  # fmt: skip
        self.children["notifier"] = child
        child.start()
        return child

    def supervise(self) -> None:
        """Restart any child that exited by itself (the runner may exit 0: it is done)."""
        for child in self.children.values():
            if child.process is None or child.process.poll() is None:
                continue
            code = child.process.returncode
            if child.name == "runner" and code == 0:
                continue
            say(f"{self.name}: {child.name} exited by itself (code {code}); restarting it")
            if child.name.startswith(("worker", "scoring", "brands")):
                self.fault_windows.append((time.time(), time.time() + CRASH_WINDOW_S))
            child.crashes.append(f"exit code {code} at {time.monotonic() - _T0:.1f}s")
            child.start()

    def runner_done(self) -> bool:
        runner = self.children.get("runner")
        return runner is not None and runner.process is not None and runner.process.poll() == 0

    def checkpoint_exhausted(self) -> bool:
        with contextlib.suppress(Exception):
            store = KafkaStateStore(self.broker.bootstrap, self.topic(topics.CONNECTORS_STATE))
            try:
                checkpoint = store.load().get(INSTANCE)
            finally:
                store.close()
            return checkpoint is not None and checkpoint.exhausted
        return False

    def worker_lag(self) -> int | None:
        """Records of the worker group's inputs (``mentions.raw``, and ``mentions.scored`` when
        the split deployment's brand stage runs) it has not committed yet (None: unknown)."""
        lag = 0
        inputs = [topics.MENTIONS_RAW]
        if "brands-a" in self.children:
            inputs.append(topics.MENTIONS_SCORED)
        for spec in inputs:
            ends = self.probe.end_offsets(self.topic(spec))
            done = self.probe.committed(self.app_id, self.topic(spec))
            if ends is None or done is None:
                return None
            lag += sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
        return lag

    def notifier_lag(self) -> int | None:
        ends = self.probe.end_offsets(self.topic(topics.ALERTS))
        done = self.probe.committed(NOTIFIER_GROUP, self.topic(topics.ALERTS))
        if ends is None or done is None:
            return None
        return sum(max(0, end - done.get(p, 0)) for p, end in ends.items())

    def wait(self, condition: Callable[[], bool], what: str, patience_s: float) -> bool:
        """Poll ``condition`` (supervising the children meanwhile) until true or out of patience."""
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            self.supervise()
            if condition():
                return True
            time.sleep(0.5)
        say(f"{self.name}: gave up waiting for {what} after {patience_s:.0f}s")
        return False

    def drain(self, patience_s: float) -> bool:
        """Wait until the runner is done and the worker group committed everything on raw."""
        done = self.wait(
            lambda: self.runner_done() and self.checkpoint_exhausted(),
            "the connector runner to finish",
            patience_s,
        )
        return done and self.wait(lambda: self.worker_lag() == 0, "the worker to drain", patience_s)

    def stop_all(self) -> None:
        for child in self.children.values():
            child.stop()


# --- the chaos schedule -------------------------------------------------------------------------


def schedule(kills: list[str], duration_s: float, seed: int) -> list[Kill]:
    """Seeded moments: one per slot of the run's first 90%, away from the slot edges."""
    rng = random.Random(seed)
    start, end = 0.08 * duration_s, 0.9 * duration_s
    width = (end - start) / max(1, len(kills))
    planned: list[Kill] = []
    for i, kind in enumerate(kills):
        lo = start + i * width
        at = lo + width * rng.uniform(0.15, 0.85)
        planned.append(Kill(kind=kind, target="", planned_at_s=round(at, 2)))
    return planned


def inject(run: Pipeline, kill: Kill, started: float, rng: random.Random) -> None:
    """Kill the target with SIGKILL, restart it, and measure until it makes progress again.

    Progress, by target: a worker — every record that was on ``mentions.raw`` when it died is
    committed by the group, and so is at least one record produced after (unless the runner had
    finished); the runner — a record produced after the kill; the notifier — the restarted one
    serves /metrics and has committed every alert that existed at the kill; the broker — it
    answers again and both the runner and the workers have made progress as above.
    """
    raw, alerts = run.topic(topics.MENTIONS_RAW), run.topic(topics.ALERTS)
    scored = run.topic(topics.MENTIONS_SCORED)
    snapshot: dict[str, dict[int, int]] = {}

    def take_snapshot() -> None:
        snapshot["raw_end"] = run.probe.end_offsets(raw) or {}
        snapshot["scored_end"] = run.probe.end_offsets(scored) or {}
        snapshot["alerts_end"] = run.probe.end_offsets(alerts) or {}

    def brands_resumed() -> bool:
        """Every ``mentions.scored`` record there was at the kill is committed by the group, and
        (unless the runner had finished) one more."""
        done = run.probe.committed(run.app_id, scored)
        if done is None:
            return False
        at_kill = snapshot["scored_end"]
        if any(done.get(p, 0) < end for p, end in at_kill.items()):
            return False
        return run.runner_done() or sum(done.values()) > sum(at_kill.values())

    def worker_resumed() -> bool:
        ends = run.probe.end_offsets(raw)
        done = run.probe.committed(run.app_id, raw)
        if ends is None or done is None:
            return False
        at_kill = snapshot["raw_end"]
        if any(done.get(p, 0) < end for p, end in at_kill.items()):
            return False
        return run.runner_done() or sum(done.values()) > sum(at_kill.values())

    def runner_resumed() -> bool:
        ends = run.probe.end_offsets(raw)
        at_kill = sum(snapshot["raw_end"].values())
        return run.runner_done() or (ends is not None and sum(ends.values()) > at_kill)

    condition: Callable[[], bool]
    t0 = time.monotonic()
    kill.at_s = round(t0 - started, 2)
    if kill.kind in ("worker", "pair"):
        workers = sorted(n for n in run.children if n.startswith("worker"))
        kill.target = workers[0] if kill.kind == "worker" else rng.choice(workers)
        child = run.children[kill.target]
        kill.pid = child.kill9()
        take_snapshot()
        child.start()
        condition = worker_resumed
    elif kill.kind in STAGE_KILLS:
        kill.target = STAGE_KILLS[kill.kind]
        child = run.children[kill.target]
        kill.pid = child.kill9()
        take_snapshot()
        child.start()
        condition = worker_resumed if kill.kind == "scoring" else brands_resumed
    elif kill.kind == "notifier":
        kill.target = "notifier"
        child = run.children["notifier"]
        kill.pid = child.kill9()
        take_snapshot()
        child.start()

        def notifier_resumed() -> bool:
            done = run.probe.committed(NOTIFIER_GROUP, alerts)
            need = sum(snapshot["alerts_end"].values())
            return child.metrics_up() and done is not None and sum(done.values()) >= need

        condition = notifier_resumed
    elif kill.kind == "runner":
        kill.target = "runner"
        child = run.children["runner"]
        if not child.running:
            kill.note = "the runner had already finished"
            return
        kill.pid = child.kill9()
        take_snapshot()
        child.start()
        condition = runner_resumed
    elif kill.kind == "broker":
        kill.target = "kafka"
        take_snapshot()
        kill.pid = run.broker.kill9()
        run.broker.start()
        kill.broker_up_s = round(time.monotonic() - t0, 2)
        condition = lambda: runner_resumed() and worker_resumed()  # noqa: E731
    else:
        raise ValueError(f"unknown kill kind {kill.kind!r}")
    say(f"chaos: SIGKILL {kill.target} (pid {kill.pid}) at {kill.at_s:.1f}s; restarted")
    if run.wait(condition, f"{kill.target} to resume", patience_s=240):
        kill.resumed_s = round(time.monotonic() - t0, 2)
        say(f"chaos: {kill.target} made progress again after {kill.resumed_s:.1f}s")
    if kill.kind in ("worker", "pair", "broker", *STAGE_KILLS):
        now = time.time()
        run.fault_windows.append((now - (time.monotonic() - t0), now + SETTLE_S))


# --- reading and checking -----------------------------------------------------------------------


def read_values(bootstrap: str, topic: str) -> list[bytes]:
    return [v for _, _, v in read_topic(bootstrap, topic, timeout_s=20) if v is not None]


def transition(alert: Alert) -> tuple[str, str, str]:
    return (alert.fingerprint, str(alert.state), alert.starts_at.isoformat())


def slack_key(alertname: str, who: str, state: str, since: str) -> tuple[str, str, str, str]:
    return (alertname, who, state, since)


def alert_slack_key(alert: Alert) -> tuple[str, str, str, str]:
    """What a one-alert Slack message says about a transition (as ``services/notify/render``)."""
    who = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")
    return slack_key(alert.alertname, who, str(alert.state), f"{alert.starts_at:%Y-%m-%d %H:%M}Z")


def message_keys(payload: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The transitions a Slack message announces (alert name, labels, state, since-minute)."""
    header = payload["blocks"][0]["text"]["text"]
    alertname = header.split("] ", 1)[1].split(" ", 1)[0].rstrip(",")
    keys: list[tuple[str, str, str, str]] = []
    pending: tuple[str, str] | None = None
    for block in payload["blocks"][1:]:
        if block.get("type") == "section" and "text" in block:
            text = block["text"]["text"]
            first, _, rest = text.partition("\n")
            if first.endswith("(🔴 firing)") or first.endswith("(✅ resolved)"):
                state = "firing" if first.endswith("(🔴 firing)") else "resolved"
                pending = (state, rest.split("\n", 1)[0])
        elif block.get("type") == "context" and pending is not None:
            text = block["elements"][0]["text"]
            since = text.rsplit("since ", 1)[1]
            keys.append(slack_key(alertname, pending[1], pending[0], since))
            pending = None
    return keys


@dataclass
class Figures:
    """Everything the checks found; ``failures`` lists what did not hold."""

    mentions: int = 0
    raw_records: int = 0
    raw_distinct: int = 0
    runner_resent: int = 0
    scored_records: int = 0
    scored_distinct: int = 0
    redeliveries: int = 0
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    unexpected: int = 0
    conflicting_duplicates: int = 0
    rescored_differently: int = 0
    rescored_fields: dict[str, int] = field(default_factory=dict)
    two_records_scored: int = 0
    unexplained_redeliveries: int = 0
    unexplained_examples: list[str] = field(default_factory=list)
    code_changed_during_run: list[str] = field(default_factory=list)
    dead_letters: int = 0
    baseline_transitions: int = 0
    chaos_alert_records: int = 0
    chaos_transitions: int = 0
    alerts_missing: list[str] = field(default_factory=list)
    alerts_extra: list[str] = field(default_factory=list)
    notified_transitions: int = 0
    slack_messages: int = 0
    exactly_once: int = 0
    without_message: int = 0
    collapsed: int = 0
    duplicated: int = 0
    duplicated_in_kill_window: int = 0
    unmatched_messages: int = 0
    failures: list[str] = field(default_factory=list)


def check(
    base: Pipeline,
    chaos: Pipeline,
    mentions: list[Mention],
    slack: SlackReceiver,
    notifier_down: list[tuple[float, float]],
    notifier_kills: list[float],
    fault_windows: list[tuple[float, float]] | None = None,
) -> Figures:
    """Every figure and check of the run; ``fault_windows`` are the epoch-second intervals in
    which the worker group recovered from a fault (where replays are expected)."""
    f = Figures(mentions=len(mentions))
    bootstrap = chaos.broker.bootstrap
    expected = {m.id for m in mentions}
    raw_ids = Counter(
        Mention.from_json(v).id for v in read_values(bootstrap, chaos.topic(topics.MENTIONS_RAW))
    )
    f.raw_records, f.raw_distinct = sum(raw_ids.values()), len(raw_ids)
    f.runner_resent = f.raw_records - f.raw_distinct
    copies: dict[str, list[ScoredMention]] = defaultdict(list)
    for value in read_values(bootstrap, chaos.topic(topics.MENTIONS_SCORED)):
        scored = ScoredMention.from_json(value)
        copies[scored.mention.id].append(scored)
    f.scored_records = sum(len(c) for c in copies.values())
    f.scored_distinct = len(copies)
    f.redeliveries = f.scored_records - f.scored_distinct
    missing = sorted(expected - set(copies))
    f.lost, f.lost_examples = len(missing), missing[:20]
    f.unexpected = len(set(copies) - expected)
    redelivered(f, copies, fault_windows or [], raw_ids)
    f.dead_letters = len(read_values(bootstrap, chaos.topic(topics.MENTIONS_DLQ)))

    baseline_alerts = [
        Alert.from_json(v) for v in read_values(bootstrap, base.topic(topics.ALERTS))
    ]
    chaos_alerts = [Alert.from_json(v) for v in read_values(bootstrap, chaos.topic(topics.ALERTS))]
    want = {transition(a) for a in baseline_alerts}
    got = {transition(a) for a in chaos_alerts}
    f.baseline_transitions, f.chaos_transitions = len(want), len(got)
    f.chaos_alert_records = len(chaos_alerts)
    f.alerts_missing = sorted(" ".join(t) for t in want - got)
    f.alerts_extra = sorted(" ".join(t) for t in got - want)

    # Notifications: one Slack message per firing/resolved transition.
    notified = {}
    for a in chaos_alerts:
        if a.state != AlertState.PENDING:
            notified[transition(a)] = a
    arrivals: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for at, payload in list(slack.messages):
        for key in message_keys(payload):
            arrivals[key].append(at)
    f.slack_messages = len(slack.messages)
    f.notified_transitions = len(notified)
    produced_at = _alert_times(bootstrap, chaos.topic(topics.ALERTS))
    keys = {alert_slack_key(a): t for t, a in notified.items()}
    f.unmatched_messages = sum(len(v) for k, v in arrivals.items() if k not in keys)
    for key, t in keys.items():
        times = arrivals.get(key, [])
        if len(times) == 1:
            f.exactly_once += 1
        elif not times:
            f.without_message += 1
            if _collapsed(t, notified, produced_at, notifier_down):
                f.collapsed += 1
        else:
            f.duplicated += 1
            first = times[0]
            if any(0.0 <= k - first <= KILL_WINDOW_S for k in notifier_kills):
                f.duplicated_in_kill_window += 1

    if f.lost:
        f.failures.append(f"{f.lost} mentions lost (e.g. {', '.join(missing[:5])})")
    if f.raw_distinct != f.mentions:
        f.failures.append(f"{f.raw_distinct} distinct ids on mentions.raw, expected {f.mentions}")
    if f.unexpected:
        f.failures.append(f"{f.unexpected} scored ids that were never produced")
    if f.two_records_scored:
        f.failures.append(
            f"{f.two_records_scored} ids scored from two different raw records (dedupe failed)"
        )
    if f.rescored_differently:
        fields = ", ".join(f"{k} ×{v}" for k, v in f.rescored_fields.items())
        changed = (
            f"; source edited during the run: {', '.join(f.code_changed_during_run[:5])}"
            if f.code_changed_during_run
            else ""
        )
        f.failures.append(
            f"{f.rescored_differently} replayed mentions scored differently ({fields}){changed}"
        )
    if f.unexplained_redeliveries:
        f.failures.append(
            f"{f.unexplained_redeliveries} ids scored again outside every fault window "
            f"(e.g. {', '.join(f.unexplained_examples[:5])})"
        )
    if f.alerts_missing or f.alerts_extra:
        f.failures.append(
            f"alerts differ from the undisturbed run: {len(f.alerts_missing)} missing, "
            f"{len(f.alerts_extra)} extra"
        )
    if f.baseline_transitions == 0:
        f.failures.append("the undisturbed run raised no alert: nothing to compare")
    if f.duplicated - f.duplicated_in_kill_window:
        f.failures.append(
            f"{f.duplicated - f.duplicated_in_kill_window} transitions notified twice outside "
            "the send-then-log window of a notifier kill"
        )
    if f.without_message - f.collapsed:
        f.failures.append(f"{f.without_message - f.collapsed} transitions never notified")
    if f.unmatched_messages:
        f.failures.append(f"{f.unmatched_messages} Slack messages match no alert transition")
    return f


def redelivered(
    f: Figures,
    copies: dict[str, list[ScoredMention]],
    fault_windows: list[tuple[float, float]],
    raw_ids: Counter[str] | None = None,
) -> None:
    """Classify the ids published more than once on ``mentions.scored``.

    ``mentions.scored`` is at-least-once: after a worker crash or a rebalance the records since the
    last commit are replayed and published again. A replay is the *same raw record* scored again,
    so its copies must be equal except ``scored_at`` (the time of scoring): a difference elsewhere
    is a ``rescored_differently`` (fields counted). Copies whose ``mention`` differs come from two
    raw records with one id (e.g. a re-send with a new ``fetched_at``): only one may be scored,
    the worker's dedupe drops the other — ``two_records_scored``. A byte-identical re-send scored
    twice cannot be told from a replay by its content, but by its moment: replays happen while the
    group recovers from a fault, so a later copy scored outside every fault window is an
    ``unexplained_redeliveries``. The scoring stage is stateless, so an id that ``raw_ids``
    counts on ``mentions.raw`` n times (a runner re-send) is scored n times by design: its
    first n copies are explained, whatever their content; the brand stage counts it once (the
    alerts check shows it). (Replays are not always one per fault: after a restart,
    faust-streaming hands the agent the records it fetched during recovery, then seeks back to the
    committed offset and hands them over again, in the same process, 0.3 s later.)
    """
    fields: Counter[str] = Counter()
    for mention_id, versions in copies.items():
        if len(versions) < 2:
            continue
        sent = raw_ids.get(mention_id, 1) if raw_ids is not None else 1
        if len({v.mention.model_dump_json() for v in versions}) > 1:
            if sent < 2:
                f.two_records_scored += 1
        elif len({v.model_dump_json(exclude={"scored_at"}) for v in versions}) > 1:
            f.rescored_differently += 1
            fields.update(_differing_fields([v.model_dump(mode="json") for v in versions]))
        times = sorted(v.scored_at.timestamp() for v in versions)
        if any(not any(lo <= t <= hi for lo, hi in fault_windows) for t in times[sent:]):
            f.unexplained_redeliveries += 1
            if len(f.unexplained_examples) < 20:
                f.unexplained_examples.append(mention_id)
    f.conflicting_duplicates = f.two_records_scored + f.rescored_differently
    f.rescored_fields = dict(fields.most_common())


def _differing_fields(dumps: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """Dotted names of the leaves that differ between ``dumps`` (``scored_at`` left out)."""
    out: list[str] = []
    for key in sorted(set().union(*dumps)):
        name = f"{prefix}{key}"
        if name == "scored_at":
            continue
        values = [d.get(key) for d in dumps]
        if all(isinstance(v, dict) for v in values):
            out += _differing_fields(values, f"{name}.")  # type: ignore[arg-type]
        elif len({json.dumps(v, sort_keys=True) for v in values}) > 1:
            out.append(name)
    return out


def _alert_times(bootstrap: str, topic: str) -> dict[tuple[str, str, str], list[float]]:
    """Kafka timestamps (epoch s) of every record of each transition on ``alerts``."""
    from kafka import KafkaConsumer, TopicPartition

    times: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for messages in consumer.poll(timeout_ms=500).values():
                for m in messages:
                    times[transition(Alert.from_json(m.value))].append(m.timestamp / 1000)
    finally:
        consumer.close()
    return times


def _collapsed(
    t: tuple[str, str, str],
    notified: dict[tuple[str, str, str], Alert],
    produced_at: dict[tuple[str, str, str], list[float]],
    notifier_down: list[tuple[float, float]],
) -> bool:
    """Whether this episode's firing and resolve reached the notifier together: both produced
    within one second, or both while the notifier was down (epoch-second intervals)."""
    fp, _, starts = t
    firing, resolved = (fp, "firing", starts), (fp, "resolved", starts)
    if firing not in notified or resolved not in notified:
        return False
    a, b = min(produced_at[firing]), min(produced_at[resolved])
    if abs(b - a) <= 1.0:
        return True
    return any(lo <= a <= hi and lo <= b <= hi for lo, hi in notifier_down)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class ChaosConfig:
    """What ``run`` does; the defaults are ``make chaos``."""

    mentions: int = 50_000
    seed: int = 7
    duration_s: float = 300.0
    kills: tuple[str, ...] = DEFAULT_KILLS["fused"]
    deployment: Deployment = "fused"
    port: int = 0
    workdir: Path | None = None
    results: Path | None = RESULTS
    drain_patience_s: float = 600.0


@dataclass
class Report:
    config: dict[str, Any]
    figures: Figures
    kills: list[Kill]
    crashes: dict[str, list[str]]
    baseline_seconds: float
    chaos_seconds: float

    @property
    def ok(self) -> bool:
        unresumed = [k for k in self.kills if k.resumed_s is None and not k.note]
        return not self.figures.failures and not unresumed

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "ok": self.ok,
            "figures": asdict(self.figures),
            "kills": [asdict(k) for k in self.kills],
            "crashes": self.crashes,
            "baseline_seconds": round(self.baseline_seconds, 1),
            "chaos_seconds": round(self.chaos_seconds, 1),
        }


def run(config: ChaosConfig) -> Report:
    """Baseline, chaos, checks; every process started here is stopped by its pid at the end."""
    known = KINDS[config.deployment]
    for kind in config.kills:
        if kind not in known:
            raise ValueError(
                f"unknown kill {kind!r} for the {config.deployment} deployment; "
                f"known: {', '.join(known)}"
            )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = config.workdir or REPO / ".listenwell" / "chaos" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    code = snapshot_code(workdir)
    head = _git_head()
    mentions = simulated(config.mentions, config.seed)
    data = workdir / "mentions.jsonl"
    write_jsonl(mentions, data)
    span = (mentions[-1].created_at - mentions[0].created_at).total_seconds()
    speedup = span / config.duration_s
    port = config.port or broker_port(config.seed)
    broker = Broker(port, workdir / "kafka")
    say(f"{len(mentions):,} simulated mentions (crisis, seed {config.seed}); logs in {workdir}")
    say(f"children run a copy of the source taken now ({head}): {code}")
    say(f"starting Kafka on {broker.bootstrap} (home {broker.kafka.home})")
    runs: list[Pipeline] = []
    slack: SlackReceiver | None = None
    try:
        broker.start()
        # 1. the undisturbed run: unpaced, one worker, alerts only
        started = time.monotonic()
        base = Pipeline("base", broker, workdir / "base", data, speedup=None, code=code)
        runs.append(base)
        base.add_worker("worker-a")
        base.add_runner()
        say("baseline: undisturbed run (one worker, unpaced) …")
        if not base.drain(config.drain_patience_s):
            raise RuntimeError("the undisturbed run did not finish; see its logs")
        base.stop_all()
        baseline_seconds = time.monotonic() - started
        say(f"baseline: done in {baseline_seconds:.0f}s")

        # 2. the chaos run
        slack = SlackReceiver()
        chaos = Pipeline("chaos", broker, workdir / "chaos", data, speedup=speedup, code=code)
        runs.append(chaos)
        plan = schedule(list(config.kills), config.duration_s, config.seed)
        rng = random.Random(config.seed + 1)
        say(
            f"chaos: paced run of {config.duration_s:.0f}s ({speedup:.0f}x event time); kills at "
            + ", ".join(f"{k.kind}@{k.planned_at_s:.0f}s" for k in plan)
        )
        joined = time.time()
        chaos.add_workers(config.deployment)
        chaos.add_notifier(slack.url)
        chaos.add_runner()
        started = time.monotonic()
        if config.deployment == "split":
            # The two stage processes join the group one after the other: the second join is a
            # rebalance, and the scoring stage replays what it had scored but not committed.
            scoring, brands = chaos.children["scoring-a"], chaos.children["brands-a"]
            chaos.wait(
                lambda: _ingested(scoring) > 0 and _batches(brands) > 0,
                "the two stages to take their partitions",
                120,
            )
            chaos.fault_windows.append((joined, time.time() + SETTLE_S))
        notifier_down: list[tuple[float, float]] = []
        notifier_kills: list[float] = []
        last_progress = 0.0
        for kill in plan:
            if kill.kind == "pair" and "worker-b" not in chaos.children:
                say("chaos: starting a second worker in the same consumer group (rebalance)")
                joined = time.time()
                second = chaos.add_worker("worker-b")
                chaos.wait(
                    lambda w=second: _ingested(w) > 0,  # type: ignore[misc]
                    "the second worker to take partitions",
                    120,
                )
                chaos.fault_windows.append((joined, time.time() + SETTLE_S))
            while time.monotonic() - started < kill.planned_at_s:
                chaos.supervise()
                if time.monotonic() - last_progress >= 15:
                    last_progress = time.monotonic()
                    _progress(chaos)
                time.sleep(0.25)
            down_from = time.time()
            if kill.kind == "notifier":
                notifier_kills.append(time.monotonic())
            inject(chaos, kill, started, rng)
            if kill.kind in ("notifier", "broker"):
                notifier_down.append((down_from, time.time()))
        say("chaos: every kill done; waiting for the runner to finish and the workers to drain")
        drained = chaos.drain(config.drain_patience_s)
        chaos.wait(lambda: chaos.notifier_lag() == 0, "the notifier to commit", 120)
        quiet = time.monotonic()
        while time.monotonic() - max(quiet, slack.last_at()) < 5:
            time.sleep(0.25)
        chaos_seconds = time.monotonic() - started
        _progress(chaos)
        say("checking …")
        figures = check(
            base, chaos, mentions, slack, notifier_down, notifier_kills, chaos.fault_windows
        )
        figures.code_changed_during_run = code_changed(code)
        if figures.code_changed_during_run:
            say(
                "note: the working tree changed during the run (the children ran the copy): "
                + ", ".join(figures.code_changed_during_run[:10])
            )
        if not drained:
            figures.failures.append("the chaos run did not drain")
        report = Report(
            config={
                "mentions": config.mentions,
                "seed": config.seed,
                "duration_s": config.duration_s,
                "speedup": round(speedup, 1),
                "kills": list(config.kills),
                "deployment": config.deployment,
                "bootstrap": broker.bootstrap,
                "workdir": str(workdir),
                "code": head,
            },
            figures=figures,
            kills=plan,
            crashes={n: c.crashes for n, c in chaos.children.items() if c.crashes},
            baseline_seconds=baseline_seconds,
            chaos_seconds=chaos_seconds,
        )
        if config.results is not None:
            config.results.parent.mkdir(parents=True, exist_ok=True)
            config.results.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        return report
    finally:
        for pipeline in runs:
            pipeline.stop_all()
        if slack is not None:
            slack.close()
        say(f"stopping the Kafka broker this run started (pid {broker.kafka.pid})")
        broker.stop()


def _batches(worker: Child) -> float:
    try:
        return total(scrape(worker.metrics_port), "listenwell_batch_processing_seconds_count")
    except OSError:
        return 0.0


def _ingested(worker: Child) -> float:
    try:
        return total(scrape(worker.metrics_port), "listenwell_mentions_ingested_total")
    except OSError:
        return 0.0


def _progress(run: Pipeline) -> None:
    raw = sum((run.probe.end_offsets(run.topic(topics.MENTIONS_RAW)) or {}).values())
    say(f"chaos: {raw:,} raw records produced, worker lag {run.worker_lag()}")


def summary(report: Report) -> str:
    """The table ``make chaos`` prints."""
    f = report.figures
    lines = [
        "",
        f"chaos: {f.mentions:,} mentions, seed {report.config['seed']}, "
        f"{len(report.kills)} kills, baseline {report.baseline_seconds:.0f}s, "
        f"chaos run {report.chaos_seconds:.0f}s",
        "",
        f"  {'check':<52} {'figure':>10}  ok",
    ]

    def row(name: str, value: object, ok: bool | None = None) -> None:
        mark = "" if ok is None else ("✓" if ok else "✗")
        lines.append(f"  {name:<52} {value!s:>10}  {mark}")

    row(
        "mentions produced (distinct ids on mentions.raw)",
        f.raw_distinct,
        f.raw_distinct == f.mentions,
    )
    row(
        "  raw records (re-sent by the runner after a kill)",
        f"{f.raw_records} (+{f.runner_resent})",
    )
    row("mentions scored (distinct ids)", f.scored_distinct, f.scored_distinct == f.mentions)
    row("lost (produced, never scored)", f.lost, f.lost == 0)
    row("scored ids never produced", f.unexpected, f.unexpected == 0)
    row("  re-deliveries on mentions.scored (at-least-once)", f.redeliveries)
    row("    replay scored differently (beyond scored_at)", f.rescored_differently,
        f.rescored_differently == 0)  # fmt: skip
    row("    two raw records of one id both scored", f.two_records_scored,
        f.two_records_scored == 0)  # fmt: skip
    row("    scored again outside a fault window", f.unexplained_redeliveries,
        f.unexplained_redeliveries == 0)  # fmt: skip
    row("  dead letters", f.dead_letters)
    row("alert transitions, undisturbed run", f.baseline_transitions, f.baseline_transitions > 0)
    row("alert transitions, chaos run", f.chaos_transitions)
    row("  missing vs undisturbed", len(f.alerts_missing), not f.alerts_missing)
    row("  extra vs undisturbed", len(f.alerts_extra), not f.alerts_extra)
    row("  alert records (re-sent after replays)", f.chaos_alert_records)
    row("firing/resolved transitions to notify", f.notified_transitions)
    row("  Slack messages received", f.slack_messages)
    row("  exactly one message", f.exactly_once)
    dup = f"{f.duplicated} ({f.duplicated_in_kill_window})"
    row(
        "  two or more (kill between send and log)",
        dup,
        f.duplicated == f.duplicated_in_kill_window,
    )
    row("  none (firing+resolve in one batch)", f"{f.without_message} ({f.collapsed})",
        f.without_message == f.collapsed)  # fmt: skip
    row("  messages matching no transition", f.unmatched_messages, f.unmatched_messages == 0)
    lines += ["", f"  {'kill':<10} {'target':<10} {'at':>8} {'pid':>8} {'resumed after':>14}"]
    for k in report.kills:
        resumed = "—" if k.resumed_s is None else f"{k.resumed_s:.1f}s"
        extra = f"  (broker up after {k.broker_up_s:.1f}s)" if k.broker_up_s is not None else ""
        extra += f"  {k.note}" if k.note else ""
        pid = str(k.pid or "—")
        lines.append(f"  {k.kind:<10} {k.target:<10} {k.at_s:>7.1f}s {pid:>8} {resumed:>14}{extra}")
    for name, crashes in report.crashes.items():
        lines.append(f"  {name} exited by itself: {'; '.join(crashes)}")
    lines.append("")
    lines.append("all checks passed" if report.ok else "FAILED: " + "; ".join(f.failures))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=300.0, help="paced run length (s)")
    parser.add_argument(
        "--deployment",
        choices=("fused", "split"),
        default="fused",
        help="the worker under test: fused (default) or the split deployment's two stages",
    )
    parser.add_argument(
        "--kills",
        help="comma-separated, in order; kinds: "
        + "; ".join(f"{d}: {', '.join(k)}" for d, k in KINDS.items())
        + " (default: "
        + "; ".join(f"{d}: {','.join(k)}" for d, k in DEFAULT_KILLS.items())
        + ")",
    )
    parser.add_argument("--port", type=int, default=0, help="Kafka port (default: a free one)")
    parser.add_argument("--workdir", type=Path, help="logs (default .listenwell/chaos/<run>)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    deployment: Deployment = args.deployment
    kills = (
        tuple(k.strip() for k in args.kills.split(",") if k.strip())
        if args.kills
        else DEFAULT_KILLS[deployment]
    )
    unknown = [k for k in kills if k not in KINDS[deployment]]
    if unknown:
        parser.error(f"--kills {','.join(unknown)}: not a kind of the {deployment} deployment")
    config = ChaosConfig(
        mentions=args.mentions,
        seed=args.seed,
        duration_s=args.duration,
        kills=kills,
        deployment=deployment,
        port=args.port,
        workdir=args.workdir,
        results=args.results,
    )

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so the finally blocks stop every process this run started

    signal.signal(signal.SIGTERM, terminate)
    report = run(config)
    print(summary(report))
    if config.results is not None:
        print(f"figures in {config.results}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
