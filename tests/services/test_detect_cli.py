"""``listenwell detect``: causal verdicts over a CSV series through the shipped volume rule."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.cli import main


def write_series(path: Path, values: list[float]) -> None:
    start = datetime(2015, 3, 1)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["timestamp", "value"])
        for i, value in enumerate(values):
            writer.writerow([(start + timedelta(minutes=5 * i)).isoformat(sep=" "), f"{value:g}"])


def series(seed: int = 1) -> list[float]:
    """Four calm days around 40 mentions per bucket; a story on the third day (six rows far
    above normal) and, on the fourth, a single-row spike (a bot, not a story)."""
    rng = random.Random(seed)
    values = [float(max(0, round(rng.gauss(40, 7)))) for _ in range(4 * 288)]
    values[700:706] = [900.0, 1200.0, 800.0, 400.0, 200.0, 90.0]
    values[1000] = 700.0
    return values


def run(tmp_path: Path, values: list[float], *extra: str) -> list[dict[str, str]]:
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(source, values)
    code = main(["detect", "--series", str(source), "--output", str(output), *extra])
    assert code == 0
    with output.open() as stream:
        return list(csv.DictReader(stream))


def test_a_sustained_surge_alerts_once_with_its_evidence(tmp_path: Path) -> None:
    rows = run(tmp_path, series(), "--explain")
    assert list(rows[0]) == [
        "timestamp",
        "value",
        "anomaly_score",
        "alert",
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
    ]
    alerts = [i for i, row in enumerate(rows) if row["alert"] == "1"]
    assert alerts == [701]  # most of the last 10 minutes surging; the one-row spike is not
    alert = rows[701]
    assert float(alert["anomaly_score"]) > 0.5 > float(rows[600]["anomaly_score"])
    assert alert["reason"].startswith("surge: 1,200 mentions")
    assert 30 < float(alert["expected"]) < 50 and float(alert["sustained"]) >= 900
    assert float(alert["ratio"]) > 15 and float(alert["z"]) >= 4.5
    same_hour = alert["same_hour_last_7_days"].split(";")
    assert len(same_hour) == 7 and same_hour[2:] == ["-"] * 5  # two days of history
    assert all(30 < float(c) < 50 for c in same_hour[:2])
    assert 30 < float(alert["level_24h"]) < 50
    surging = [i for i, row in enumerate(rows) if row["surge"] == "1"]
    assert surging[0] == 701 and surging[-1] < 730  # over within a couple of hours
    assert rows[1000]["reason"].startswith("normal: 700 mentions (median")


def test_output_for_a_prefix_is_the_prefix_of_the_output(tmp_path: Path) -> None:
    values = series(seed=4)
    whole = run(tmp_path, values)
    for cut in (300, 702, 1000):
        assert run(tmp_path, values[:cut]) == whole[:cut]


def test_unknown_rule_and_bad_rows_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    write_series(source, [1.0, 2.0])
    out = str(tmp_path / "out.csv")
    assert main(["detect", "--series", str(source), "--output", out, "--rule", "Nope"]) == 2
    assert "no rule named Nope" in capsys.readouterr().err
    source.write_text("timestamp,value\n2015-03-01 00:00:00,3\n2015-03-01 00:05:00,lots\n")
    assert main(["detect", "--series", str(source), "--output", out]) == 2
    assert "in.csv:3: invalid value 'lots'" in capsys.readouterr().err
    source.write_text("timestamp,value\n2015-03-01 00:00:00,3\n2015-03-01 00:05:00,nan\n")
    assert main(["detect", "--series", str(source), "--output", out]) == 2
    assert "in.csv:3: value 'nan' is not a finite number" in capsys.readouterr().err
