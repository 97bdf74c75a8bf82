"""``listenwell score``: JSON Lines in, scores out in the same order, as the worker scores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli import main
from streams.cs_sentiment import CsSentiment
from streams.records import Mention, MentionKind
from streams.scoring import Scorer


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_scores_in_input_order_with_ids_and_matches(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(
        source,
        [
            {"id": "a", "text": "I love this airline, great crew!"},
            {"text": "Worst service ever, still waiting. I'm closing my account."},
            {"id": 7, "text": "Call me at +1 415 555 0100 about the refund"},
        ],
    )
    assert main(["score", "--input", str(source), "--output", str(target)]) == 0
    out = read_jsonl(target)
    assert [r["id"] for r in out] == ["a", 2, 7]
    assert out[0]["label"] == "positive" and out[1]["label"] == "negative"
    assert out[1]["churn"] and out[1]["empathy"]["deficit"]  # type: ignore[index]
    assert out[2]["pii_redacted"] == 1
    assert set(out[0]) >= {"vader_compound", "compound", "empathy", "churn"}


def test_same_scores_as_the_worker(tmp_path: Path) -> None:
    texts = ["So disappointed, my bag is lost again :(", "thanks!!! best support team", "meh"]
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"text": t} for t in texts])
    assert main(["score", "--input", str(source), "--output", str(target)]) == 0
    at = datetime(2026, 1, 5, tzinfo=UTC)
    for text, got in zip(texts, read_jsonl(target), strict=True):
        mention = Mention(
            id="test:1",
            source="test",
            author="someone",
            brand="b",
            kind=MentionKind.POST,
            text=text,
            created_at=at,
            fetched_at=at,
        )
        scored = Scorer(sentiment_layer=CsSentiment.load()).score(mention, scored_at=at)
        assert got["compound"] == scored.sentiment.compound
        assert got["label"] == scored.sentiment.label.value


def test_progress_bar_and_bad_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, [{"text": f"text number {i}"} for i in range(50)])
    assert main(["score", "--input", str(source), "--output", str(target), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "50 texts" in err
    source.write_text('{"text": "fine"}\n{"id": 2}\n', encoding="utf-8")
    assert main(["score", "--input", str(source), "--output", str(target)]) == 2
    assert "in.jsonl:2: missing or non-string 'text'" in capsys.readouterr().err


def test_complaints_vader_misreads_come_out_negative(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    texts = ["thanks for losing my bag", "on hold for two hours", "flight delayed again"]
    write_jsonl(source, [{"text": t} for t in texts])
    assert main(["score", "--input", str(source), "--output", str(target)]) == 0
    out = read_jsonl(target)
    assert [r["label"] for r in out] == ["negative"] * 3
    assert all(r["compound"] < r["vader_compound"] for r in out)  # type: ignore[operator]
    assert main(["score", "--input", str(source), "--output", str(target), "--plain"]) == 0
    assert all(r["compound"] == r["vader_compound"] for r in read_jsonl(target))
