"""Publishing a batch: which topic and key each record goes to, and its delivery futures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streams.pipeline import BatchResult
from streams.publish import OutputTopics, Publisher
from streams.records import (
    Alert,
    CustomerHealth,
    CustomerTier,
    DeadLetter,
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
