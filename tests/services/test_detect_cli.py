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
    """Four calm days around 40 mentions per bucket, two surges on the third and fourth days."""
    rng = random.Random(seed)
    values = [float(max(0, round(rng.gauss(40, 7)))) for _ in range(4 * 288)]
    values[700:706] = [900.0, 1200.0, 800.0, 400.0, 200.0, 90.0]
    values[1000] = 700.0  # a second surge within the cooldown of the first
    return values


def run(tmp_path: Path, values: list[float], *extra: str) -> list[dict[str, str]]:
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(source, values)
    code = main(["detect", "--series", str(source), "--output", str(output), *extra])
    assert code == 0
    with output.open() as stream:
        return list(csv.DictReader(stream))


def test_alert_on_the_first_surge_row_only(tmp_path: Path) -> None:
    rows = run(tmp_path, series(), "--explain")
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert", "baseline", "reason"]
    alerts = [i for i, row in enumerate(rows) if row["alert"] == "1"]
    assert alerts == [700]  # the later surge is inside the 48h cooldown
    assert float(rows[700]["anomaly_score"]) > 0.5 > float(rows[600]["anomaly_score"])
    assert "900 mentions" in rows[700]["reason"]
    assert 30 < float(rows[700]["baseline"]) < 50


def test_output_for_a_prefix_is_the_prefix_of_the_output(tmp_path: Path) -> None:
    values = series(seed=4)
    whole = run(tmp_path, values)
    for cut in (300, 701, 1000):
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
