"""``services.demo.worker_env``: the environment the demo and the benches start a worker with."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.demo import worker_env
from streams.settings import Settings


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in Settings.model_fields if f"LISTENWELL_{k.upper()}" in env]:
        monkeypatch.setenv(f"LISTENWELL_{key.upper()}", env[f"LISTENWELL_{key.upper()}"])
    return Settings()


def test_the_worker_reads_the_run_s_broker_topics_group_port_and_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = worker_env("127.0.0.1:19092", "bench7.", metrics_port=19101, data_dir=tmp_path)
    settings = settings_from(env, monkeypatch)
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.topic_prefix == "bench7."
    assert settings.app_id == "listenwell-bench7", "one consumer group per run, from its prefix"
    assert settings.worker_metrics_port == 19101
    assert settings.data_dir == tmp_path


def test_given_settings_override_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = worker_env(
        "127.0.0.1:19092",
        "bench7.",
        metrics_port=19101,
        data_dir=tmp_path,
        app_id="listenwell-split",
        LISTENWELL_WORKER_METRICS_PORT="19555",
    )
    settings = settings_from(env, monkeypatch)
    assert settings.app_id == "listenwell-split"
    assert settings.worker_metrics_port == 19555
