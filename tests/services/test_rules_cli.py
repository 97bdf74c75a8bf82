"""``listenwell rules check|test|backtest`` as a user runs them, on the shipped rules and on
broken files."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli import main

RULES = Path(__file__).parents[2] / "alert_rules"


def test_check_accepts_the_shipped_rules_lexicon_and_tests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "check", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "default.yaml: ok (4 rules)" in out
    assert "lexicon.yaml: ok" in out
    assert "default.test.yaml: ok" in out


def test_shipped_rule_tests_pass_and_cover_every_shipped_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "test", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "FAIL" not in out
    tested = (RULES / "default.test.yaml").read_text()
    for alert in (
        "NegativeSentimentSpike",
        "MentionVolumeSurge",
        "EmpathyDeficit",
        "CustomerAtRisk",
    ):
        assert f"alertname: {alert}" in tested


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "      - alert: X\n        kind: threshold\n        metric: volume\n        op: '>'\n"
            "        value: 3\n",
            6,
            "metric",
        ),
        (
            "      - alert: X\n        kind: threshold\n        metric: count\n        op: '=>'\n"
            "        value: 3\n",
            7,
            "op",
        ),
        (
            "      - alert: X\n        kind: volume_surge\n        params: {threshold: high}\n",
            6,
            "params.threshold",
        ),
        (
            "      - alert: X\n        kind: volume_surge\n        params: {sensitivity: 3}\n",
            6,
            "sensitivity",
        ),
        (
            "      - alert: X\n        kind: empathy_deficit\n        params: {odds_ratio: 2}\n"
            "        window: 30m\n        cooldown: soon\n",
            8,
            "invalid duration",
        ),
        (
            "      - alert: X\n        kind: empathy_deficit\n        params: {odds_ratio: 2}\n"
            "        window: 30m\n        baseline: {seasonality: monthly}\n",
            8,
            "seasonality",
        ),
        (
            "      - alert: X\n        kind: empathy_deficit\n        params: {odds_ratio: 2}\n"
            "        min_share: 0.2\n",
            7,
            "min_share is no longer used by empathy_deficit",
        ),
        (
            "      - alert: X\n        kind: volume_surge\n        annotations:\n"
            "          summary: '{{ customer }}'\n",
            7,
            "unknown template variable",
        ),
        ("      - alert: X\n        kind: anomaly\n", 5, "unknown rule kind"),
        (
            "      - alert: X\n        kind: threshold\n        metric: count\n        op: '>'\n"
            "        value: 3\n        segments: {tier: [gold]}\n",
            9,
            "tier",
        ),
    ],
)
def test_check_rejects_broken_rules_with_file_line_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("groups:\n  - name: g\n    rules:\n" + text)
    assert main(["rules", "check", str(path)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{path}:{line}: "), out
    assert reason in out


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("acme:\n  great: lots\n", 2, "must be a number"),
        ("acme:\n  great: 9\n", 2, "within -4..4"),
        ("acme:\n  great: 1\nAcme Corp:\n  x: 1\n", 3, "invalid brand"),
        ("acme: [great]\n", 1, "phrase → valence"),
    ],
)
def test_check_rejects_a_broken_lexicon_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, reason: str
) -> None:
    shutil.copy(RULES / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "lexicon.yaml").write_text(text)
    assert main(["rules", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'lexicon.yaml'}:{line}: " in out and reason in out


def test_test_reports_a_failing_case_with_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(RULES / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "default.test.yaml").write_text(
        "tests:\n"
        "  - name: expects the wrong time\n"
        "    input:\n"
        '      - {brand: acme, from: "2026-01-05T06:00Z", minutes: 240, per_minute: 10,\n'
        "         negative_share: 0.1}\n"
        '      - {brand: acme, from: "2026-01-05T10:00Z", minutes: 40, per_minute: 10,\n'
        "         negative_share: 0.8}\n"
        "    expected_alerts:\n"
        "      - {alertname: NegativeSentimentSpike, state: firing, at: 2026-01-05T10:15Z,\n"
        "         labels: {brand: acme, severity: page}}\n"
    )
    assert main(["rules", "test", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "expects the wrong time" in out
    assert "-2026-01-05T10:15:00Z firing   NegativeSentimentSpike brand=acme" in out
    assert "+2026-01-05T10:08:00Z firing   NegativeSentimentSpike brand=acme" in out
    assert "1 failed" in out


def test_test_file_errors_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(RULES / "default.yaml", tmp_path / "default.yaml")
    (tmp_path / "x.test.yaml").write_text(
        "tests:\n  - name: t\n    input:\n      - {brand: acme, from: yesterday, minutes: 5,"
        " per_minute: 1}\n"
    )
    assert main(["rules", "test", str(tmp_path / "x.test.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'x.test.yaml'}:4: input 1: " in out and "invalid time" in out


def test_lexicon_overrides_change_how_a_brand_is_scored(tmp_path: Path) -> None:
    from streams.brand_scoring import scorer_for
    from streams.records import Mention, MentionKind, SentimentLabel

    (tmp_path / "rules.yaml").write_text("groups: []\n")
    (tmp_path / "lexicon.yaml").write_text("acme:\n  killer fares: 3.5\n")
    scorer = scorer_for(tmp_path / "rules.yaml")
    at = datetime(2026, 1, 5, tzinfo=UTC)

    def label(brand: str) -> SentimentLabel:
        mention = Mention(
            id=f"t:{brand}",
            source="t",
            kind=MentionKind.POST,
            brand=brand,
            text="Killer fares this week",
            author="a",
            created_at=at,
            fetched_at=at,
        )
        return scorer.score(mention, scored_at=at).sentiment.label

    assert label("acme") is SentimentLabel.POSITIVE
    assert label("globex") is SentimentLabel.NEGATIVE


def test_backtest_prints_alerts_and_a_summary_per_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from connectors.simulate import generate

    path = tmp_path / "crisis.jsonl"
    with path.open("w") as f:
        for mention in generate("crisis", seed=7):
            f.write(mention.model_dump_json() + "\n")
    assert main(["rules", "backtest", "--rules", str(RULES), "--input", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(
        "firing" in line and "NegativeSentimentSpike brand=northwind-air" in line for line in lines
    )
    assert any(
        "resolved" in line and "NegativeSentimentSpike brand=northwind-air" in line
        for line in lines
    )
    assert not any("brand=globex-bank" in line for line in lines if "Negative" in line)
    summary = next(line for line in lines if line.startswith("NegativeSentimentSpike "))
    count, firing, bar = summary.split()[1:4]
    assert count == "1" and firing[:2] in ("4h", "5h"), summary
    assert "█" in bar and bar.startswith("·")
    assert any(line.startswith("CustomerAtRisk ") for line in lines)
