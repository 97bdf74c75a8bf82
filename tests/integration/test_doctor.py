"""``listenwell doctor`` against the real broker: all ✓ for a ready installation, ✗ for a missing
topic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from services.kafka_local import free_port, list_topics
from streams import topics
from tests.integration.harness import REPO, Run, wait_for

pytestmark = pytest.mark.integration


def doctor(run: Run, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "doctor", *args],
        env=run.env(
            LISTENWELL_WORKER_METRICS_PORT=str(free_port()),
            LISTENWELL_NOTIFIER_METRICS_PORT=str(free_port()),
            LISTENWELL_CONNECTOR_METRICS_PORT=str(free_port()),
            **env,
        ),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_ready_installation_is_all_ticks(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = Run(kafka_bootstrap, "doctor", tmp_path)
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "route:\n  receiver: slack\n"
        "receivers:\n  slack:\n    type: slack\n    webhook_url: {env: DOCTOR_SLACK_URL}\n"
    )
    connectors = tmp_path / "connectors.yaml"
    connectors.write_text(
        "instances:\n  - name: sim\n    source: simulate\n    brand: northwind-air\n"
        "    settings: {scenario: calm, seed: 1}\n"
    )
    result = doctor(
        run,
        "--routes",
        str(routes),
        LISTENWELL_CONNECTORS_CONFIG=str(connectors),
        DOCTOR_SLACK_URL="https://hooks.example.com/secret-value",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("✗")]
    for spec in topics.REGISTRY:
        name = run.topic(spec)
        count = spec.partition_count(topics.DEFAULT_PARTITIONS)
        assert f"✓ topic {name} ({count} partitions, {spec.cleanup_policy})" in lines
    assert f"✓ Kafka reachable at {kafka_bootstrap}" in lines
    assert "✓ connector sim (simulate) check" in lines
    assert "✓ secret slack.webhook_url present (env DOCTOR_SLACK_URL)" in lines
    assert "secret-value" not in result.stdout
    assert lines[-1] == "all good"


def test_missing_topic_is_a_cross_with_a_hint(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = Run(kafka_bootstrap, "doctor-missing", tmp_path)
    missing = run.topic(topics.ALERTS)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics([missing])
    finally:
        admin.close()
    wait_for(
        lambda: missing not in {t.name for t in list_topics(kafka_bootstrap)},
        what=f"{missing} to be deleted",
        patience_s=60,
    )
    result = doctor(run)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    at = lines.index(f"✗ topic {missing} present")
    assert "listenwell kafka create-topics" in lines[at + 1]


def test_partition_count_other_than_the_setting_is_a_cross_and_the_worker_will_not_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Topics created with the default count (12), processes told 6: doctor and the worker both say
    which topics disagree with LISTENWELL_PARTITIONS; the worker exits 2 before consuming."""
    run = Run(kafka_bootstrap, "doctor-partitions", tmp_path)
    raw = run.topic(topics.MENTIONS_RAW)
    result = doctor(run, LISTENWELL_PARTITIONS="6")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    default = topics.DEFAULT_PARTITIONS
    at = lines.index(f"✗ topic {raw}: {default} partitions, cleanup.policy delete")
    assert "expected 6 partitions (LISTENWELL_PARTITIONS)" in lines[at + 1]
    alerts = run.topic(topics.ALERTS)
    assert f"✓ topic {alerts} (1 partitions, delete)" in lines  # fixed counts stay as declared

    worker = subprocess.run(
        [sys.executable, "-m", "services.cli", "worker"],
        env=run.env(LISTENWELL_PARTITIONS="6", LISTENWELL_WORKER_METRICS_PORT=str(free_port())),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert worker.returncode == 2, worker.stderr
    assert f"topic {raw} has {default} partitions, LISTENWELL_PARTITIONS is 6" in worker.stderr
    assert "set LISTENWELL_PARTITIONS to the topics' count" in worker.stderr
