"""The notifier survives a commit the consumer group refuses (``CommitFailedError``).

A real broker and a real consumer: the Slack webhook answers slower than the consumer's
``max_poll_interval_ms``, so the member is expelled from its group while it delivers and its
commit fails with ``CommitFailedError`` — what a rebalance or a broker restart does to a running
notifier. It must log a warning, rejoin and keep delivering, with no second message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from services.notify.config import parse_routes
from services.notify.service import NotifierService
from streams import topics
from tests.integration.harness import Run, firing_alert, wait_for
from tests.services.notify.fakes import FakeSlack, fake_slack

pytestmark = pytest.mark.integration

ROUTES = """
route:
  receiver: slack
  group_by: [alertname, brand]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  slack: {type: slack, webhook_url: {env: TEST_COMMIT_SLACK_URL}}
"""
SLOW_S = 3.0
"""How long the slow webhook takes to answer: longer than the consumer's poll interval below."""


def committed(run: Run, group: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=run.bootstrap, group_id=group)
    try:
        offset: int | None = consumer.committed(TopicPartition(run.topic(topics.ALERTS), 0))
        return offset
    finally:
        consumer.close()


def slow(slack: FakeSlack, delay_s: float) -> None:
    """Make ``slack`` answer each POST after ``delay_s``."""
    answer = slack.answer

    def delayed(headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        time.sleep(delay_s)
        return answer(headers, body)

    slack.answer = delayed  # type: ignore[method-assign]


def test_notifier_keeps_delivering_after_a_refused_commit(
    run_factory: Callable[[str], Run],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = run_factory("commit")
    group = "notifier-commit"
    producer = KafkaProducer(bootstrap_servers=run.bootstrap)
    with fake_slack() as slack:
        slow(slack, SLOW_S)
        monkeypatch.setenv("TEST_COMMIT_SLACK_URL", slack.url)
        service = NotifierService(
            parse_routes(ROUTES),
            bootstrap=run.bootstrap,
            prefix=run.prefix,
            group=group,
            data_dir=tmp_path / "notifier",
            registry=CollectorRegistry(),
            # a member that does not poll for 1 s leaves its group: the slow webhook makes it
            consumer_config={
                "max_poll_interval_ms": 1_000,
                "session_timeout_ms": 6_000,
                "heartbeat_interval_ms": 300,
            },
        )
        caplog.set_level(logging.WARNING, logger="services.notify.service")
        try:
            producer.send(run.topic(topics.ALERTS), value=firing_alert("acme")).get(timeout=30)

            def step_until(condition: Callable[[], bool], what: str) -> None:
                def stepped() -> bool:
                    service.step(poll_ms=200)  # raises if a refused commit were fatal
                    return condition()

                wait_for(stepped, what=what, patience_s=120, every_s=0.05)

            step_until(lambda: len(slack.messages) == 1, "the first message")
            refused = [r for r in caplog.records if "commit refused" in r.getMessage()]
            assert refused, "the slow delivery should have cost the member its place in the group"
            assert "CommitFailedError" in refused[0].getMessage()
            step_until(lambda: committed(run, group) == 1, "the first alert committed on rejoin")

            producer.send(run.topic(topics.ALERTS), value=firing_alert("globex")).get(timeout=30)
            step_until(lambda: len(slack.messages) == 2, "the second message")
            step_until(lambda: committed(run, group) == 2, "the second alert committed")
            for _ in range(20):  # a little more: the re-read first alert must not go out again
                service.step(poll_ms=100)
        finally:
            service.close()
            producer.close()
    brands = [str(m["blocks"]) for m in slack.messages]
    assert len(slack.messages) == 2
    assert "acme" in brands[0] and "globex" in brands[1]
