"""``listenwell score``: score a JSON Lines file of texts with the worker's scorer.

Input: one JSON object per line with ``text`` and an optional ``id`` (blank lines are skipped).
Output, in the same order, one object per text::

    {"id": ..., "vader_compound": -0.4767, "compound": -0.4767, "label": "negative",
     "pos": 0.0, "neu": 0.5, "neg": 0.5, "empathy": {"positive": [], "deficit": [], "score": 0.0},
     "churn": [], "pii_redacted": 0}

``id`` is the input's ``id`` or, if it has none, the 1-based line number. Texts go through the same
steps as in the worker: PII redaction, then :class:`streams.scoring.Scorer`, here with the
customer-service layer (:class:`streams.cs_sentiment.CsSentiment`) computing ``compound`` beside
VADER's own ``vader_compound`` (``--plain`` scores with VADER alone). On files of 1 MB or more (or
with ``--progress``) a progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from streams.settings import Settings

if TYPE_CHECKING:
    from streams.scoring import Scorer

PROGRESS_MIN_BYTES = 1_000_000
BAR_WIDTH = 30


class ScoreInputError(ValueError):
    """An input line that cannot be scored; the message is ``file:line: reason``."""


def read_texts(stream: IO[str], name: str) -> Iterator[tuple[Any, str, int]]:
    """``(id, text, characters read so far)`` per non-blank line.

    Raises :class:`ScoreInputError` on a bad line.
    """
    consumed = 0
    for number, line in enumerate(stream, start=1):
        consumed += len(line)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScoreInputError(f"{name}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ScoreInputError(f"{name}:{number}: expected a JSON object with a text field")
        text = record.get("text")
        if not isinstance(text, str):
            raise ScoreInputError(f"{name}:{number}: missing or non-string 'text'")
        yield record.get("id", number), text, consumed


def score_record(scorer: Scorer, record_id: Any, text: str) -> dict[str, Any]:
    """The output object of one text (PII redacted first, as the worker does)."""
    from streams import pii

    redacted, redactions = pii.redact(text)
    result = scorer.score_text(redacted)
    return {
        "id": record_id,
        "vader_compound": result.vader_compound,
        "compound": result.compound,
        "label": result.label.value,
        "pos": result.pos,
        "neu": result.neu,
        "neg": result.neg,
        "empathy": {
            "positive": list(result.empathy.positive),
            "deficit": list(result.empathy.deficit),
            "score": result.empathy.score,
        },
        "churn": list(result.churn.phrases),
        "pii_redacted": redactions,
    }


class Progress:
    """A one-line progress bar on stderr, redrawn at most every ``interval`` seconds."""

    def __init__(self, total_bytes: int, out: IO[str], interval: float = 0.2) -> None:
        self.total = max(total_bytes, 1)
        self.out = out
        self.interval = interval
        self.started = self.last = time.monotonic()

    def update(self, done_bytes: int, texts: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        share = min(1.0, done_bytes / self.total)
        filled = int(share * BAR_WIDTH)
        rate = texts / max(now - self.started, 1e-9)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.out.write(f"\r[{bar}] {share:4.0%} {texts:,} texts {rate:,.0f}/s")
        if final:
            self.out.write("\n")
        self.out.flush()


def score_file(source: Path, target: Path, scorer: Scorer, *, progress: bool | None = None) -> int:
    """Score every text of ``source`` into ``target``; returns the number of texts."""
    size = source.stat().st_size
    show = size >= PROGRESS_MIN_BYTES if progress is None else progress
    bar = Progress(size, sys.stderr) if show else None
    count = 0
    with (
        source.open(encoding="utf-8") as stream,
        target.open("w", encoding="utf-8") as out,
    ):
        for record_id, text, consumed in read_texts(stream, str(source)):
            out.write(json.dumps(score_record(scorer, record_id, text), ensure_ascii=False) + "\n")
            count += 1
            if bar is not None:
                bar.update(consumed, count)  # characters against bytes: close enough for a bar
    if bar is not None:
        bar.update(size, count, final=True)
    return count


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    """Score ``--input`` into ``--output``."""
    from streams.brand_scoring import scorer_for
    from streams.cs_sentiment import CsSentiment

    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        print(f"listenwell score: {source}: no such file", file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        layer = None if args.plain else CsSentiment.load()
        scorer = scorer_for(settings.rules_path, sentiment_layer=layer)
        count = score_file(source, target, scorer, progress=args.progress)
    except ScoreInputError as exc:
        print(f"listenwell score: {exc}", file=sys.stderr)
        return 2
    print(f"{count} texts scored -> {target}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listenwell score``."""
    p = sub.add_parser("score", help="score a JSON Lines file of texts (text, optional id)")
    p.add_argument("--input", required=True, help="JSON Lines: {'text': ..., 'id': ...} per line")
    p.add_argument("--output", required=True, help="JSON Lines to write, same order")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for inputs of 1 MB or more)",
    )
    p.add_argument(
        "--plain", action="store_true", help="VADER alone, without the customer-service layer"
    )
    p.set_defaults(func=cmd_score)
