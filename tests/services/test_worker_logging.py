"""The worker process keeps the log level it is given: debug records of its Kafka clients are
not even built (Faust's terminal spinner would set the root logger to DEBUG)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli import quiet_faust_worker
from streams.app import faust_app
from streams.settings import Settings


@pytest.fixture
def root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


@pytest.mark.usefixtures("root_logger_restored")
@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_the_worker_builds_no_debug_records(tmp_path: Path, level: str) -> None:
    app = faust_app(Settings(app_id="logging", data_dir=tmp_path))
    worker = quiet_faust_worker(app, level)
    worker._setup_logging()  # what the worker does first when it runs
    assert logging.getLogger().getEffectiveLevel() == logging.getLevelName(level)
    for name in ("aiokafka.producer.producer", "aiokafka.consumer.fetcher", "faust.transport"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    assert logging.getLogger("listenwell").isEnabledFor(logging.getLevelName(level))
