"""A fresh worker against the real broker: its group's assignment covers every partition of the
table changelogs it has just created (streams/faust_app.py, MissingTopicRefresh)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka.admin import KafkaAdminClient

from connectors.producer import MentionProducer
from streams import topics
from tests import factories
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration

# Faust's consumer metadata max age (its environment setting), far beyond the wait below: the
# periodic refresh that would otherwise repair the assignment 5 minutes later cannot be what
# this test sees.
AN_HOUR_MS = "3600000"


def assigned_partitions(bootstrap: str, group: str) -> dict[str, set[int]]:
    """Topic → partitions assigned to the members of ``group`` now, as the broker tells."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        description = admin.describe_groups([group])[group]
    finally:
        admin.close()
    assigned: dict[str, set[int]] = {}
    for member in description["members"]:
        for part in member["member_assignment"]["assigned_partitions"]:
            assigned.setdefault(part["topic"], set()).update(part["partitions"])
    return assigned


def coordinator_answers(bootstrap: str, group: str) -> bool:
    """The broker names ``group``'s coordinator (it creates its offsets topic on first asking)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.list_group_offsets({group: None})
    except Exception:
        return False
    finally:
        admin.close()
    return True


def test_a_fresh_worker_is_assigned_every_partition_of_the_changelogs_it_created(
    run_factory: Callable[[str], Run],
) -> None:
    """The worker creates its tables' changelog topics at start, just before its consumer asks
    the broker for their metadata, which the broker may not have yet. Without asking again, the
    group's assignment ignored those topics: their partitions were nobody's (no recovery or
    standby copy of those tables) until a metadata refresh minutes later rebalanced the group."""
    run = run_factory("changelogs")
    group = run.env()["LISTENWELL_APP_ID"]
    # As on any broker that has had a consumer group before (and in a full test session): the
    # group's coordinator is ready at once, so the worker joins right after creating its tables.
    wait_for(lambda: coordinator_answers(run.bootstrap, group), what="the group coordinator")
    worker = run.start_worker(CONSUMER_METADATA_MAX_AGE_MS=AN_HOUR_MS)
    mention = factories.mention("fresh-1", brand="fresh-co")
    with MentionProducer(run.bootstrap) as producer:
        producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))
    wait_for(
        lambda: run.scored(),
        what=f"the mention to be scored (worker log {worker.log})",
    )
    prefix = group + "-"
    changelogs = [f"{prefix}{table}-changelog" for table in ("brands", "customers", "parts")]
    every = set(range(topics.DEFAULT_PARTITIONS))

    def covered() -> bool:
        assigned = assigned_partitions(run.bootstrap, group)
        return all(assigned.get(topic) == every for topic in changelogs)

    wait_for(
        covered,
        what=lambda: (
            f"every partition of {changelogs} assigned; the group has "
            f"{ {t: sorted(p) for t, p in assigned_partitions(run.bootstrap, group).items()} } "
            f"(worker log {worker.log})"
        ),
        patience_s=120.0,
    )
