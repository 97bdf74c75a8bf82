"""Integration fixtures: one real Apache Kafka broker per test session, on a free port."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.kafka_local import LocalKafka, free_port
from tests.integration.harness import Run


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running broker: ``LISTENWELL_TEST_BOOTSTRAP`` if set, else one started (and stopped)
    here."""
    existing = os.environ.get("LISTENWELL_TEST_BOOTSTRAP")
    if existing:
        yield existing
        return
    broker = LocalKafka(free_port(), home=tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop(wipe=True)


@pytest.fixture
def run_factory(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[[str], Run]]:
    runs: list[Run] = []

    def make(name: str) -> Run:
        workdir = tmp_path / name
        workdir.mkdir()
        run = Run(kafka_bootstrap, name, workdir)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop_all()
