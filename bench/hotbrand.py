"""One hot brand: does a second worker help? Drain throughput with 1 and with 2 workers.

A backlog of ``--mentions`` simulated mentions is drained by 1, then (with a fresh consumer group
and topics) by 2 workers in one consumer group. Measured from the moment the group is complete
(stable, every process of every worker a member, each scoring process assigned raw partitions)
until the group has committed every record of the brand states' input (everything is folded):
throughput = the mentions scored in that span / its length, and each worker's share of them.
What the first worker up scored while the others were still starting is left out (``before
complete``): measured from the first mention scored, as this bench did until 2026-12-07, the
start-up skew and the rebalance it ends in were most of a short drain, and the busiest worker's
share (73-91% in those runs) said more about which process started first than about how the
topology divides the work. Backlogs, in one run:

- every mention of **one brand** (a brand going viral), the **fused** worker (the default:
  ``listenwell worker``, ``mentions.raw`` keyed by brand): one raw partition, so one worker does
  it all however many are started (the baseline);
- the same mentions in the **split** deployment with ``mentions.raw`` keyed by mention id
  (``LISTENWELL_RAW_KEY=id``): a worker is one ``--stage scoring`` and one ``--stage brands``
  process; the brand's mentions spread over every raw partition, so every scoring process scores
  a share, and one brand process folds them all (the brand is one ``mentions.scored``
  partition);
- the same mentions spread over the crisis scenario's brands, fused worker, for reference.

``share of busiest`` is the busiest worker's share of the scoring once the group is complete
(``ingested`` on its own ``/metrics``; a restarted worker's count starts again, so it is
approximate when ``restarts`` is not 0). A worker process that exits (the stall watchdog,
``streams/lag.py``) is started again, as a supervisor would, and counted in ``restarts``. Figures
go to ``bench/results/hotbrand.json``.
On 2 shared cores two workers compete for the same two cores (and the broker), so the figures
can show whether the work is divided, not a doubling.

Usage: ``.venv/bin/python bench/hotbrand.py [--mentions 50000] [--bootstrap HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.producer import MentionProducer  # noqa: E402
from connectors.simulate import generate  # noqa: E402
from services.demo import child, scrape, total, worker_env  # noqa: E402
from services.kafka_local import broker_unless_given, create_topics, free_port  # noqa: E402
from services.process import exit_on_sigterm  # noqa: E402
from streams import topics  # noqa: E402
from streams.records import Mention  # noqa: E402
from streams.topics import RawKey  # noqa: E402

WORKER = [sys.executable, "-m", "services.cli", "worker"]

RESULTS = REPO / "bench" / "results" / "hotbrand.json"
Deployment = Literal["fused", "split"]
BACKLOGS: tuple[tuple[str, bool, Deployment, RawKey], ...] = (
    ("hot", True, "fused", "brand"),
    ("hot_split_by_id", True, "split", "id"),
    ("spread", False, "fused", "brand"),
)
LABELS = {
    "hot": "one hot brand, fused (default)",
    "hot_split_by_id": "one hot brand, split, raw keyed by id",
    "spread": "crisis brands (4), fused",
}
STAGES: dict[Deployment, tuple[str, ...]] = {"fused": ("fused",), "split": ("scoring", "brands")}
"""The processes of one worker, by ``--stage``; the first one scores (counts ``ingested``)."""


def backlog(count: int, *, hot: bool) -> list[Mention]:
    mentions: list[Mention] = []
    scale = 1.0
    while len(mentions) < count:
        mentions = generate("crisis", seed=21, rate_scale=scale)
        scale *= 1.5
    mentions = mentions[:count]
    if hot:
        brand = "northwind-air"
        mentions = [
            m.model_copy(update={"brand": brand, "id": f"hot:{i}"}) for i, m in enumerate(mentions)
        ]
    return mentions


def folded(bootstrap: str, group: str, topic: str, expected: int) -> bool:
    """Whether ``group`` has committed every record of ``topic``, and it holds ``expected``."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    with contextlib.suppress(Exception):
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends = consumer.end_offsets(tps)
            done = admin.list_group_offsets({group: None}).get(group, {})
        finally:
            consumer.close()
            admin.close()
        if sum(ends.values()) < expected:
            return False
        return all((done[tp].offset if tp in done else 0) >= end for tp, end in ends.items())
    return False


def group_complete(
    bootstrap: str, group: str, members: int, topic: str, partitions: int, scorers: int
) -> bool:
    """Whether ``group`` is stable with ``members`` members, ``scorers`` of them holding the
    ``partitions`` partitions of ``topic`` between them (False while the broker is still finding
    the group's coordinator)."""
    from kafka.admin import KafkaAdminClient

    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            described = admin.describe_groups([group])[group]
        finally:
            admin.close()
        held = [
            len(assigned["partitions"])
            for member in described["members"]
            for assigned in member["member_assignment"]["assigned_partitions"]
            if assigned["topic"] == topic and assigned["partitions"]
        ]
        return (
            described["group_state"] == "Stable"
            and len(described["members"]) == members
            and len(held) == scorers
            and sum(held) == partitions
        )
    return False


def drain(
    bootstrap: str,
    mentions: list[Mention],
    workers: int,
    name: str,
    deployment: Deployment,
    key_by: RawKey,
) -> dict[str, float]:
    """Produce ``mentions`` keyed by ``key_by``, start ``workers`` workers of ``deployment`` in
    one group, time the drain until the brand states' input is committed."""
    prefix = f"hot-{name}-{workers}-{int(time.time())}."
    create_topics(bootstrap, prefix, topics.DEFAULT_PARTITIONS)
    partitions = topics.MENTIONS_RAW.partition_count(topics.DEFAULT_PARTITIONS)
    raw = topics.topic_name(topics.MENTIONS_RAW, prefix)
    folded_topic = topics.topic_name(
        topics.MENTIONS_RAW if deployment == "fused" else topics.MENTIONS_SCORED, prefix
    )
    group = f"listenwell-{prefix.rstrip('.')}"
    with MentionProducer(bootstrap, key_by=key_by) as producer:
        for mention in mentions:
            producer.send(mention, topic=raw)
    workdir = REPO / ".listenwell" / "bench" / prefix.rstrip(".")
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(workers)]
    restarts = 0
    with contextlib.ExitStack() as stack:
        running: list[tuple[subprocess.Popen[str], list[str], dict[str, str], str, int]] = []
        for i, port in enumerate(ports):
            for stage in STAGES[deployment]:
                scores = stage == STAGES[deployment][0]
                env = worker_env(
                    bootstrap,
                    prefix,
                    metrics_port=port if scores else free_port(),
                    data_dir=workdir / f"w{i}-{stage}",
                    app_id=group,
                    LISTENWELL_RAW_KEY=key_by,
                )
                cmd = [*WORKER, "--stage", stage]
                log = workdir / f"worker-{i}-{stage}.log"
                process = stack.enter_context(child(cmd, env, log, cwd=REPO))
                running.append((process, cmd, env, f"worker-{i}-{stage}", i if scores else -1))
        complete_at: float | None = None
        before: list[float] = [0.0] * workers  # scored before the group was complete
        next_look = 0.0
        share: list[float] = [0.0] * workers
        carried: list[float] = [0.0] * workers  # counted by a scoring process that exited
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            # A supervisor's job: a worker that exits (the stall watchdog, streams/lag.py) is
            # started again, and counted.
            for n, (process, cmd, env, label, scorer) in enumerate(running):
                if process.poll() is not None:
                    restarts += 1
                    if scorer >= 0:
                        carried[scorer] = share[scorer]
                    log = workdir / f"{label}-restart{restarts}.log"
                    again = stack.enter_context(child(cmd, env, log, cwd=REPO))
                    running[n] = (again, cmd, env, label, scorer)
            for i, port in enumerate(ports):
                with contextlib.suppress(OSError):
                    share[i] = carried[i] + total(
                        scrape(port), "listenwell_mentions_ingested_total"
                    )
            now = time.perf_counter()
            if complete_at is None and now >= next_look:
                next_look = now + 0.5
                if group_complete(bootstrap, group, len(running), raw, partitions, workers):
                    complete_at = time.perf_counter()
                    for i, port in enumerate(ports):
                        with contextlib.suppress(OSError):
                            before[i] = carried[i] + total(
                                scrape(port), "listenwell_mentions_ingested_total"
                            )
            if (
                complete_at is not None
                and (sum(share) >= len(mentions) or restarts)
                and folded(bootstrap, group, folded_topic, len(mentions))
            ):
                now = time.perf_counter()
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"{name}: {sum(share):.0f} of {len(mentions)} ingested in time")
        assert complete_at is not None
        seconds = now - complete_at
        scored = [max(after - early, 0.0) for after, early in zip(share, before, strict=True)]
        if sum(scored) < len(mentions) / 2:
            raise SystemExit(
                f"{name}: {sum(before):.0f} of {len(mentions)} mentions scored before the group "
                "was complete; run with more --mentions"
            )
        return {
            "mentions_per_s": round(sum(scored) / seconds, 1),
            "seconds": round(seconds, 2),
            "share_of_busiest_worker": round(max(scored) / sum(scored), 3),
            "before_complete": round(sum(before)),
            "restarts": restarts,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with broker_unless_given(args.bootstrap) as (bootstrap, _):
        for name, hot, deployment, key_by in BACKLOGS:
            mentions = backlog(args.mentions, hot=hot)
            for workers in (1, 2):
                key = f"{name}_{workers}_workers"
                figures[key] = drain(bootstrap, mentions, workers, name, deployment, key_by)
                print(f"{key}: {figures[key]}", flush=True)
    print()
    print(
        f"{'backlog':40}{'1 worker':>12}{'2 workers':>12}{'busiest of 2':>14}{'restarts':>10}"
        f"{'before complete':>17}"
    )
    for name, label in LABELS.items():
        one, two = figures[f"{name}_1_workers"], figures[f"{name}_2_workers"]
        print(
            f"{label:40}{one['mentions_per_s']:>10,.0f}/s{two['mentions_per_s']:>10,.0f}/s"
            f"{two['share_of_busiest_worker']:>13.0%}"
            f"{one['restarts']:>5.0f} +{two['restarts']:>2.0f}"
            f"{one['before_complete']:>9,.0f} +{two['before_complete']:>6,.0f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"mentions": args.mentions, **figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    exit_on_sigterm()
    sys.exit(main())
