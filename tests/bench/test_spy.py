"""bench/spy.py sorts py-spy's samples into the parts of the worker the profile tables show."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.spy import breakdown

LOOP = "BaseEventLoop.run_forever (asyncio/base_events.py:607)"
UVLOOP_STARTED = "Worker.execute_from_commandline (mode/worker.py:264)"
STEP = "BatchStep.__call__ (streams/agents.py:154)"
SCORE = "Scorer.score (streams/scoring.py:347)"


def test_each_sample_goes_to_the_first_part_that_matches(tmp_path: Path) -> None:
    samples = tmp_path / "drain.txt"
    samples.write_text(
        "\n".join(
            [
                # scoring inside the agent's step: the core, not the step
                f"thread (1): MainThread;{UVLOOP_STARTED};{STEP};{SCORE} 6",
                # the uvloop loop itself (its work in C, or waiting): ends in the frame that
                # started it
                f"thread (1): MainThread;main (services/cli.py:158);{UVLOOP_STARTED} 3",
                # the asyncio loop waiting in select
                f"thread (2): Thread-2;{LOOP};EpollSelector.select (selectors.py:468) 1",
            ]
        )
        + "\n"
    )
    shares, total = breakdown(samples)
    assert total == 10
    assert shares["redact and score (Scorer.score)"] == pytest.approx(0.6)
    assert shares["event loop in C (uvloop: its own work, or waiting)"] == pytest.approx(0.3)
    assert shares["waiting (a thread in select/epoll, sampled idle)"] == pytest.approx(0.1)
    assert shares["asyncio event loop and other"] == 0
