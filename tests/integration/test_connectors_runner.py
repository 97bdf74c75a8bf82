"""``listenwell connect`` on the real broker: kill -9 mid-run, restart, every item scored once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.checkpoints import Checkpoint, KafkaStateStore
from connectors.replay import write_jsonl
from connectors.simulate import generate
from services.demo import scrape, total
from services.kafka_local import free_port
from streams import topics
from streams.records import Mention
from tests.integration.harness import REPO, Run, wait_for

pytestmark = pytest.mark.integration

ITEMS = 400
RUN_SECONDS = 8.0
"""How long a full paced run would take: long enough to kill it in the middle."""


def start_connect(
    run: Run, config: Path, log: Path, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "services.cli", "connect", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--progress-interval", "0.5"],
        env=run.env(LISTENWELL_CONNECTOR_METRICS_PORT=str(metrics_port)),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def test_kill_9_mid_run_and_restart_scores_every_item_exactly_once(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("connect-kill")
    mentions: list[Mention] = generate("crisis", seed=11)[:ITEMS]
    data = run.workdir / "mentions.jsonl"
    write_jsonl(mentions, data)
    span = (mentions[-1].created_at - mentions[0].created_at).total_seconds()
    config = run.workdir / "connectors.yaml"
    config.write_text(
        "instances:\n"
        "  - name: replay-crisis\n"
        "    source: replay\n"
        "    brand: northwind-air\n"
        f"    speedup: {span / RUN_SECONDS:.3f}\n"
        f"    settings: {{path: {json.dumps(str(data))}, page_size: 25}}\n"
    )
    log = run.workdir / "connect.log"
    worker = run.start_worker()
    state = KafkaStateStore(run.bootstrap, run.topic(topics.CONNECTORS_STATE))

    first = start_connect(run, config, log)
    run.processes.append(first)

    def mid_page() -> Checkpoint | None:
        """A checkpoint past line 100 while the next page is partly produced (not yet saved)."""
        checkpoint = state.load().get("replay-crisis")
        if checkpoint is None or int(checkpoint.cursor or 0) < 100:
            return None
        produced = len(run.read(topics.MENTIONS_RAW))
        return checkpoint if produced > int(checkpoint.cursor or 0) else None

    checkpoint = wait_for(mid_page, what="a run in the middle of a page", every_s=0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not checkpoint.exhausted and int(checkpoint.cursor) < ITEMS, log.read_text()

    second = start_connect(run, config, log)
    run.processes.append(second)
    assert second.wait(timeout=120) == 0, log.read_text()
    final = state.load()["replay-crisis"]
    assert final.exhausted

    raw_ids = Counter(Mention.from_json(v).id for v in run.read(topics.MENTIONS_RAW))
    expected = {m.id for m in mentions}
    assert set(raw_ids) == expected  # nothing lost by the crash
    wait_for(
        lambda: expected <= {s.mention.id for s in run.scored()},
        what=f"{ITEMS} scored mentions",
    )
    scored_ids = Counter(s.mention.id for s in run.scored())
    assert set(scored_ids) == expected
    assert max(scored_ids.values()) == 1, "a mention was scored twice"
    # The restart resumed from its checkpoint (past line 100): at most the one unacknowledged
    # page of 25 was sent again, not everything before the checkpoint.
    resent = sum(raw_ids.values()) - ITEMS
    print(f"checkpoint at kill >= {checkpoint.cursor}, re-sent after restart: {resent}")
    assert resent <= 25
    assert worker.process.poll() is None
    progress = log.read_text()
    assert "replay-crisis [replay] done: " in progress


def test_sigterm_stops_cleanly_with_metrics_per_instance_until_then(
    run_factory: Callable[[str], Run],
) -> None:
    run = run_factory("connect-term")
    config = run.workdir / "connectors.yaml"
    config.write_text(
        "instances:\n"
        "  - {name: sim-slow, source: simulate, brand: northwind-air, speedup: 60,\n"
        "     settings: {hours: 2, page_size: 5}}\n"
        "  - name: replay-missing\n"
        "    source: replay\n"
        "    brand: northwind-air\n"
        f"    settings: {{path: {json.dumps(str(run.workdir / 'absent.jsonl'))}}}\n"
    )
    log = run.workdir / "connect.log"
    port = free_port()
    process = start_connect(run, config, log, metrics_port=port)
    run.processes.append(process)

    def metric(name: str, **labels: str) -> float:
        try:
            return total(scrape(port), name, **labels)
        except OSError:
            return 0.0

    wait_for(
        lambda: (
            metric("listenwell_connector_mentions_produced_total", instance="sim-slow") >= 10
            and metric("listenwell_connector_fetches_total", instance="replay-missing") >= 1
        ),
        what="both instances to report",
    )
    assert metric("listenwell_connector_fetches_total", instance="replay-missing", outcome="error")
    assert metric("listenwell_connector_backoff_seconds", instance="replay-missing") > 0
    assert metric("listenwell_connector_last_success_timestamp_seconds", instance="sim-slow") > 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    progress = log.read_text()
    assert "sim-slow [simulate] stopped: " in progress
    assert "replay-missing [replay] stopped: " in progress and "absent.jsonl" in progress
    checkpoint = KafkaStateStore(run.bootstrap, run.topic(topics.CONNECTORS_STATE)).load()
    assert not checkpoint["sim-slow"].exhausted
    assert "replay-missing" not in checkpoint
