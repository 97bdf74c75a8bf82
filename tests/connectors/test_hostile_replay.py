"""Hostile replay files: bad lines become problems with their line number, never exceptions other
than ``ReplayError`` (for the file as a whole); good lines around them are replayed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.replay import ReplayError, read_mentions
from streams.records import Mention, MentionKind

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def good(n: int) -> str:
    return Mention(
        id=f"t:{n}",
        source="t",
        kind=MentionKind.POST,
        brand="acme",
        text="late again",
        author="a",
        created_at=AT,
        fetched_at=AT,
    ).model_dump_json()


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    st.lists(st.binary(max_size=80).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=8)
)
def test_generated_jsonl_lines(tmp_path_factory: pytest.TempPathFactory, bad: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("replay") / "x.jsonl"
    lines = [good(0).encode(), *[b + b"}" for b in bad], good(1).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        result = read_mentions(path)
    except ReplayError as exc:
        assert "not UTF-8" in str(exc)
        return
    assert [m.id for m in result.mentions] == ["t:0", "t:1"]
    assert result.skipped == sum(1 for b in bad if (b + b"}").strip())


def test_deep_jsonl_line_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join([good(0), "[" * 100_000, good(1)]) + "\n", encoding="utf-8")
    result = read_mentions(path)
    assert [m.id for m in result.mentions] == ["t:0", "t:1"]
    assert result.skipped == 1 and ":2:" in result.problems[0]


def test_csv_with_a_giant_cell_is_a_replay_error(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("id,source,kind,brand,text\n" + 't:1,t,post,acme,"' + "x" * 1_000_000 + '"\n')
    with pytest.raises(ReplayError, match=r"big\.csv:\d+: "):
        read_mentions(path)


def test_one_megabyte_jsonl_text_is_a_problem(tmp_path: Path) -> None:
    doc = json.loads(good(2))
    doc["text"] = "x" * 1_000_000
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(doc) + "\n" + good(3) + "\n", encoding="utf-8")
    result = read_mentions(path)
    assert [m.id for m in result.mentions] == ["t:3"] and result.skipped == 1
