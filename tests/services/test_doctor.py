"""``listenwell doctor`` without a broker: a stopped Kafka is a ✗ with a hint and exit 1; secrets
are checked but never printed; busy metrics ports are reported."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from services.doctor import FAIL, OK, Check, check_ports, check_routes, report
from services.kafka_local import free_port
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "doctor", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_stopped_kafka_is_a_cross_with_a_hint_and_exit_1() -> None:
    port = free_port()  # nothing listens there
    result = doctor(
        LISTENWELL_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        LISTENWELL_WORKER_METRICS_PORT="0",
        LISTENWELL_NOTIFIER_METRICS_PORT="0",
        LISTENWELL_CONNECTOR_METRICS_PORT="0",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    kafka = lines.index(f"✗ Kafka reachable at 127.0.0.1:{port}")
    assert lines[kafka + 1].startswith("    hint: start a broker")
    assert "✓ rules load from alert_rules/default.yaml" in result.stdout


def test_missing_secret_fails_and_no_secret_value_is_printed(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "route:\n  receiver: slack\n  routes:\n    - matchers: [severity=info]\n"
        "      receiver: mail\n"
        "receivers:\n"
        "  slack:\n    type: slack\n    webhook_url: {env: DOCTOR_TEST_SLACK_URL}\n"
        "  mail:\n    type: email\n    host: smtp.example.com\n    from: a@example.com\n"
        "    to: [b@example.com]\n    password: {env: DOCTOR_TEST_SMTP_PASSWORD}\n"
    )
    os.environ["DOCTOR_TEST_SLACK_URL"] = "https://hooks.example.com/very-secret-token"
    os.environ.pop("DOCTOR_TEST_SMTP_PASSWORD", None)
    try:
        checks = check_routes(routes)
    finally:
        del os.environ["DOCTOR_TEST_SLACK_URL"]
    text = "\n".join(f"{c.status} {c.what} {c.hint}" for c in checks)
    assert "very-secret-token" not in text
    assert f"{OK} secret slack.webhook_url present (env DOCTOR_TEST_SLACK_URL)" in text
    failed = [c for c in checks if c.failed]
    assert [c.what for c in failed] == [
        "secret mail.password present (env DOCTOR_TEST_SMTP_PASSWORD)"
    ]
    assert failed[0].hint == "set DOCTOR_TEST_SMTP_PASSWORD"


def test_a_broken_routes_file_names_file_and_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("route:\n  receiver: nowhere\nreceivers: {}\n")
    [check] = check_routes(routes)
    assert check.status == FAIL
    assert str(routes) in check.hint


def test_busy_metrics_port_is_reported() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(worker_metrics_port=port, notifier_metrics_port=0)
        checks = check_ports(settings)
    worker = checks[0]
    assert worker.status == FAIL and f"127.0.0.1:{port}" in worker.hint
    assert checks[1].status != FAIL


def test_report_exit_code_and_hint_lines() -> None:
    out = io.StringIO()
    assert report(check_routes(None), out) == 0
    assert out.getvalue().splitlines() == [
        "– routes not configured (--routes or LISTENWELL_ROUTES_PATH)",
        "all good",
    ]
    out = io.StringIO()
    assert report([Check(FAIL, "thing works", "fix it")], out) == 1
    assert out.getvalue().splitlines() == ["✗ thing works", "    hint: fix it", "1 problem(s)"]


def test_the_api_secret_is_checked_from_the_api_settings(tmp_path: Path) -> None:
    from services.api import ApiSettings
    from services.doctor import check_api_secret

    [missing] = check_api_secret(ApiSettings(webhook_secret_file=tmp_path / "gone"))
    assert missing.failed and str(tmp_path / "gone") in missing.hint
    [present] = check_api_secret(ApiSettings(webhook_secret="whsec-doctor-test"))
    assert present.status == OK and "whsec-doctor-test" not in present.what
    [unset] = check_api_secret(ApiSettings(webhook_secret=None, webhook_secret_file=None))
    assert unset.status != FAIL


def test_a_rules_folder_loads_every_rule_file_and_a_name_clash_is_a_cross(tmp_path: Path) -> None:
    """``LISTENWELL_RULES_PATH`` may name a folder, as the worker reads it: all its rule files."""
    from services.doctor import check_rules

    shipped = Path("alert_rules/default.yaml").read_text()
    (tmp_path / "default.yaml").write_text(shipped)
    folder = check_rules(Settings(rules_path=tmp_path))
    single = check_rules(Settings(rules_path=Path("alert_rules/default.yaml")))
    assert [c.status for c in folder] == [OK]
    assert folder[0].what.split("(")[-1] == single[0].what.split("(")[-1]

    (tmp_path / "copy.yaml").write_text(shipped)
    clash = check_rules(Settings(rules_path=tmp_path))
    assert [c.status for c in clash] == [FAIL]
    assert "is also defined in" in clash[0].hint
