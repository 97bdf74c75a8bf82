"""The room's read model, without Kafka: records in, page figures out."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from services.room.model import (
    Limits,
    MentionView,
    Outcome,
    RoomModel,
    TopicKind,
    representative,
)
from streams.records import AlertState, CustomerTier, SentimentLabel
from tests.services.room.records import T0, alert, health, incident, scored

NEG = SentimentLabel.NEGATIVE


def feed(model: RoomModel, records: list[tuple[TopicKind, bytes | None, bytes | None]]) -> None:
    for kind, key, value in records:
        model.apply(kind, key, value)


def s(record: object) -> tuple[TopicKind, bytes | None, bytes | None]:
    from streams.records import Alert, CustomerHealth, Incident, ScoredMention

    if isinstance(record, ScoredMention):
        return TopicKind.SCORED, record.mention.brand.encode(), record.to_json()
    if isinstance(record, Incident):
        return TopicKind.INCIDENTS, record.id.encode(), record.to_json()
    if isinstance(record, CustomerHealth):
        key = f"{record.brand}/{record.customer_id}".encode()
        return TopicKind.CUSTOMERS, key, record.to_json()
    assert isinstance(record, Alert)
    return TopicKind.ALERTS, record.fingerprint.encode(), record.to_json()


def test_brand_rows_compare_the_last_hour_with_the_rest_of_the_day() -> None:
    model = RoomModel()
    records = []
    # 23 quiet hours for acme: 6 mentions an hour, 1 of them negative.
    for hour in range(23):
        for i in range(6):
            at = T0 + timedelta(hours=hour, minutes=i * 10)
            label = NEG if i == 0 else SentimentLabel.NEUTRAL
            records.append(scored(hour * 100 + i, at=at, label=label))
    # The last hour: 30 mentions, 15 negative, 6 of those with an empathy-deficit phrase.
    for i in range(30):
        at = T0 + timedelta(hours=23, minutes=i * 2 + 1)
        label = NEG if i % 2 else SentimentLabel.NEUTRAL
        deficit = ("nobody cares",) if i % 5 == 1 else ()
        records.append(scored(5000 + i, at=at, label=label, deficit=deficit))
    # Another brand with 10 mentions in the last hour.
    records += [
        scored(i, brand="globex", at=T0 + timedelta(hours=23, minutes=i)) for i in range(10)
    ]
    feed(model, [s(r) for r in records])

    acme, globex = model.brand_rows()
    assert (acme.brand, globex.brand) == ("acme", "globex")
    assert acme.volume_now == 30
    assert acme.volume_usual == 6.0
    assert acme.negative_now == 0.5
    assert acme.negative_baseline == 1 / 6
    assert acme.deficit_now == 6 / 30
    assert acme.deficit_baseline == 0.0
    assert acme.share_of_voice == 30 / 40 and globex.share_of_voice == 10 / 40
    assert len(acme.volume_series) == 96 and sum(acme.volume_series) == 23 * 6 + 30
    assert sum(acme.negative_series) == 23 + 15
    assert acme.volume_series[-1] > acme.volume_series[0]
    assert model.now == T0 + timedelta(hours=24)  # the end of the latest minute


def test_the_same_records_in_any_interleaving_give_the_same_pages() -> None:
    inc = incident()
    records = [s(inc), s(alert(starts_at=inc.firing_at))]
    records += [
        s(
            scored(
                i,
                label=NEG if i % 3 else SentimentLabel.POSITIVE,
                at=T0 + timedelta(hours=9, minutes=i),
                text=f"my bag was lost again {i % 7}",
            )
        )
        for i in range(300)
    ]
    records += [s(health(f"cust-{i}", CustomerTier.AT_RISK, 50 + i)) for i in range(5)]

    def pages(order: list[tuple[TopicKind, bytes | None, bytes | None]]) -> object:
        model = RoomModel()
        feed(model, order)
        return model.brand_rows(), model.incident_view(inc.id), model.customer_queue()

    expected = pages(records)
    for seed in range(3):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert pages(shuffled) == expected


def test_duplicates_late_and_future_mentions_are_not_counted() -> None:
    model = RoomModel()
    first = scored(1, at=T0 + timedelta(hours=30))
    assert model.apply(*s(first)) is Outcome.APPLIED
    assert model.apply(*s(first)) is Outcome.DUPLICATE
    too_old = scored(2, at=T0 + timedelta(hours=5))
    assert model.apply(*s(too_old)) is Outcome.STALE
    future = scored(3, at=T0 + timedelta(hours=31))
    future = future.model_copy(update={"scored_at": T0 + timedelta(hours=30)})
    assert model.apply(*s(future)) is Outcome.STALE
    (row,) = model.brand_rows()
    assert row.volume_now == 1


def test_invalid_records_are_reported_not_raised() -> None:
    model = RoomModel()
    assert model.apply(TopicKind.SCORED, b"acme", b"not json") is Outcome.INVALID
    assert model.apply(TopicKind.INCIDENTS, b"x", b'{"id": "x"}') is Outcome.INVALID
    assert model.apply(TopicKind.ERASURES, b"x", b"[1, 2]") is Outcome.INVALID
    assert model.apply(TopicKind.ALERTS, None, None) is Outcome.INVALID
    assert model.version == 0


def test_memory_is_bounded() -> None:
    limits = Limits(max_brands=2, ring_per_brand=5, samples_per_hour=3, max_incidents=2)
    model = RoomModel(limits)
    for i in range(200):
        model.apply(*s(scored(i, label=NEG, at=T0 + timedelta(minutes=i % 50))))
    assert model.apply(*s(scored(1, brand="b2"))) is Outcome.APPLIED
    assert model.apply(*s(scored(1, brand="b3"))) is Outcome.OVER_CAPACITY
    assert len(model.recent_mentions("acme")) == 5
    held = model.held()
    assert held["brand"] == 2
    assert held["mention"] == 5 + 3 + 1  # ring, one hour's negative sample, b2's ring
    for hour in range(4):
        model.apply(*s(incident(onset=T0 + timedelta(hours=hour))))
    assert len(model.incidents) == 2
    # Past the 24 h window the minute buckets go.
    model.apply(*s(scored(999, at=T0 + timedelta(hours=48))))
    assert model.held()["minute"] == 1


def test_an_incident_gathers_its_alerts_and_its_representative_negative_mentions() -> None:
    model = RoomModel()
    inc = incident(minutes=180)
    end = inc.recovered_at
    assert end is not None
    firing = alert(starts_at=inc.firing_at)
    resolved = alert(state=AlertState.RESOLVED, starts_at=inc.firing_at, ends_at=inc.resolved_at)
    earlier = alert(starts_at=inc.onset - timedelta(days=2))  # an older incident's alert
    feed(model, [s(inc), s(firing), s(firing), s(resolved), s(earlier)])
    texts = [
        "my bag was lost at the airport",
        "they lost my bag again",
        "bag lost, no answer",
        "lost bag and nobody calls back",
        "the pilot sang a song",
    ]
    for i in range(100):
        at = inc.onset + timedelta(minutes=i)
        model.apply(*s(scored(i, at=at, label=NEG, text=texts[i % 5] + f" #{i % 3}")))
    model.apply(*s(scored(500, at=end + timedelta(hours=2), label=NEG, text="after the end")))

    view = model.incident_view(inc.id)
    assert view is not None
    assert [a.state for a in view.alerts] == [AlertState.FIRING, AlertState.RESOLVED]
    assert view.negatives_sampled == 6 + 24 + 24  # 09:54-09:59 whole, 24 of each later hour
    assert 0 < len(view.representatives) <= 5
    assert all(inc.onset <= v.created_at <= end for v in view.representatives)
    assert "bag" in view.representatives[0].text
    assert all("pilot" not in v.text for v in view.representatives[:2])
    assert model.incident_for_alert(inc.fingerprint, inc.firing_at) == inc.id
    assert model.incident_for_alert(inc.fingerprint, inc.onset - timedelta(minutes=1)) is None
    assert model.open_alerts("acme") == [earlier]  # its last transition is a firing one
    model.apply(TopicKind.INCIDENTS, inc.id.encode(), None)
    assert model.incident_view(inc.id) is None


def test_samples_of_hours_that_age_out_stay_with_their_incident() -> None:
    model = RoomModel()
    inc = incident(minutes=60)
    model.apply(*s(inc))
    for i in range(40):
        model.apply(
            *s(scored(i, at=inc.onset + timedelta(minutes=i), label=NEG, text=f"awful {i}"))
        )
    before = model.incident_view(inc.id)
    model.apply(*s(scored(999, at=inc.onset + timedelta(days=2))))
    after = model.incident_view(inc.id)
    assert before is not None and after is not None
    assert after.negatives_sampled > 0
    assert {v.id for v in after.representatives} <= {v.id for v in before.representatives} | {
        f"test:acme-{i}" for i in range(40)
    }
    assert model.brand_rows()[0].volume_now == 1


def test_the_customer_queue_orders_by_risk_and_keeps_the_recovered() -> None:
    model = RoomModel()
    feed(
        model,
        [
            s(health("c-watch", CustomerTier.WATCH, 80)),
            s(health("c-risk-low", CustomerTier.AT_RISK, 60)),
            s(
                health(
                    "c-risk-high",
                    CustomerTier.AT_RISK,
                    90,
                    mentions=(("test:acme-1", "cancel it"),),
                )
            ),
            s(health("c-never", CustomerTier.HEALTHY, 5)),
            s(health("c-back", CustomerTier.AT_RISK, 70)),
            s(health("c-back", CustomerTier.HEALTHY, 10, at=T0 + timedelta(hours=20))),
            s(scored(1, text="cancel it")),
        ],
    )
    flagged, recovered = model.customer_queue()
    assert [c.health.customer_id for c in flagged] == ["c-risk-high", "c-risk-low", "c-watch"]
    assert flagged[0].mentions[0] is not None and flagged[0].mentions[0].source == "test"
    assert [c.health.customer_id for c in recovered] == ["c-back"]
    model.apply(TopicKind.CUSTOMERS, b"acme/c-risk-low", None)
    assert [c.health.customer_id for c in model.customer_queue()[0]] == ["c-risk-high", "c-watch"]


def test_an_erasure_removes_the_person_now_and_when_their_records_arrive_later() -> None:
    model = RoomModel()
    mine = scored(1, author="reddit:alice", customer="cust-9", label=NEG, text="I am alice")
    model.apply(*s(mine))
    model.apply(*s(health("cust-9", CustomerTier.AT_RISK, 90)))
    model.apply(*s(alert(alertname="CustomerAtRisk", customer="cust-9")))
    record = {"request_id": "r1", "author": "reddit:alice", "customer_id": "cust-9", "brand": None}
    assert model.apply(TopicKind.ERASURES, b"r1", json.dumps(record).encode()) is Outcome.APPLIED
    assert model.recent_mentions("acme") == []
    assert model.customer_queue() == ([], [])
    assert model.open_alerts() == []
    later = scored(2, author="reddit:alice", text="alice again")
    assert model.apply(*s(later)) is Outcome.ERASED
    assert model.apply(*s(health("cust-9", CustomerTier.WATCH, 50))) is Outcome.ERASED
    assert model.apply(*s(scored(3, author="reddit:bob"))) is Outcome.APPLIED


def test_mention_links_are_only_web_links_and_text_is_redacted_again() -> None:
    model = RoomModel()
    model.apply(*s(scored(1, url="javascript:alert(1)", text="mail me at bob@example.com")))
    model.apply(*s(scored(2, url="https://example.com/p/2")))
    one, two = sorted(model.recent_mentions("acme"), key=lambda v: v.id)
    assert one.url is None and "bob@example.com" not in one.text and "[email]" in one.text
    assert two.url == "https://example.com/p/2"


def view(text: str, n: int) -> MentionView:
    return MentionView(
        id=f"t:{n}",
        brand="acme",
        source="t",
        kind="post",
        url=None,
        text=text,
        label="negative",
        compound=-0.5,
        deficit=(),
        churn=(),
        created_at=T0,
        author="a",
        customer_id=None,
    )


def test_representative_mentions_are_typical_and_not_repeats() -> None:
    samples = [
        view("refund never arrived after the cancelled flight", 0),
        view("refund never arrived after the cancelled flight", 1),
        view("cancelled flight and the refund is still missing", 2),
        view("my refund for the cancelled flight never came", 3),
        view("I like turtles", 4),
    ]
    assert [v.id for v in representative(samples, 2)] == ["t:0", "t:2"]
    # t:1 repeats t:0 and t:3 mostly does; the outlier comes last.
    assert [v.id for v in representative(samples, 5)] == ["t:0", "t:2", "t:4"]
    assert representative([], 3) == []
