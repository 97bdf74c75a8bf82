"""Which worker a process runs, and the settings it refuses at start-up."""

from __future__ import annotations

import pytest

from streams.app import STAGES, StageSettingsError, make_app
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
