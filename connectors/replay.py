"""Replay mentions from a file: JSONL (one ``Mention`` JSON per line) or CSV.

CSV files have a header row with ``Mention`` field names; the segment labels are the optional
columns ``segment.product``, ``segment.region`` and ``segment.channel``; empty cells mean "not set".
The format is chosen by the file extension (``.csv`` is CSV, anything else JSONL).

Files are expected in event-time order (``write_jsonl`` writes them so). Lines that cannot be turned
into a mention are skipped and reported as ``file:line: reason``; nothing crashes on bad input. A
line whose ``created_at`` is earlier than the one before is still replayed (late events exist) but
noted the same way.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.records import Mention

SEGMENT_COLUMNS: tuple[str, ...] = ("segment.product", "segment.region", "segment.channel")
CSV_COLUMNS: tuple[str, ...] = (
    *(name for name in Mention.model_fields if name != "segment"),
    *SEGMENT_COLUMNS,
)
"""Every column a CSV replay file may have (``id``, ``source``, ``kind``, ... are required)."""


class ReplayError(Exception):
    """The file as a whole cannot be replayed (missing, unreadable, or a wrong CSV header)."""


@dataclass
class ReadResult:
    """Mentions read from a file, with every line that had to be skipped or was out of order."""

    mentions: list[Mention] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    out_of_order: int = 0


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _parse_jsonl_line(line: str) -> Mention:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return Mention.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None


def _parse_csv_row(row: dict[str, Any]) -> Mention:
    if None in row:
        raise ValueError("more cells than header columns")
    data: dict[str, Any] = {}
    segment: dict[str, str] = {}
    for column, cell in row.items():
        if cell is None or cell == "":
            continue
        if column in SEGMENT_COLUMNS:
            segment[column.removeprefix("segment.")] = cell
        elif column == "schema_version" and cell.isdigit():
            # A Literal[1] field does not coerce "1" the way int fields do.
            data[column] = int(cell)
        else:
            data[column] = cell
    if segment:
        data["segment"] = segment
    try:
        return Mention.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def iter_lines(path: Path, after: int = 0) -> Iterator[tuple[int, Mention | str]]:
    """``(line number, mention or reason)`` for every record after line ``after``, in file order.

    Blank JSONL lines are ignored. Raises ``ReplayError`` when the file cannot be read at all.
    """
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot open: {exc.strerror or exc}") from None
    with handle:
        try:
            if _is_csv(path):
                reader = csv.DictReader(handle)
                header = reader.fieldnames or []
                unknown = [c for c in header if c not in CSV_COLUMNS]
                missing = [c for c in ("id", "source", "kind", "brand", "text") if c not in header]
                if unknown or missing:
                    detail = []
                    if unknown:
                        detail.append(f"unknown column(s) {', '.join(unknown)}")
                    if missing:
                        detail.append(f"missing column(s) {', '.join(missing)}")
                    raise ReplayError(f"{path}:1: bad CSV header: {'; '.join(detail)}")
                for row in reader:
                    if reader.line_num <= after:
                        continue
                    # line_num is the physical line the row ended on (quoted cells may span lines).
                    try:
                        yield reader.line_num, _parse_csv_row(row)
                    except ValueError as exc:
                        yield reader.line_num, str(exc)
            else:
                for number, line in enumerate(handle, start=1):
                    if number <= after or not line.strip():
                        continue
                    try:
                        yield number, _parse_jsonl_line(line)
                    except ValueError as exc:
                        yield number, str(exc)
        except UnicodeDecodeError as exc:
            raise ReplayError(f"{path}: not UTF-8 text: {exc.reason}") from None
        except csv.Error as exc:  # e.g. a cell larger than the csv module's field limit
            raise ReplayError(f"{path}:{reader.line_num}: bad CSV: {exc}") from None


def read_mentions(path: str | Path) -> ReadResult:
    """Read a whole replay file: its valid mentions in file order and its problems."""
    source = ReplaySource(path, page_size=1_000_000_000)
    result = ReadResult()
    cursor: str | None = None
    while True:
        page, cursor = source.fetch(cursor)
        result.mentions.extend(page)
        if cursor is None:
            break
    result.problems = source.problems
    result.skipped = source.skipped
    result.out_of_order = source.out_of_order
    return result


class ReplaySettings(BaseModel):
    """Settings of a ``replay`` connector instance (its ``settings:`` block in the YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Field(description="JSONL or CSV file of mentions")
    page_size: int = Field(default=500, ge=1, description="mentions per fetch")


class ReplaySource:
    """A finite ``Source`` over a JSONL or CSV file; the cursor is the last line number consumed.

    Invalid lines are counted in ``skipped`` and explained in ``problems`` (``file:line: reason``).
    ``name`` defaults to ``replay:<file name>``; a connector instance passes its own.
    """

    def __init__(self, path: str | Path, *, page_size: int = 500, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or f"replay:{self.path.name}"
        self.page_size = page_size
        self.skipped = 0
        self.out_of_order = 0
        self.problems: list[str] = []
        self._reported_through = 0
        self._latest: datetime | None = None
        # The open reader and the cursor it resumes from, so sequential pages read the file once.
        self._reader: tuple[int, Iterator[tuple[int, Mention | str]]] | None = None

    @classmethod
    def for_instance(cls, name: str, brand: str, settings: ReplaySettings) -> ReplaySource:
        """The source of a ``replay`` instance (mentions keep the brand written in the file)."""
        return cls(settings.path, page_size=settings.page_size, name=name)

    def check(self) -> list[str]:
        """Problems that stop the replay before it starts: missing file, bad header, page size."""
        problems: list[str] = []
        if self.page_size < 1:
            problems.append(f"page_size must be at least 1, got {self.page_size}")
        if not self.path.is_file():
            problems.append(f"{self.path}: no such file")
            return problems
        try:
            next(iter_lines(self.path), None)
        except ReplayError as exc:
            problems.append(str(exc))
        return problems

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        """Up to ``page_size`` mentions after line ``cursor``; a ``None`` cursor at the end of file.

        Raises ``ReplayError`` when the file cannot be read, ``ValueError`` for a bad cursor.
        """
        try:
            after = 0 if cursor is None else int(cursor)
        except ValueError:
            raise ValueError(f"{self.name}: cursor must be a line number, got {cursor!r}") from None
        if self._reader is not None and self._reader[0] == after:
            lines = self._reader[1]
        else:
            lines = iter_lines(self.path, after)
        self._reader = None
        page: list[Mention] = []
        last = after
        for number, item in lines:
            last = number
            # Problems are collected once, even if a page is fetched again from an older cursor.
            report = number > self._reported_through
            if isinstance(item, str):
                if report:
                    self.skipped += 1
                    self.problems.append(f"{self.path}:{number}: {item}")
            else:
                if report and self._latest is not None and item.created_at < self._latest:
                    self.out_of_order += 1
                    self.problems.append(
                        f"{self.path}:{number}: out of event-time order "
                        f"({item.created_at.isoformat()} is before {self._latest.isoformat()})"
                    )
                if self._latest is None or item.created_at > self._latest:
                    self._latest = item.created_at
                page.append(item)
            self._reported_through = max(self._reported_through, number)
            if len(page) >= self.page_size:
                self._reader = (last, lines)
                return page, str(last)
        return page, None


def write_jsonl(mentions: Iterable[Mention], path: str | Path) -> int:
    """Write mentions as JSONL (one compact JSON object per line); returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for mention in mentions:
            handle.write(mention.model_dump_json())
            handle.write("\n")
            count += 1
    return count


def write_csv(mentions: Iterable[Mention], path: str | Path) -> int:
    """Write mentions as CSV with the ``CSV_COLUMNS`` header; returns how many were written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for mention in mentions:
            data = mention.model_dump(mode="json", exclude={"segment"})
            for column in SEGMENT_COLUMNS:
                data[column] = getattr(mention.segment, column.removeprefix("segment."))
            writer.writerow({k: "" if v is None else v for k, v in data.items()})
            count += 1
    return count
