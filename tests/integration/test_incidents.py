"""Incidents end to end: the worker opens, follows and recovers an incident on the compacted
``incidents`` topic; ``listenwell incidents``, the API and the metrics show it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from connectors.producer import MentionProducer
from connectors.simulate import generate
from services.api import ApiSettings, make_api
from services.cli import main
from services.incidents import CachedIncidents, read_incidents
from streams import topics
from streams.records import Incident, IncidentStatus, Mention
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration


class NoSink:
    async def send(self, mention: Mention) -> None:
        raise AssertionError("not used")

    async def close(self) -> None:
        return None


def test_a_crisis_incident_is_followed_to_recovery(
    run_factory: Callable[[str], Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_factory("incidents")
    worker = run.start_worker()
    crisis = [m for m in generate("crisis", seed=7) if m.brand == "northwind-air"]
    with MentionProducer(run.bootstrap) as producer:
        for mention in crisis:
            producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))
    topic = run.topic(topics.INCIDENTS)

    def recovered() -> list[Incident]:
        return [
            i
            for i in read_incidents(run.bootstrap, topic).values()
            if i.alertname == "NegativeSentimentSpike" and i.status is IncidentStatus.RECOVERED
        ]

    (incident,) = wait_for(recovered, what="a recovered NegativeSentimentSpike incident")
    assert incident.brand == "northwind-air"
    assert incident.onset < incident.firing_at < incident.peak_at
    assert incident.resolved_at is not None and incident.recovered_at is not None
    assert incident.resolved_at < incident.recovered_at
    assert incident.time_to_recover_s == (incident.recovered_at - incident.onset).total_seconds()
    assert incident.peak_value >= 0.6
    # One point per minute from onset to recovery, with the baseline beside the value.
    minutes = (incident.recovered_at - incident.onset).total_seconds() // 60
    assert len(incident.series) == minutes
    assert all(p.baseline is not None and p.baseline < 0.3 for p in incident.series)

    def observed() -> float:
        return worker.metric(
            "listenwell_incident_time_to_recover_seconds_count",
            alertname="NegativeSentimentSpike",
        )

    assert wait_for(observed, what="the time-to-recover metric") == 1.0

    monkeypatch.setenv("LISTENWELL_KAFKA_BOOTSTRAP", run.bootstrap)
    monkeypatch.setenv("LISTENWELL_TOPIC_PREFIX", run.prefix)
    assert main(["incidents", "list"]) == 0
    listing = capsys.readouterr().out
    assert incident.id in listing and "recovered" in listing
    assert main(["incidents", "show", incident.id[:20]]) == 0
    shown = capsys.readouterr().out
    assert f"incident  {incident.id}" in shown
    value_line = next(line for line in shown.splitlines() if line.startswith("value"))
    assert "█" in value_line and "▁" in shown

    app = make_api(
        ApiSettings(),
        NoSink(),
        secret=SecretStr("s"),
        incidents=CachedIncidents(run.bootstrap, topic),
        token=SecretStr("incidents-token-0123456789"),
    )
    auth = {"Authorization": "Bearer incidents-token-0123456789"}

    async def api() -> None:
        async with TestClient(TestServer(app)) as client:
            listed = await client.get("/v1/incidents", headers=auth)
            assert listed.status == 200
            body = await listed.json()
            assert incident.id in [i["id"] for i in body["incidents"]]
            assert all("series" not in i for i in body["incidents"])
            one = await client.get(f"/v1/incidents/{incident.id}", headers=auth)
            assert one.status == 200
            assert Incident.model_validate(await one.json()) == incident
            missing = await client.get("/v1/incidents/nope", headers=auth)
            assert missing.status == 404

    asyncio.run(api())
