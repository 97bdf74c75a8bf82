"""``make chaos`` in small: the same driver (bench/chaos.py) on 3,000 mentions, with the fused
worker, the notifier, the connector runner and the broker killed with SIGKILL mid-run; and the
split deployment with its scoring stage, the notifier, its brand stage and the broker killed.

The driver starts a broker of its own (it restarts it), so this test does not use the session's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.harness import REPO

pytestmark = pytest.mark.integration


def load_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chaos", REPO / "bench" / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_chaos"] = module
    spec.loader.exec_module(module)
    return module


KILLS = {
    "fused": ("worker", "notifier", "runner", "broker"),
    "split": ("scoring", "notifier", "brands", "broker"),
}


@pytest.mark.parametrize("deployment", ["fused", "split"])
def test_kill_9_of_every_part_loses_nothing_and_changes_no_alert(
    tmp_path: Path, deployment: str
) -> None:
    chaos = load_driver()
    report = chaos.run(
        chaos.ChaosConfig(
            mentions=3000,
            seed=7,
            duration_s=60.0 if deployment == "fused" else 90.0,
            kills=KILLS[deployment],
            deployment=deployment,
            workdir=tmp_path,
            results=None,
        )
    )
    print(chaos.summary(report))
    f = report.figures
    assert f.raw_distinct == 3000
    assert f.lost == 0, f"lost {f.lost}: {f.lost_examples} (logs in {tmp_path})"
    assert f.unexpected == 0
    assert f.scored_distinct == 3000
    assert f.conflicting_duplicates == 0
    assert f.rescored_differently == f.two_records_scored == 0, f.rescored_fields
    assert f.unexplained_redeliveries == 0, f.unexplained_examples
    assert f.baseline_transitions > 0
    assert f.alerts_missing == [] and f.alerts_extra == []
    assert f.duplicated == f.duplicated_in_kill_window
    assert f.without_message == f.collapsed
    assert f.exactly_once + f.duplicated + f.without_message == f.notified_transitions > 0
    assert f.unmatched_messages == 0
    assert tuple(k.kind for k in report.kills) == KILLS[deployment]
    for kill in report.kills:
        assert kill.pid is not None or kill.note, kill
        assert kill.resumed_s is not None or kill.note, f"{kill.target} never made progress again"
    assert report.ok, f.failures
