"""The opt-in split deployment against the real broker: scoring and brand processes in one
consumer group, ``mentions.raw`` keyed by mention id (docs/topology.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.producer import MentionProducer
from connectors.simulate import generate
from streams import topics
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration


def group_state(run: Run) -> tuple[str, int]:
    """The worker group's state and number of members."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=run.bootstrap)
    try:
        group_id = run.env()["LISTENWELL_APP_ID"]
        group = admin.describe_groups([group_id])[group_id]
    except KafkaError as exc:  # no coordinator yet, while the group forms
        return type(exc).__name__, 0
    finally:
        admin.close()
    return str(group.get("group_state")), len(group.get("members") or [])


def test_two_scoring_and_two_brand_processes_share_a_hot_brand_keyed_by_id(
    run_factory: Callable[[str], Run],
) -> None:
    """A hot brand's mentions keyed by id are scored by both scoring processes; the brand stage
    (two processes, one of them folding the brand's partition) drops each re-sent copy, and no
    process dies on the group's assignment."""
    run = run_factory("split")
    settings = {"LISTENWELL_RAW_KEY": "id"}
    scoring = [run.start_worker("scoring", **settings) for _ in range(2)]
    brands = [run.start_worker("brands", **settings) for _ in range(2)]
    # Produced once the group is stable: a rebalance after records arrive replays what was not
    # committed yet, which would add copies (dropped as duplicates too) to the count below.
    wait_for(
        lambda: group_state(run) == ("Stable", 4),
        what=lambda: f"a stable group of 4, not {group_state(run)} (logs in {run.workdir})",
    )
    mentions = [m.model_copy(update={"brand": "acme"}) for m in generate("calm", seed=5)[:400]]
    resent = mentions[:25]
    with MentionProducer(run.bootstrap, key_by="id") as producer:
        for mention in mentions + resent:
            producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))

    def ingested() -> list[float]:
        return [w.metric("listenwell_mentions_ingested_total") for w in scoring]

    def duplicates() -> float:
        return sum(w.metric("listenwell_mentions_deduplicated_total") for w in brands)

    wait_for(
        lambda: sum(ingested()) >= len(mentions) + len(resent) and duplicates() >= len(resent),
        what=lambda: (
            f"scored {ingested()}, duplicates {duplicates()} of {len(resent)} "
            f"(logs in {run.workdir})"
        ),
        patience_s=300,
    )
    assert sum(ingested()) == len(mentions) + len(resent), "no replay in a stable group"
    assert duplicates() == len(resent)
    assert all(share > 0 for share in ingested()), f"one scoring process idle: {ingested()}"
    assert {s.mention.id for s in run.scored()} == {m.id for m in mentions}
    assert all(w.process.poll() is None for w in scoring + brands), "a stage process exited"
