"""The pure dispatcher with a fake clock: Alertmanager's grouping and timer semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.config import parse_routes
from services.notify.core import Dispatcher, Silence
from streams.records import AlertState
from tests.factories import alert

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

ROUTES = """
route:
  receiver: slack
  group_by: [alertname, brand]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [team=care]
      receiver: mail
    - matchers: [brand=~"acme|globex"]
      receiver: hook
      continue: true
    - matchers: [brand=~"acme.*"]
      receiver: am
receivers:
  slack: {type: slack, webhook_url: {env: SLACK_URL}}
  mail: {type: email, host: localhost, from: a@b.c, to: [x@y.z], send_resolved: false}
  hook: {type: webhook, url: "http://hook.local/x"}
  am: {type: alertmanager, url: "http://am.local"}
"""


def dispatcher() -> Dispatcher:
    return Dispatcher(parse_routes(ROUTES))


def test_routing_first_match_continue_and_fallback_to_root() -> None:
    tree = parse_routes(ROUTES)
    assert [r.receiver for r in tree.match({"brand": "acme"})] == ["hook", "am"]
    assert [r.receiver for r in tree.match({"brand": "globex"})] == ["hook"]
    assert [r.receiver for r in tree.match({"brand": "initech", "team": "care"})] == ["mail"]
    assert [r.receiver for r in tree.match({"brand": "initech"})] == ["slack"]


def test_first_notification_after_group_wait_batches_the_group() -> None:
    d = dispatcher()
    d.ingest(alert(brand="initech"), T0, ref=0)
    d.ingest(alert(brand="initech", name="VolumeSurge"), T0, ref=1)
    d.ingest(alert(brand="initech"), T0 + timedelta(seconds=10), ref=2)  # same transition again
    assert d.due(T0 + timedelta(seconds=29)) == []
    assert d.low_watermark() == 0
    sent = d.due(T0 + timedelta(seconds=30))
    # group_by alertname, brand: two groups, one message each
    assert sorted(len(n.firing) for n in sent) == [1, 1]
    assert {n.receiver for n in sent} == {"slack"}
    for n in sent:
        d.done(n)
    assert d.low_watermark() is None


def test_changes_batched_every_group_interval_and_repeat_after_repeat_interval() -> None:
    d = Dispatcher(parse_routes(ROUTES.replace("[alertname, brand]", "[brand]")))
    d.ingest(alert(brand="initech"), T0)
    [first] = d.due(T0 + timedelta(seconds=30))
    assert len(first.firing) == 1
    d.ingest(alert(brand="initech", name="VolumeSurge"), T0 + timedelta(minutes=1))
    assert d.due(T0 + timedelta(minutes=2)) == []  # waits for the group interval
    [second] = d.due(T0 + timedelta(seconds=30, minutes=5))
    assert {a.alertname for a in second.firing} == {"NegativeSentimentSpike", "VolumeSurge"}
    # unchanged: nothing at the next intervals, until repeat_interval has passed
    t = T0 + timedelta(seconds=30, minutes=5)
    quiet = []
    while t < T0 + timedelta(hours=4, minutes=5):
        t += timedelta(minutes=5)
        quiet.extend(d.due(t))
    assert len(quiet) == 1
    assert quiet[0].at >= second.at + timedelta(hours=4)
    assert quiet[0].content_hash == second.content_hash


def test_resolved_sent_when_send_resolved_and_group_closed() -> None:
    d = dispatcher()
    d.ingest(alert(brand="initech"), T0)
    d.due(T0 + timedelta(seconds=30))
    d.ingest(alert(brand="initech", state=AlertState.RESOLVED), T0 + timedelta(minutes=20))
    [resolved] = d.due(T0 + timedelta(minutes=21))
    assert resolved.status == "resolved" and len(resolved.resolved) == 1
    assert d.next_due() is None  # group is gone


def test_resolved_not_sent_without_send_resolved() -> None:
    d = dispatcher()
    d.ingest(alert(brand="initech", team="care"), T0)
    [fired] = d.due(T0 + timedelta(seconds=30))
    assert fired.receiver == "mail"
    d.ingest(
        alert(brand="initech", team="care", state=AlertState.RESOLVED), T0 + timedelta(hours=1)
    )
    assert d.due(T0 + timedelta(hours=2)) == []


def test_silenced_alerts_are_suppressed_until_the_silence_ends() -> None:
    d = dispatcher()
    d.silences = [
        Silence(
            matchers=("brand=initech",),
            starts_at=T0,
            ends_at=T0 + timedelta(hours=1),
            created_by="ana",
            comment="known outage",
        )
    ]
    assert d.ingest(alert(brand="initech"), T0, ref=5) is True
    assert d.ingest(alert(brand="other"), T0, ref=6) is False
    sent = d.due(T0 + timedelta(seconds=30))
    assert [n.group_labels["brand"] for n in sent] == ["other"]
    assert d.low_watermark() == 6  # the silenced record no longer holds the commit
    later = [n for n in d.due(T0 + timedelta(hours=1, minutes=1)) if n.firing]
    assert [n.group_labels["brand"] for n in later] == ["initech"]


def test_info_alerts_go_to_a_daily_digest() -> None:
    d = dispatcher()
    d.ingest(alert(brand="initech", severity="info"), T0, ref=1)
    later = T0 + timedelta(hours=3)
    d.ingest(alert(brand="globex2", name="VolumeSurge", severity="info"), later, ref=2)
    assert d.due(T0 + timedelta(hours=5)) == []
    assert d.low_watermark() == 1
    [digest] = d.due(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    assert digest.kind == "digest" and len(digest.firing) == 2
    assert digest.group_key == "digest:2026-03-02"
    assert d.due(datetime(2026, 3, 4, 0, 0, tzinfo=UTC)) == []


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ("brand=acme", {"brand": "acme"}, True),
        ("brand!=acme", {"brand": "acme"}, False),
        ("brand=~ac.*", {"brand": "acme"}, True),
        ("brand=~cm", {"brand": "acme"}, False),  # anchored
        ("brand!~ac.*", {"brand": "x"}, True),
        ("team=", {}, True),
    ],
)
def test_matchers(matcher: str, labels: dict[str, str], expected: bool) -> None:
    from services.notify.config import Matcher

    assert Matcher.parse(matcher).matches(labels) is expected
