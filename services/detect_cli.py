"""``listenwell detect``: run a volume rule over a ``timestamp,value`` series, causally.

Each row is one closed bucket's mention count. The rule (``MentionVolumeSurge`` of the shipped rules
by default) runs through :func:`run_volume_rule`: the same detector
(:meth:`streams.rule_kinds.VolumeSurgeRule.detect`) and the same state machine
(:func:`streams.alert_lifecycle.run`: ``for``, ``keep_firing_for``, ``cooldown``) that raise
``MentionVolumeSurge`` alerts in the worker. Every row is judged from the rows before it only, so
the output for a prefix of a series is the prefix of the output for the whole series. The detector's
parameters are durations, so it judges a series of 5-minute rows as the worker judges per-minute
sums of the last 5 minutes.

Output CSV: ``timestamp,value,anomaly_score,alert`` (``alert`` is 1 on the row where an alert starts
firing). ``--explain`` adds the evidence of each verdict: ``expected`` (count expected for the row),
``sustained`` (the count judged: the median over the rule's ``sustain``), ``ratio``, ``z`` (robust
z-score), ``needed`` (the z-score a surge needed: the threshold or the brand's usual peak),
``usual_peak`` (the brand's usual peak z-score, empty while unknown), ``same_hour_last_7_days``
(mean count at that hour on each of the last 7 days, yesterday first, ``;``-separated, ``-`` when
unknown), ``level_24h``, ``surge`` (1 while a surge is in progress) and ``reason`` (a sentence).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from streams.settings import Settings

if TYPE_CHECKING:
    from streams.detectors import Detection
    from streams.rule_kinds import Verdict, VolumeSurgeRule

DEFAULT_RULE = "MentionVolumeSurge"
SHIPPED_RULES = Path(__file__).resolve().parent.parent / "alert_rules"


class DetectError(ValueError):
    """A series or rule that cannot be used; the message says which and why."""


EXPLAIN_COLUMNS = (
    "expected",
    "sustained",
    "ratio",
    "z",
    "needed",
    "usual_peak",
    "same_hour_last_7_days",
    "level_24h",
    "surge",
    "reason",
)


@dataclass(frozen=True)
class DetectRow:
    """The verdict on one row of a series."""

    timestamp: str
    value: float
    anomaly_score: float
    alert: bool
    detection: Detection
    """The detector's verdict with its evidence."""

    @property
    def baseline(self) -> float:
        """Count expected for this row."""
        return self.detection.baseline

    @property
    def reason(self) -> str:
        """Why, in one sentence."""
        return self.detection.reason

    def evidence(self) -> list[str]:
        """The ``--explain`` columns of this row."""
        d = self.detection
        ratio = f"{d.ratio:.2f}" if math.isfinite(d.ratio) else "inf"
        same_hour = ";".join("-" if c is None else f"{c:.1f}" for c in d.same_hour)
        level = "" if d.level_24h is None else f"{d.level_24h:.1f}"
        usual = "" if d.usual_peak is None else f"{d.usual_peak:.2f}"
        return [
            f"{d.baseline:.2f}",
            f"{d.sustained:g}",
            ratio,
            f"{d.z:.2f}",
            f"{d.needed:.2f}",
            usual,
            same_hour,
            level,
            str(int(d.condition)),
            d.reason,
        ]


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 timestamp (``2015-03-03 04:37:53``); naive ones are taken as UTC."""
    at = datetime.fromisoformat(text.strip())
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_series(stream: TextIO, name: str = "<series>") -> list[tuple[str, datetime, float]]:
    """Rows ``(timestamp text, timestamp, value)`` of a CSV with timestamp and value columns.

    Raises :class:`DetectError` (``name:line: reason``) on a missing column, a bad timestamp or
    value, or timestamps that go backwards.
    """
    reader = csv.DictReader(stream)
    fields = reader.fieldnames or []
    missing = [c for c in ("timestamp", "value") if c not in fields]
    if missing:
        raise DetectError(f"{name}:1: missing column(s) {', '.join(missing)} (have {fields})")
    rows: list[tuple[str, datetime, float]] = []
    previous: datetime | None = None
    for number, row in enumerate(reader, start=2):
        text = row["timestamp"] or ""
        try:
            at = parse_timestamp(text)
        except ValueError:
            raise DetectError(f"{name}:{number}: invalid timestamp {text!r}") from None
        try:
            value = float(row["value"] or "")
        except ValueError:
            raise DetectError(f"{name}:{number}: invalid value {row['value']!r}") from None
        if not math.isfinite(value):
            raise DetectError(f"{name}:{number}: value {row['value']!r} is not a finite number")
        if previous is not None and at < previous:
            raise DetectError(f"{name}:{number}: timestamp {text} is before the previous row")
        previous = at
        rows.append((text, at, value))
    return rows


def find_rule(rules_path: Path, name: str) -> VolumeSurgeRule:
    """The ``volume_surge`` rule called ``name`` in a rule file or folder."""
    from streams.rule_kinds import VolumeSurgeRule
    from streams.rules import load_rule_paths

    ruleset = load_rule_paths(rules_path)
    for rule in ruleset.rules:
        if rule.alert == name:
            if not isinstance(rule, VolumeSurgeRule):
                raise DetectError(f"{rules_path}: rule {name} is not a volume_surge rule")
            return rule
    raise DetectError(f"{rules_path}: no rule named {name}")


def run_volume_rule(
    rule: VolumeSurgeRule, counts: Iterable[tuple[datetime, float]], *, brand: str = "series"
) -> Iterator[tuple[datetime, float, Detection, bool]]:
    """Run a ``volume_surge`` rule causally over a series of bucket counts.

    Each row is judged by the rule's detector from the rows before it, then goes through the same
    state machine as in the worker (``for``, ``keep_firing_for``, ``cooldown``, ``min_volume``),
    with the row's timestamp as the evaluation time. Yields ``(timestamp, value, detection,
    alert_started)`` where ``alert_started`` is true on the row where an alert starts firing.
    """
    from streams import alert_lifecycle
    from streams.records import AlertState

    current: list[tuple[datetime, float, Detection]] = []

    def verdicts() -> Iterator[tuple[datetime, Verdict]]:
        for at, value, detection, verdict in rule.detect(counts):
            current[:] = [(at, value, detection)]
            yield at, verdict

    for out in alert_lifecycle.run(rule, verdicts(), brand=brand):
        at, value, detection = current[0]
        yield at, value, detection, any(a.state is AlertState.FIRING for a in out.alerts)


def detect(
    rule: VolumeSurgeRule, rows: Iterable[tuple[str, datetime, float]]
) -> Iterator[DetectRow]:
    """Run ``rule`` over the rows causally (lazily: one verdict per row, in order)."""
    texts: list[str] = []

    def counts() -> Iterator[tuple[datetime, float]]:
        for text, at, value in rows:
            texts.append(text)
            yield at, value

    for index, (_, value, detection, started) in enumerate(run_volume_rule(rule, counts())):
        yield DetectRow(
            timestamp=texts[index],
            value=value,
            anomaly_score=detection.score,
            alert=started,
            detection=detection,
        )


def write_rows(out: TextIO, rows: Iterable[DetectRow], *, explain: bool = False) -> int:
    """Write the output CSV; returns the number of alerts."""
    writer = csv.writer(out, lineterminator="\n")
    header = ["timestamp", "value", "anomaly_score", "alert"]
    writer.writerow([*header, *EXPLAIN_COLUMNS] if explain else header)
    alerts = 0
    for row in rows:
        alerts += row.alert
        line = [row.timestamp, f"{row.value:g}", f"{row.anomaly_score:.4f}", str(int(row.alert))]
        writer.writerow([*line, *row.evidence()] if explain else line)
    return alerts


def default_rules_path(settings: Settings) -> Path:
    """The shipped rules: the folder of the configured rule file, else the package's own."""
    folder = settings.rules_path.parent
    return folder if folder.is_dir() and any(folder.glob("*.yaml")) else SHIPPED_RULES


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    """Read the series, run the rule, write the verdicts."""
    from streams.rules import RuleFileError

    rules_path = Path(args.rules) if args.rules else default_rules_path(settings)
    try:
        rule = find_rule(rules_path, args.rule)
        with open(args.series, encoding="utf-8", newline="") as stream:
            rows = read_series(stream, args.series)
    except (DetectError, RuleFileError) as exc:
        print(f"listenwell detect: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"listenwell detect: {args.series}: {exc.strerror}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="") as out:
        alerts = write_rows(out, detect(rule, rows), explain=args.explain)
    print(f"{len(rows)} rows, {alerts} alerts ({rule.alert}) -> {output}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listenwell detect``."""
    p = sub.add_parser(
        "detect", help="run a volume rule over a timestamp,value CSV series (causal)"
    )
    p.add_argument("--series", required=True, help="CSV with timestamp,value columns")
    p.add_argument(
        "--rule", default=DEFAULT_RULE, help=f"volume_surge rule (default {DEFAULT_RULE})"
    )
    p.add_argument("--rules", help="rule file or folder (default: the shipped alert_rules/)")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument(
        "--explain",
        action="store_true",
        help="add the evidence of each verdict (expected, sustained, ratio, z, history, reason)",
    )
    p.set_defaults(func=cmd_detect)
