"""The routed notifier against the real broker and a local fake Slack: silences, dead letters,
and no second message after kill -9 right after a delivery."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.demo import scrape, total
from services.kafka_local import free_port
from streams import topics
from tests.integration.harness import REPO, Run, firing_alert, read_all, wait_for
from tests.services.notify.fakes import fake_slack

pytestmark = pytest.mark.integration

ROUTES = """
route:
  receiver: slack
  group_by: [alertname, brand]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: [hold=yes]      # keeps its record uncommitted for an hour
      receiver: slack
      group_wait: 1h
    - matchers: [brand=broken]
      receiver: broken
receivers:
  slack: {type: slack, webhook_url: {env: TEST_SLACK_URL}}
  broken: {type: slack, webhook_url: {env: TEST_BROKEN_URL}, max_attempts: 2}
"""


def cli(run: Run, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=run.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def committed(run: Run, group: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=run.bootstrap, group_id=group)
    try:
        offset: int | None = consumer.committed(TopicPartition(run.topic(topics.ALERTS), 0))
        return offset
    finally:
        consumer.close()


def test_silence_dlq_and_no_second_message_after_kill9(
    run_factory: Callable[[str], Run], tmp_path: Path
) -> None:
    run = run_factory("notifier")
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)

    out = cli(run, "silence", "add", "--matcher", "brand=muted", "--for", "1h",
              "--comment", "known outage", "--author", "ana")  # fmt: skip
    silence_id = out.split()[0]
    assert silence_id in cli(run, "silence", "list")
    temporary = cli(run, "silence", "add", "--matcher", "brand=other", "--for", "1h",
                    "--comment", "x", "--author", "bo").split()[0]  # fmt: skip
    cli(run, "silence", "expire", temporary)
    assert temporary not in cli(run, "silence", "list")
    assert "expired" in cli(run, "silence", "list", "--all")

    group = "notifier-it"
    with fake_slack() as slack, fake_slack([(503, {})] * 5) as broken:

        def start() -> tuple[subprocess.Popen[bytes], int]:
            port = free_port()
            log = (run.workdir / f"notifier-{len(run.processes)}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "notifier", "--routes", str(routes),
                 "--group", group, "--delivery-log", str(run.workdir / "notifier" / "log")],
                env=run.env(
                    TEST_SLACK_URL=slack.url,
                    TEST_BROKEN_URL=broken.url,
                    LISTENWELL_NOTIFIER_METRICS_PORT=str(port),
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )  # fmt: skip
            run.processes.append(process)
            return process, port

        def metric(port: int, name: str, **labels: str) -> float:
            try:
                return total(scrape(port), name, **labels)
            except OSError:
                return 0.0

        producer = KafkaProducer(bootstrap_servers=run.bootstrap)
        topic = run.topic(topics.ALERTS)
        for value in (
            firing_alert("held", hold="yes"),  # offset 0: pending for an hour, holds the commit
            firing_alert("muted"),
            firing_alert("broken"),
            firing_alert("acme"),
        ):
            producer.send(topic, value=value).get(timeout=30)
        producer.close()

        notifier, port = start()
        wait_for(lambda: len(slack.messages) >= 1, what="the acme message", patience_s=60)
        wait_for(
            lambda: metric(port, "listenwell_notifications_total", outcome="parked") >= 1,
            what="the broken receiver's notification parked",
            patience_s=60,
        )
        assert metric(port, "listenwell_silenced_alerts_total") == 1
        notifier.kill()  # SIGKILL, right after delivery
        notifier.wait()
        assert committed(run, group) in (None, 0)  # the held alert kept everything uncommitted

        _, port = start()
        wait_for(
            lambda: metric(port, "listenwell_notifications_total", outcome="duplicate") >= 2,
            what="the restarted notifier to skip what it had sent and parked",
            patience_s=60,
        )
        assert len(slack.messages) == 1
        [message] = slack.messages
        assert "acme" in json.dumps(message)
        assert "muted" not in json.dumps(slack.messages)
        assert len(broken.requests) == 2  # max_attempts, and not again after the restart

    [parked] = [json.loads(v) for v in read_all(run.bootstrap, run.topic(topics.NOTIFICATIONS_DLQ))]
    assert parked["receiver"] == "broken"
    assert "503" in parked["reason"]
    assert parked["alerts"][0]["labels"]["brand"] == "broken"


REPEAT_ROUTES = """
route:
  receiver: slack
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 6s
receivers:
  slack: {type: slack, webhook_url: {env: TEST_SLACK_URL}}
"""


def test_restarted_notifier_keeps_repeating_committed_firing_alerts(
    run_factory: Callable[[str], Run], tmp_path: Path
) -> None:
    run = run_factory("repeat")
    routes = tmp_path / "routes.yaml"
    routes.write_text(REPEAT_ROUTES)
    group = "notifier-repeat"
    producer = KafkaProducer(bootstrap_servers=run.bootstrap)
    producer.send(run.topic(topics.ALERTS), value=firing_alert("acme")).get(timeout=30)
    producer.close()
    with fake_slack() as slack:

        def start() -> tuple[subprocess.Popen[bytes], int]:
            port = free_port()
            log = (run.workdir / f"notifier-{len(run.processes)}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "--log-level", "INFO", "notifier",
                 "--routes", str(routes), "--group", group],
                env=run.env(TEST_SLACK_URL=slack.url, LISTENWELL_NOTIFIER_METRICS_PORT=str(port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )  # fmt: skip
            run.processes.append(process)
            return process, port

        first, _ = start()
        wait_for(lambda: len(slack.messages) == 1, what="the first message", patience_s=60)
        wait_for(lambda: committed(run, group) == 1, what="the alert committed", patience_s=30)
        first.terminate()
        first.wait(30)
        assert len(slack.messages) == 1

        _, port = start()
        # the committed alert is rebuilt: its notification is a duplicate until the repeat is due
        wait_for(lambda: len(slack.messages) == 2, what="the repeat after restart", patience_s=60)
        assert scrape(port)  # the restarted process is the one that sent it
        assert slack.messages[1] == slack.messages[0]
        log_text = (run.workdir / "notifier-1.log").read_text()
        assert "rebuilt groups from 1 committed alert records" in log_text
