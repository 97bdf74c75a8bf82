"""Helpers for integration tests: worker processes and topic readers against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.demo import scrape, total
from services.kafka_local import create_topics, free_port
from streams import topics
from streams.records import Alert, DeadLetter, ScoredMention
from streams.topic_reader import read_records
from tests.factories import alert

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    """One isolated pipeline run on the shared broker: its own topic prefix and consumer group."""

    bootstrap: str
    name: str
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prefix = f"t-{self.name}-{os.getpid()}-{time.monotonic_ns()}."
        create_topics(self.bootstrap, self.prefix)

    def topic(self, spec: topics.TopicSpec) -> str:
        return topics.topic_name(spec, self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        """The run's worker environment; ``extra`` adds variables or replaces them (a data dir
        of its own, say)."""
        return {
            **os.environ,
            "LISTENWELL_KAFKA_BOOTSTRAP": self.bootstrap,
            "LISTENWELL_TOPIC_PREFIX": self.prefix,
            "LISTENWELL_APP_ID": f"listenwell-{self.prefix.rstrip('.')}",
            "LISTENWELL_DATA_DIR": str(self.workdir),
            **extra,
        }

    def start_worker(self, stage: str = "fused", **settings: str) -> Worker:
        """A worker process of this run (``listenwell worker --stage stage``); ``settings`` are
        extra ``LISTENWELL_*`` variables."""
        port = free_port()
        log_path = self.workdir / f"worker-{len(self.processes)}-{stage}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "services.cli", "--log-level", "INFO"),
                *("worker", "--stage", stage),
            ],
            env=self.env(LISTENWELL_WORKER_METRICS_PORT=str(port), **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.processes.append(process)
        return Worker(process, port, log_path)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def read(self, spec: topics.TopicSpec) -> list[bytes]:
        return read_all(self.bootstrap, self.topic(spec))

    def scored(self) -> list[ScoredMention]:
        return [ScoredMention.from_json(v) for v in self.read(topics.MENTIONS_SCORED)]

    def alerts(self) -> list[Alert]:
        return [Alert.from_json(v) for v in self.read(topics.ALERTS)]

    def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_json(v) for v in self.read(topics.MENTIONS_DLQ)]


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path
    """The worker's output (log lines at INFO)."""

    def metric(self, name: str, **labels: str) -> float:
        try:
            return total(scrape(self.metrics_port), name, **labels)
        except OSError:
            return 0.0

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value currently in ``topic`` (all partitions, from the beginning to the end)."""
    return [record.value for record in read_records(bootstrap, topic)]


def firing_alert(brand: str, **labels: str) -> bytes:
    """A firing NegativeSentimentSpike for ``brand`` (plus ``labels``), as the worker writes it."""
    return alert(brand=brand, **labels).to_json()


def wait_for(
    condition: Callable[[], Any],
    *,
    what: str | Callable[[], str],
    patience_s: float = 180.0,
    every_s: float = 0.5,
) -> Any:
    """Poll until ``condition()`` is truthy; fail with ``what`` (text, or a function giving the
    text at failure time) if it never becomes so.

    This is a liveness bound (the test fails instead of hanging), not a speed assertion.
    """
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
