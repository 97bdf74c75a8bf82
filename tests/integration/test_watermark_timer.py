"""The wall-clock watermark with a real worker and broker: a brand that stops talking resolves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from connectors.producer import MentionProducer
from streams import topics
from streams.records import Alert, AlertState
from tests import factories
from tests.integration.harness import REPO, Run, wait_for

pytestmark = pytest.mark.integration

QUIET_RULES = REPO / "tests" / "data" / "quiet_brand_rules.yaml"
BRAND = "quiet-co"


def test_a_brand_that_stops_talking_gets_its_resolved_without_another_mention(
    run_factory: Callable[[str], Run],
) -> None:
    """``BrandTalking`` fires for a minute with a mention and resolves after ``keep_firing_for``
    (1m) of minutes without one. Nothing but the wall clock closes those minutes: the brand says
    nothing after its three mentions."""
    run = run_factory("quiet")
    worker = run.start_worker(
        LISTENWELL_RULES_PATH=str(QUIET_RULES),
        LISTENWELL_ALLOWED_LATENESS_S="5",
        LISTENWELL_WATERMARK_INTERVAL_S="1",
    )
    now = datetime.now(UTC)
    mentions = [
        factories.mention(
            f"quiet-{n}", at=now, brand=BRAND, text="Boarding now, see you on the other side."
        )
        for n in range(3)
    ]
    with MentionProducer(run.bootstrap) as producer:
        for mention in mentions:
            producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))

    def ours() -> list[Alert]:
        return [a for a in run.alerts() if a.labels.get("brand") == BRAND]

    def resolved() -> list[Alert]:
        alerts = ours()
        return alerts if any(a.state is AlertState.RESOLVED for a in alerts) else []

    alerts = wait_for(
        resolved,
        what=lambda: f"BrandTalking to resolve; so far {ours()} (worker logs in {run.workdir})",
        patience_s=600.0,
    )
    # The alerts topic is at-least-once (docs/topology.md): a worker that replays offsets it had
    # not committed (a rebalance before its first commit) re-sends the same transitions from its
    # outbox and the notifier drops them as duplicates. So each transition counts once, and a repeat
    # must be the very same record.
    transitions = {a.transition_id: a for a in reversed(alerts)}
    assert all(a == transitions[a.transition_id] for a in alerts), "a repeat is a re-send"
    distinct = sorted(transitions.values(), key=alerts.index)
    assert [(a.alertname, a.state) for a in distinct] == [
        ("BrandTalking", AlertState.FIRING),
        ("BrandTalking", AlertState.RESOLVED),
    ]
    firing, resolution = distinct
    minute = now.replace(second=0, microsecond=0)
    assert firing.starts_at == minute + timedelta(minutes=1), "fired when its minute closed"
    # Resolved at the end of the first minute past keep_firing_for without a mention.
    assert resolution.ends_at == minute + timedelta(minutes=3)
    assert {s.mention.id for s in run.scored()} == {m.id for m in mentions}
    assert worker.metric("listenwell_watermark_advances_total") >= 3
    assert worker.metric("listenwell_live_partitions") == 1
