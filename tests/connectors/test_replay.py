"""File replay: JSONL and CSV round trips, paging by line number, and bad lines reported by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import ReportsSkipped, Source
from connectors.replay import (
    ReplayError,
    ReplaySource,
    read_mentions,
    write_csv,
    write_jsonl,
)
from connectors.simulate import generate
from streams.records import Mention


@pytest.fixture(scope="module")
def mentions() -> list[Mention]:
    return generate("crisis", seed=11, hours=1.0)


def _drain(source: ReplaySource) -> tuple[list[list[Mention]], list[str | None]]:
    pages: list[list[Mention]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        page, cursor = source.fetch(cursor)
        pages.append(page)
        cursors.append(cursor)
        if cursor is None:
            return pages, cursors


def test_jsonl_round_trip_in_pages(tmp_path: Path, mentions: list[Mention]) -> None:
    path = tmp_path / "day.jsonl"
    assert write_jsonl(mentions, path) == len(mentions)
    source = ReplaySource(path, page_size=40)
    assert isinstance(source, Source)
    assert source.check() == []
    pages, cursors = _drain(source)
    assert [m for p in pages for m in p] == mentions
    assert all(len(p) <= 40 for p in pages)
    # The cursor is the line number of the last mention of the page.
    assert cursors[0] == "40"
    assert source.skipped == 0
    assert source.problems == []


def test_csv_round_trip_keeps_every_field(tmp_path: Path, mentions: list[Mention]) -> None:
    path = tmp_path / "day.csv"
    assert write_csv(mentions, path) == len(mentions)
    result = read_mentions(path)
    assert result.mentions == mentions
    assert result.problems == []


def test_hand_written_csv_with_optional_columns_left_out(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        "id,source,kind,brand,text,author,created_at,fetched_at,rating,segment.product\n"
        'appstore:1,appstore,review,globex-bank,"Great app, fast",u1,'
        "2026-01-05T10:00:00Z,2026-01-05T10:01:00Z,5,cards\n"
        "appstore:2,appstore,review,globex-bank,Slow,u2,2026-01-05T10:05:00Z,"
        "2026-01-05T10:06:00Z,,\n",
        encoding="utf-8",
    )
    result = read_mentions(path)
    assert result.problems == []
    first, second = result.mentions
    assert first.text == "Great app, fast"
    assert first.rating == 5
    assert first.segment.product == "cards"
    assert second.rating is None
    assert second.segment.product is None


def test_bad_lines_are_reported_with_file_and_line_and_good_ones_flow(
    tmp_path: Path, mentions: list[Mention]
) -> None:
    good = [m.model_dump_json() for m in mentions[:4]]
    missing_text = json.loads(good[1])
    del missing_text["text"]
    bad_rating = json.loads(good[2])
    bad_rating["rating"] = 9
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                good[0],
                "{not json",
                json.dumps(missing_text),
                "",
                json.dumps(bad_rating),
                "[1, 2]",
                good[3],
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    source = ReplaySource(path, page_size=1)
    pages, _ = _drain(source)
    assert [m.id for p in pages for m in p] == [mentions[0].id, mentions[3].id]
    assert isinstance(source, ReportsSkipped)
    assert source.skipped == 4
    assert len(source.problems) == 4
    by_line = {int(p.split(":")[1]): p for p in source.problems}
    assert set(by_line) == {2, 3, 5, 6}
    assert all(p.startswith(f"{path}:") for p in source.problems)
    assert "invalid JSON" in by_line[2]
    assert "text" in by_line[3] and "required" in by_line[3].lower()
    assert "rating" in by_line[5]
    assert "JSON object" in by_line[6]


def test_problems_are_counted_once_when_a_page_is_fetched_again(
    tmp_path: Path, mentions: list[Mention]
) -> None:
    path = tmp_path / "again.jsonl"
    path.write_text(f"oops\n{mentions[0].model_dump_json()}\n", encoding="utf-8")
    source = ReplaySource(path)
    assert source.fetch(None) == ([mentions[0]], None)
    assert source.fetch(None) == ([mentions[0]], None)
    assert source.skipped == 1


def test_resume_from_a_cursor(tmp_path: Path, mentions: list[Mention]) -> None:
    path = tmp_path / "resume.jsonl"
    write_jsonl(mentions, path)
    page, cursor = ReplaySource(path, page_size=10).fetch(None)
    assert page == mentions[:10]
    assert cursor == "10"
    fresh = ReplaySource(path, page_size=10)
    rest, _ = fresh.fetch(cursor)
    assert rest == mentions[10:20]


def test_out_of_order_lines_are_replayed_but_noted(tmp_path: Path, mentions: list[Mention]) -> None:
    path = tmp_path / "unsorted.jsonl"
    write_jsonl([mentions[5], mentions[1], mentions[6]], path)
    result = read_mentions(path)
    assert result.mentions == [mentions[5], mentions[1], mentions[6]]
    assert result.skipped == 0
    assert result.out_of_order == 1
    assert result.problems[0].startswith(f"{path}:2: out of event-time order")


def test_missing_file_and_bad_header_are_problems_not_crashes(tmp_path: Path) -> None:
    missing = ReplaySource(tmp_path / "nope.jsonl")
    assert missing.check() == [f"{tmp_path / 'nope.jsonl'}: no such file"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,source,kind,brand,text,colour\n", encoding="utf-8")
    source = ReplaySource(bad)
    (problem,) = source.check()
    assert problem.startswith(f"{bad}:1: bad CSV header")
    assert "colour" in problem
    with pytest.raises(ReplayError, match="colour"):
        source.fetch(None)


def test_bad_cursor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="line number"):
        ReplaySource(path).fetch("ten")
    assert ReplaySource(path).fetch(None) == ([], None)
