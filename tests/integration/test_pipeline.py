"""The foundation's promises, end to end against the real broker and real worker processes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.producer import MentionProducer
from connectors.simulate import generate
from streams import topics
from streams.records import Alert, AlertState, Mention, MentionKind
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration

CRISIS_BRAND = "northwind-air"


def produce(run: Run, mentions: list[Mention]) -> None:
    with MentionProducer(run.bootstrap) as producer:
        for mention in mentions:
            producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))


def transitions(alerts: list[Alert]) -> set[tuple[str, str, str]]:
    """Distinct alert transitions (a re-sent alert after a crash is the same transition)."""
    return {(a.fingerprint, a.state.value, a.starts_at.isoformat()) for a in alerts}


def wait_until_scored(run: Run, ids: set[str]) -> None:
    missing: set[str] = set(ids)

    def all_scored() -> bool:
        nonlocal missing
        missing = ids - {s.mention.id for s in run.scored()}
        return not missing

    wait_for(
        all_scored,
        what=lambda: (
            f"{len(ids)} mentions in {run.topic(topics.MENTIONS_SCORED)}; "
            f"{len(missing)} missing, e.g. {sorted(missing)[:5]} (worker logs in {run.workdir})"
        ),
    )


def settled_transitions(run: Run) -> set[tuple[str, str, str]]:
    """The run's alert transitions once two reads a few seconds apart agree."""
    previous: set[tuple[str, str, str]] = set()

    def settled() -> set[tuple[str, str, str]]:
        nonlocal previous
        current = transitions(run.alerts())
        stable, previous = current == previous and bool(current), current
        return current if stable else set()

    result: set[tuple[str, str, str]] = wait_for(settled, what="alerts to settle", every_s=3.0)
    return result


@pytest.fixture(scope="module")
def crisis() -> list[Mention]:
    return generate("crisis", seed=7)


def test_crisis_fires_and_resolves_the_spike_for_the_crisis_brand_only(
    run_factory: Callable[[str], Run], crisis: list[Mention]
) -> None:
    run = run_factory("crisis")
    worker = run.start_worker()
    produce(run, crisis)
    wait_until_scored(run, {m.id for m in crisis})

    def spike_resolved() -> list[Alert]:
        alerts = run.alerts()
        return (
            alerts
            if any(
                a.state == AlertState.RESOLVED and a.alertname == "NegativeSentimentSpike"
                for a in alerts
            )
            else []
        )

    alerts = wait_for(spike_resolved, what="NegativeSentimentSpike to resolve")
    spikes = [a for a in alerts if a.alertname == "NegativeSentimentSpike"]
    assert {a.labels["brand"] for a in spikes} == {CRISIS_BRAND}
    states = [a.state for a in spikes]
    assert states.index(AlertState.FIRING) < states.index(AlertState.RESOLVED)
    firing = next(a for a in spikes if a.state == AlertState.FIRING)
    assert firing.baseline is not None and firing.value > firing.baseline
    assert firing.examples, "a firing alert carries example mentions"
    assert any(a.alertname == "CustomerAtRisk" for a in alerts)
    # Simulated data, months behind the wall clock: its own event time alone closes its minutes.
    assert worker.metric("listenwell_mentions_ingested_total") >= len(crisis)
    assert worker.metric("listenwell_live_partitions") == 0
    assert worker.metric("listenwell_watermark_advances_total") == 0


def test_malformed_records_go_to_the_dead_letter_topic_while_good_ones_flow(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("dlq")
    good = generate("calm", seed=3)[:20]
    bad = {
        b"not json": "invalid_json",
        b'{"id": "x:1"}': "invalid_record",
        b'{"id": "x:2", "source": "x", "kind": "tweet", "brand": "b", "text": "t", "author": "a",'
        b' "created_at": "yesterday", "fetched_at": "2026-01-01T00:00:00Z"}': "invalid_record",
        ("x" * 300_000).encode(): "oversize",
    }
    raw = run.topic(topics.MENTIONS_RAW)
    with MentionProducer(run.bootstrap) as producer:
        for i, mention in enumerate(good):
            producer.send(mention, topic=raw)
            if i < len(bad):
                value = list(bad)[i]
                producer.send_raw(raw, key=mention.brand.encode(), value=value)
    run.start_worker()
    wait_until_scored(run, {m.id for m in good})
    letters = wait_for(
        lambda: len(run.dead_letters()) >= len(bad) and run.dead_letters(), what="dead letters"
    )
    assert {letter.raw_bytes(): letter.reason for letter in letters} == bad
    assert all(letter.detail for letter in letters)


def test_duplicate_mentions_are_scored_once(run_factory: Callable[[str], Run]) -> None:
    run = run_factory("dupes")
    mentions = generate("calm", seed=5)[:30]
    produce(run, mentions + mentions[:10] + mentions[:5])
    marker = Mention(
        id="test:last",
        source="test",
        kind=MentionKind.POST,
        brand=mentions[0].brand,
        text="the last one",
        author="a1",
        created_at=datetime.now(UTC),
        fetched_at=datetime.now(UTC),
    )
    produce(run, [marker])
    worker = run.start_worker()
    wait_until_scored(run, {m.id for m in mentions} | {marker.id})
    ids = [s.mention.id for s in run.scored()]
    assert len(ids) == len(set(ids)) == len(mentions) + 1
    assert wait_for(
        lambda: worker.metric("listenwell_mentions_deduplicated_total") == 15,
        what="15 duplicates counted",
    )


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
def test_kill9_of_the_worker_loses_nothing_and_changes_no_alert(
    run_factory: Callable[[str], Run], crisis: list[Mention], store: str
) -> None:
    """With either table store: the RocksDB one restarts from its own disk, the memory one from
    the changelogs."""
    reference = run_factory("undisturbed")
    produce(reference, crisis)
    reference.start_worker()
    wait_until_scored(reference, {m.id for m in crisis})

    run = run_factory(f"killed-{store}")
    produce(run, crisis)
    worker = run.start_worker(LISTENWELL_TABLE_STORE=store)
    third = len(crisis) // 3
    wait_for(
        lambda: worker.metric("listenwell_mentions_ingested_total") >= third,
        what="a third of the mentions ingested",
    )
    worker.kill9()
    run.start_worker(LISTENWELL_TABLE_STORE=store)
    wait_until_scored(run, {m.id for m in crisis})

    expected = settled_transitions(reference)
    assert expected, "the undisturbed run raised alerts"
    wait_for(lambda: transitions(run.alerts()) >= expected, what="the same alerts after kill -9")
    assert transitions(run.alerts()) == expected
