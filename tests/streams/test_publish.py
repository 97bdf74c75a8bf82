"""Publishing a batch: which topic and key each record goes to, and its delivery futures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streams.pipeline import BatchResult, ScoredRecord, ScoringResult
from streams.publish import OutputTopics, Publisher
from streams.records import (
    ERASURE_KEY,
    Alert,
    CustomerHealth,
    CustomerTier,
    DeadLetter,
    ErasureCommand,
    Incident,
)
from tests import factories
from tests.streams.fakes import FakeSink

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_topic_names_follow_the_registry_and_the_prefix() -> None:
    names = OutputTopics.named("run7.")
    assert names == OutputTopics(
        dead_letters="run7.mentions.dlq",
        scored="run7.mentions.scored",
        alerts="run7.alerts",
        customers="run7.customers.health",
        incidents="run7.incidents",
    )


def test_each_record_goes_to_its_topic_under_its_key_and_its_delivery_can_be_awaited() -> None:
    alert = factories.alert("X", brand="acme")
    health = CustomerHealth(
        brand="acme",
        customer_id="c1",
        risk_score=80.0,
        tier=CustomerTier.AT_RISK,
        reasons=["3 negative mentions in 7d"],
        updated_at=T0,
    )
    letter = DeadLetter.of(
        b"{bad", reason="invalid_json", detail="x", topic="p.mentions.raw", partition=0, offset=3
    )
    incident = Incident.model_validate(
        {
            "id": "inc-1",
            "brand": "acme",
            "alertname": "X",
            "status": "firing",
            "onset": T0,
            "peak_value": 1.0,
            "peak_at": T0,
            "fingerprint": "fp1",
            "firing_at": T0,
            "updated_at": T0,
        }
    )
    result = BatchResult(
        dead_letters=[letter], alerts=[alert], customers=[health], incidents=[incident]
    )
    sink = FakeSink(hold=True)

    async def scenario() -> None:
        deliveries = await Publisher(sink, OutputTopics.named("p.")).publish(result)
        assert len(deliveries) == 4 and not any(d.done() for d in deliveries)  # type: ignore[attr-defined]
        sink.deliver()
        await asyncio.gather(*deliveries)

    asyncio.run(scenario())
    assert [(s.topic, s.key) for s in sink.sent] == [
        ("p.mentions.dlq", b"p.mentions.raw"),
        ("p.alerts", alert.fingerprint.encode()),
        ("p.customers.health", b"acme/c1"),
        ("p.incidents", b"inc-1"),
    ]
    assert Alert.from_json(sink.sent[1].value or b"") == alert


def test_the_scoring_stage_publishes_by_brand_and_forwards_an_erasure_to_every_partition() -> None:
    scored = [factories.scored(1, brand="acme"), factories.scored(2, brand="globex")]
    command = ErasureCommand(request_id="r1", customer_id="c1")
    result = ScoringResult(
        scored=[
            ScoredRecord(0, 10, scored[0]),
            ScoredRecord(0, 11, command),
            ScoredRecord(1, 12, scored[1]),
        ]
    )
    sink = FakeSink()
    names = OutputTopics.named("p.")
    asyncio.run(Publisher(sink, names, scored_partitions=3).publish_scoring(result))
    assert [(s.topic, s.key, s.partition) for s in sink.sent] == [
        (names.scored, b"acme", None),
        (names.scored, ERASURE_KEY, 0),
        (names.scored, ERASURE_KEY, 1),
        (names.scored, ERASURE_KEY, 2),
        (names.scored, b"globex", None),
    ]
    assert ErasureCommand.from_json(sink.sent[1].value or b"") == command
