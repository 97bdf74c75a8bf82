"""Which worker a process runs, and the settings it refuses at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import STAGES, Stage, StageSettingsError, make_app
from streams.settings import Settings


def test_the_fused_worker_refuses_raw_keyed_by_id_at_start() -> None:
    settings = Settings(raw_key="id")
    with pytest.raises(StageSettingsError, match="LISTENWELL_RAW_KEY=id") as refused:
        make_app(settings, stage="fused")
    assert "--stage scoring" in str(refused.value)


def test_the_fused_worker_is_the_default_and_both_is_gone() -> None:
    from services.cli import build_parser

    assert STAGES == ("fused", "scoring", "brands")
    assert build_parser().parse_args(["worker"]).stage == "fused"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["worker", "--stage", "both"])


@pytest.mark.parametrize(("stage", "standbys"), [("fused", 1), ("scoring", 0), ("brands", 0)])
def test_the_split_deployment_keeps_no_standby_tables(
    stage: Stage, standbys: int, tmp_path: Path
) -> None:
    """With standbys, two brand processes in a group led by a scoring process fail faust's
    assignment check (hot-brand bench, 2 workers); the fused worker keeps Faust's default."""
    worker = make_app(Settings(data_dir=tmp_path), stage=stage)
    assert worker.app.assignor.replicas == standbys
    assert worker.app.assignor.name == "faust", "every kind of process speaks one protocol"
    assert worker.app.conf.table_standby_replicas > 0, "or a scoring process joins round-robin"
