"""A commit the consumer group refuses while it rebalances is retried, never fatal.

The broker answers a commit during a rebalance with ``RebalanceInProgressError`` (or the
member / generation errors), which kafka-python raises as is, not as ``CommitFailedError``:
``bench/chaos.py`` saw it end the notifier when a pair of workers was killed. The integration test
``tests/integration/test_notifier_commit.py`` covers ``CommitFailedError`` against a real broker;
here a stand-in consumer refuses the first commit with each of the other errors. A commit made
while the broker is unreachable retries inside kafka-python until its request timeout and then
raises ``KafkaTimeoutError``, or ``KafkaConnectionError`` when the broker goes away during the
commit (both seen in ``bench/chaos.py``): the offsets stay pending the same way. An error that is
not retriable still ends the notifier.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    IllegalGenerationError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from prometheus_client import CollectorRegistry

from services.notify import service as notify_service
from services.notify.service import NotifierService
from tests.factories import alert

TP = TopicPartition("alerts", 0)


class RefusingConsumer:
    """Hands out one alert record, refuses the first commit with ``error``, then accepts."""

    error: KafkaError = CommitFailedError()

    def __init__(self, *topics: str, **config: Any) -> None:
        self.records = [SimpleNamespace(offset=0, value=alert(brand="acme").to_json())]
        self.refused = 0
        self.commits: list[dict[TopicPartition, int]] = []
        self.timeouts_ms: list[int | None] = []

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[SimpleNamespace]]:
        records, self.records = self.records, []
        return {TP: records} if records else {}

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int | None = None) -> None:
        self.timeouts_ms.append(timeout_ms)
        if not self.refused:
            self.refused += 1
            raise self.error
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def close(self) -> None:
        pass


def notifier(data_dir: Path, printed: list[str]) -> NotifierService:
    """A notifier over the stand-in consumer that prints its console lines into ``printed``."""
    return NotifierService(
        None,
        bootstrap="127.0.0.1:1",
        prefix="",
        group="notifier",
        data_dir=data_dir,
        registry=CollectorRegistry(),
        console=printed.append,
    )


@pytest.mark.parametrize(
    "error",
    [
        RebalanceInProgressError(),
        IllegalGenerationError(),
        UnknownMemberIdError(),
        CommitFailedError(),
        KafkaTimeoutError(),
        KafkaConnectionError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_refused_commit_is_logged_and_made_on_the_next_round(
    error: KafkaError,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(RefusingConsumer, "error", error)
    monkeypatch.setattr(notify_service, "KafkaConsumer", RefusingConsumer)
    printed: list[str] = []
    service = notifier(tmp_path, printed)
    consumer = service._consumer
    assert isinstance(consumer, RefusingConsumer)
    caplog.set_level(logging.WARNING, logger="services.notify.service")

    service.step(poll_ms=0)  # delivers, then the commit is refused: must not raise
    assert len(printed) == 1, "the alert was delivered before the commit"
    assert consumer.commits == []
    assert any(type(error).__name__ in r.getMessage() for r in caplog.records)

    service.step(poll_ms=0)
    assert consumer.commits == [{TP: 1}], "the pending offset is committed on the next round"
    assert len(printed) == 1, "nothing sent twice"
    service.close()


def test_a_commit_error_that_is_not_retriable_still_ends_the_notifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RefusingConsumer, "error", GroupAuthorizationFailedError())
    printed: list[str] = []
    monkeypatch.setattr(notify_service, "KafkaConsumer", RefusingConsumer)
    service = notifier(tmp_path, printed)
    with pytest.raises(GroupAuthorizationFailedError):
        service.step(poll_ms=0)
    service.close()


def test_a_commit_waits_for_an_unreachable_broker_at_most_its_own_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-python's default wait (its request timeout, 30 s) held every due notification while
    the broker was down; each commit now gives up after COMMIT_TIMEOUT_S and is retried."""
    monkeypatch.setattr(RefusingConsumer, "error", KafkaTimeoutError())
    monkeypatch.setattr(notify_service, "KafkaConsumer", RefusingConsumer)
    service = notifier(tmp_path, [])
    consumer = service._consumer
    assert isinstance(consumer, RefusingConsumer)
    service.step(poll_ms=0)
    service.step(poll_ms=0)
    assert consumer.timeouts_ms == [5000, 5000]
    service.close()
