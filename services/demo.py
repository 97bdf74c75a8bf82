"""``make demo``: the whole pipeline on a simulated crisis.

Every process it starts is stopped at the end, by its pid.

Starts the local Kafka if it is not running, creates this run's topics (a fresh prefix, so earlier
runs never leak in), starts a streams worker, the console notifier and the API with its incident
room as child processes, produces the ``crisis`` scenario paced in event time, prints alert lines
as the notifier prints them, then a summary read from the worker's own ``/metrics`` and the
incident room's address. Run from a terminal, it then keeps the room open until Enter or Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from services.kafka_local import LocalKafka, answers_metadata, create_topics, free_port
from services.notify.demo import SLACK_URL_ENV, DemoSinks
from streams import topics
from streams.settings import Settings

MALFORMED_RECORDS = (
    b'{"id": "demo:broken-1", "text": "missing every other field"}',
    b"this is not JSON at all",
    b'{"id": "demo:broken-2", "source": "demo", "kind": "tweet", "brand": "Bad Brand!"}',
)


SETTLED_METRICS = (
    "listenwell_mentions_scored_total",
    "listenwell_mentions_dead_lettered_total",
    "listenwell_mentions_deduplicated_total",
)


def scrape(port: int) -> dict[str, float]:
    """Sum every sample of a process's /metrics by metric name and labels (``name{a="b"}``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def total(values: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    result = 0.0
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            result += value
    return result


@contextmanager
def child(
    cmd: list[str], env: dict[str, str], log_path: Path, **kwargs: object
) -> Iterator[subprocess.Popen[str]]:
    """Run a child process and stop it by its pid (SIGTERM, then SIGKILL) when the block ends."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log_file:
        stdout = kwargs.pop("stdout", log_file)
        process = subprocess.Popen(
            cmd,
            env=env,
            stdout=stdout,
            stderr=log_file,
            text=True,
            **kwargs,  # type: ignore[call-overload]
        )
        try:
            yield process
        finally:
            stop_process(process)


def worker_env(
    bootstrap: str,
    prefix: str,
    *,
    metrics_port: int,
    data_dir: Path,
    app_id: str | None = None,
    **settings: str,
) -> dict[str, str]:
    """The environment of a worker process on a run's own topics: this process's environment with
    the broker, the topic ``prefix``, the consumer group (``app_id``; by default ``listenwell-``
    and the prefix without its dot), the metrics port and the data dir, then ``settings``
    (``LISTENWELL_...=value``), which override any of these."""
    return {
        **os.environ,
        "LISTENWELL_KAFKA_BOOTSTRAP": bootstrap,
        "LISTENWELL_TOPIC_PREFIX": prefix,
        "LISTENWELL_APP_ID": app_id or f"listenwell-{prefix.rstrip('.')}",
        "LISTENWELL_WORKER_METRICS_PORT": str(metrics_port),
        "LISTENWELL_DATA_DIR": str(data_dir),
        **settings,
    }


def stop_process(process: subprocess.Popen[str], timeout: float = 15.0) -> None:
    """SIGTERM the process by pid, SIGKILL it if it has not gone after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(settings: Settings, *, speedup: float = 1440.0, seed: int = 7) -> int:
    """Run the demo; returns the process exit code."""
    from connectors.producer import MentionProducer
    from connectors.runner import Progress, run_source
    from connectors.simulate import SimulateSource
    from services.api import ApiSettings

    kafka: LocalKafka | None = None
    if settings.bootstrap_given():
        # A broker of the user's (or a test session's): use it, start and stop nothing.
        external = settings.kafka_bootstrap
        if not answers_metadata(external):
            print(f"listenwell demo: no Kafka answers at {external}", file=sys.stderr)
            return 1
        bootstrap = external
    else:
        port = settings.kafka_port
        local = LocalKafka(port)
        if not local.is_up():
            print(f"starting Apache Kafka on 127.0.0.1:{port} …", flush=True)
            local.start()
            kafka = local
        bootstrap = local.bootstrap
    run_id = time.strftime("%Y%m%d%H%M%S")
    prefix = f"demo-{run_id}."
    create_topics(bootstrap, prefix)
    workdir = Path(".listenwell") / "demo" / run_id
    sinks = DemoSinks(workdir)
    worker_metrics, notifier_metrics = free_port(), free_port()
    api = ApiSettings()
    api_port = api.api_port if "api_port" in api.model_fields_set else free_port()
    room_url = f"http://127.0.0.1:{api_port}/room/"
    # The user's own API token when set (never printed); else one for this run, printed to log in.
    own = api.api_token.get_secret_value() if api.api_token is not None else ""
    own_token = bool(own)
    token = own or secrets.token_urlsafe(18)
    env = dict(
        os.environ,
        LISTENWELL_KAFKA_BOOTSTRAP=bootstrap,
        LISTENWELL_TOPIC_PREFIX=prefix,
        LISTENWELL_APP_ID=f"listenwell-demo-{run_id}",
        LISTENWELL_WORKER_METRICS_PORT=str(worker_metrics),
        LISTENWELL_NOTIFIER_METRICS_PORT=str(notifier_metrics),
        LISTENWELL_DATA_DIR=str(workdir),
        LISTENWELL_PUBLIC_URL=f"http://127.0.0.1:{api_port}",
        **{SLACK_URL_ENV: sinks.slack_url},
    )
    api_env = dict(
        env,
        LISTENWELL_API_TOKEN=token,
        LISTENWELL_WEBHOOK_SECRET=(
            api.webhook_secret.get_secret_value() if api.webhook_secret else ""
        )
        or secrets.token_urlsafe(24),
    )
    cli = [sys.executable, "-m", "services.cli"]
    delivered = str(workdir / "delivered.log")
    notifier_args = ["--delivery-log", delivered, "--routes", str(sinks.routes)]
    print(f"run {run_id}: topics prefixed {prefix!r}, logs in {workdir}/", flush=True)
    print(f"incident room: {room_url}", flush=True)
    api_args = ["api", "--port", str(api_port), "--routes", str(sinks.routes)]
    try:
        with (
            sinks,
            child([*cli, *api_args], api_env, workdir / "api.log"),
            child([*cli, "worker"], env, workdir / "worker.log") as worker,
            child(
                [*cli, "notifier", *notifier_args],
                env,
                workdir / "notifier.log",
                stdout=subprocess.PIPE,
            ) as notifier,
        ):
            fired, resolved = _relay_alerts(notifier)
            source = SimulateSource(scenario="crisis", seed=seed)
            topic = topics.topic_name(topics.MENTIONS_RAW, prefix)
            print(
                f"producing the 'crisis' scenario (one simulated day, {speedup:.0f}x real time) …",
                flush=True,
            )

            def progress(p: Progress) -> None:
                print(f"  {p}", flush=True)

            with MentionProducer(bootstrap) as producer:
                stats = run_source(
                    source,
                    producer,
                    topic=topic,
                    speedup=speedup,
                    progress=progress,
                    progress_interval_s=10.0,
                )
                for value in MALFORMED_RECORDS:
                    producer.send_raw(topic, key=b"demo", value=value)
            expected = stats.produced + len(MALFORMED_RECORDS)
            print(
                f"produced {stats.produced} mentions and {len(MALFORMED_RECORDS)} malformed records"
            )
            values = _wait_until_consumed(worker, worker_metrics, expected)
            time.sleep(3)  # let the notifier print the last transitions
            sinks.wait_quiet()  # and deliver its last grouped notifications
            _print_summary(values, fired, resolved)
            print("notifications delivered by the notifier (routes → receivers):")
            print(sinks.where())
            _show_room(room_url, None if own_token else token)
            return 0 if values and fired else 1
    finally:
        if kafka is not None:
            print(f"stopping the Kafka broker this demo started (pid {kafka.pid})", flush=True)
            kafka.stop()


def _show_room(url: str, token: str | None) -> None:
    """Say where the incident room is; from a terminal, keep it open until Enter or Ctrl-C."""
    login = f"log in with the token {token}" if token else "log in with your LISTENWELL_API_TOKEN"
    print()
    print(f"incident room: {url} ({login})", flush=True)
    if not sys.stdin.isatty():
        return
    print("press Enter (or Ctrl-C) to stop the demo and everything it started", flush=True)
    with suppress(KeyboardInterrupt):
        sys.stdin.readline()


def _relay_alerts(notifier: subprocess.Popen[str]) -> tuple[list[str], list[str]]:
    fired: list[str] = []
    resolved: list[str] = []

    def relay() -> None:
        assert notifier.stdout is not None
        for line in notifier.stdout:
            print(f"  ALERT {line.rstrip()}", flush=True)
            (fired if line.startswith("[firing]") else resolved).append(line)

    threading.Thread(target=relay, daemon=True).start()
    return fired, resolved


def _wait_until_consumed(
    worker: subprocess.Popen[str], port: int, expected: int, patience_s: float = 120.0
) -> dict[str, float]:
    deadline = time.monotonic() + patience_s
    values: dict[str, float] = {}
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            print(f"the worker exited with code {worker.returncode}; see its log")
            return values
        try:
            values = scrape(port)
        except OSError:
            time.sleep(0.5)
            continue
        # Every ingested record ends scored, dead-lettered or deduplicated, and is counted there
        # only once the batch is published: waiting on ``ingested`` alone read the summary while
        # the last batch was still being scored.
        settled = sum(total(values, name) for name in SETTLED_METRICS)
        if settled >= expected:
            return values
        time.sleep(0.5)
    print(f"gave up waiting for the worker to consume {expected} records")
    return values


def _print_summary(values: dict[str, float], fired: list[str], resolved: list[str]) -> None:
    print()
    print("summary")
    print(f"  ingested       {total(values, 'listenwell_mentions_ingested_total'):>8.0f}")
    print(f"  scored         {total(values, 'listenwell_mentions_scored_total'):>8.0f}")
    print(f"  dead-lettered  {total(values, 'listenwell_mentions_dead_lettered_total'):>8.0f}")
    print(f"  deduplicated   {total(values, 'listenwell_mentions_deduplicated_total'):>8.0f}")
    print(f"  PII redacted   {total(values, 'listenwell_pii_redactions_total'):>8.0f}")
    print(f"  alerts fired   {len(fired):>8d}")
    print(f"  alerts resolved{len(resolved):>8d}")
