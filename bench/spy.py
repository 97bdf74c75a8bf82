"""py-spy on a running worker: record its stacks, then say where the time went.

``Recorder(pid, out)`` runs ``py-spy record`` (PyPI package ``py-spy``, a dev dependency) on
the process as a child of its own, in raw "collapsed stack" format with the thread names;
``stop()`` ends it (SIGINT by its pid, so it writes its file). :func:`breakdown` reads that file
and sorts every sample into one part of the worker (the first rule, in :data:`PARTS` order, that
matches a frame of the sample's stack, or its innermost frame for ``leaf:`` rules), so the shares
add up to 100% of the samples py-spy took (threads on a CPU; a thread waiting in ``select`` is
sometimes sampled too).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["PARTS", "Recorder", "breakdown", "breakdown_table"]

# label → substrings of a frame ("function (path:line)"; "a|b": both); the first label with a
# matching frame anywhere in the stack wins.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "/metrics scrapes (the bench's, every 0.1 s)",
        ("process_request_thread (", "prometheus_client/exposition"),
    ),
    ("redact and score (Scorer.score)", ("streams/scoring.py", "streams/pii.py")),
    ("decode and validate raw (Pipeline._parse)", ("_parse (|streams/pipeline.py",)),
    ("windows, rules, customers (Engine)", ("streams/engine.py",)),
    ("dedupe (pipeline, seen ids)", ("_prune_seen (", "streams/dedupe.py", "id_digest (")),
    ("rest of Pipeline.process", ("streams/pipeline.py", "streams/scored_stage.py")),
    (
        "produce: queue a record (the worker's sink to aiokafka's batches)",
        ("streams/producer.py",),
    ),
    (
        "encode state for the changelog",
        ("to_changelog", "streams/tables.py", "streams/state_codec.py"),
    ),
    ("encode published records", ("streams/publish.py",)),
    ("produce: aiokafka's sender (batches, compression, requests)", ("aiokafka/producer",)),
    ("fetch and decode (aiokafka consumer)", ("aiokafka/consumer", "aiokafka/record")),
    (
        "Faust stream, acks and commits",
        ("faust/streams", "faust/transport", "faust/tables", "faust/channels"),
    ),
    ("table store: acknowledged writes (table_store.py)", ("streams/table_store.py",)),
    ("skipped-offset check (offsets.py)", ("streams/offsets.py",)),
    ("lag probe (lag.py, kafka-python)", ("streams/lag.py", "/kafka/consumer", "/kafka/client")),
    ("metrics (prometheus_client)", ("prometheus_client", "streams/metrics.py")),
    (
        "waiting (a thread in select/epoll, sampled idle)",
        ("select (selectors.py", "Condition.wait ("),
    ),
    (
        "event loop in C (uvloop: its own work, or waiting)",
        ("leaf:execute_from_commandline (", "leaf:ServiceThread._start_thread ("),
    ),
    ("asyncio event loop and other", ("",)),
)


class Recorder:
    """``py-spy record`` on ``pid`` into ``out`` until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out = out
        self._process = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Path:
        """Stop recording (SIGINT: py-spy writes its file) and return the file."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self.out


def breakdown(path: Path) -> tuple[dict[str, float], int]:
    """Share of samples per part (see :data:`PARTS`) and the number of samples."""
    counts: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {}, 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        samples = int(n)
        total += samples
        frames = stack.split(";")
        for label, needles in PARTS:
            if any(_matches_stack(frames, needle) for needle in needles):
                counts[label] += samples
                break
    return {label: counts[label] / total if total else 0.0 for label, _ in PARTS}, total


def _matches_stack(frames: list[str], needle: str) -> bool:
    """``needle`` in a frame of the stack; ``leaf:needle``: in its innermost frame only (uvloop
    runs its loop in C, so a sample of the loop's own work or of its waiting ends in the Python
    frame that started the loop)."""
    if needle.startswith("leaf:"):
        return _matches(frames[-1], needle.removeprefix("leaf:"))
    return any(_matches(frame, needle) for frame in frames)


def _matches(frame: str, needle: str) -> bool:
    """``needle`` in ``frame``; ``a|b``: both."""
    return all(part in frame for part in needle.split("|"))


def breakdown_table(columns: dict[str, tuple[dict[str, float], int]]) -> str:
    """Markdown: one row per part, one column per recording (share of its samples)."""
    names = list(columns)
    lines = ["| part of the worker (py-spy samples) | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    for label, _ in PARTS:
        cells = [f"{columns[n][0].get(label, 0.0):.0%}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| samples | " + " | ".join(f"{columns[n][1]:,}" for n in names) + " |")
    return "\n".join(lines)
