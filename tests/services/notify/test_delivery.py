"""Receivers and delivery against local servers: a fake Slack, a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from PIL import Image
from prometheus_client import CollectorRegistry

from services.kafka_local import free_port
from services.notify.config import Receiver, SlackConfig, parse_routes
from services.notify.console import ConsoleSender, format_alert
from services.notify.core import Notification
from services.notify.delivery import Deliverer, NotificationLog, TokenBucket
from services.notify.metrics import NotifierMetrics
from services.notify.receivers import EmailSender, SlackSender, WebhookSender, build_sender
from services.notify.render import CHART_SIZE, sparkline
from streams.clock import FakeClock
from streams.records import AlertState, Example
from tests import factories
from tests.services.notify.fakes import fake_slack

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def notification(receiver: str = "slack", at: datetime = T0) -> Notification:
    alert = factories.alert(
        value=0.62,
        baseline=0.18,
        starts=T0,
        annotations={
            "summary": "Negative sentiment spike for acme",
            "description": "0.62 of mentions are negative, against a baseline of 0.18.",
            "link": "http://grafana.local/d/brand?var-brand=acme",
        },
        examples=(
            Example(id="r:1", text="The app ate my   order again"),
            Example(id="r:2", text="Worst support ever"),
        ),
        brand="acme",
    )
    history = tuple((T0 + timedelta(minutes=i), v) for i, v in enumerate([0.2, 0.3, 0.5, 0.62]))
    return Notification(
        receiver=receiver,
        group_key="root:{alertname=NegativeSentimentSpike,brand=acme}",
        group_labels={"alertname": "NegativeSentimentSpike", "brand": "acme"},
        firing=(alert,),
        resolved=(),
        at=at,
        history={alert.fingerprint: history},
    )


def slack_sender(url: str, monkeypatch: pytest.MonkeyPatch, client: httpx.Client) -> SlackSender:
    monkeypatch.setenv("TEST_SLACK_URL", url)
    config = SlackConfig.model_validate(
        {"type": "slack", "webhook_url": {"env": "TEST_SLACK_URL"}, "channel": "#alerts"}
    )
    return SlackSender("slack", config, client)


def deliverer(
    sender: object, tmp_path: Path, clock: FakeClock, parked: list[str], attempts: int = 5
) -> tuple[Deliverer, NotifierMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    d = Deliverer(
        {"slack": sender},  # type: ignore[dict-item]
        NotificationLog(tmp_path / "nflog"),
        metrics,
        lambda n, reason: parked.append(reason),
        max_attempts={"slack": attempts},
        clock=clock,
    )
    return d, metrics, registry


def test_slack_429_then_500_then_200_is_exactly_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = [(429, {"Retry-After": "7"}), (500, {}), (200, {})]
    clock = FakeClock()
    with fake_slack(script) as slack, httpx.Client() as client:
        sender = slack_sender(slack.url, monkeypatch, client)
        d, _, registry = deliverer(sender, tmp_path, clock, [])
        assert d.deliver(notification()) == "delivered"
        assert len(slack.requests) == 3
        assert len(slack.messages) == 1
    assert clock.sleeps[0] == 7.0  # Retry-After honoured
    assert clock.sleeps[1] == pytest.approx(1.0)  # then exponential backoff (0.5 * 2**1)
    get = registry.get_sample_value
    assert get("listenwell_notification_retries_total", {"receiver": "slack"}) == 2
    labels = {"receiver": "slack", "outcome": "delivered"}
    assert get("listenwell_notifications_total", labels) == 1
    assert get("listenwell_notification_delivery_seconds_count", {"receiver": "slack"}) == 1


def test_slack_failing_every_time_is_parked_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, parked = FakeClock(), list[str]()
    with fake_slack([(503, {})] * 3) as slack, httpx.Client() as client:
        sender = slack_sender(slack.url, monkeypatch, client)
        d, _, _ = deliverer(sender, tmp_path, clock, parked, attempts=3)
        assert d.deliver(notification()) == "parked"
        assert len(slack.requests) == 3 and slack.messages == []
    assert parked and "503" in parked[0]


def test_slack_client_error_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, parked = FakeClock(), list[str]()
    with fake_slack([(404, {})]) as slack, httpx.Client() as client:
        d, _, _ = deliverer(slack_sender(slack.url, monkeypatch, client), tmp_path, clock, parked)
        assert d.deliver(notification()) == "parked"
        assert len(slack.requests) == 1


def test_notification_log_skips_what_a_previous_process_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_slack() as slack, httpx.Client() as client:
        sender = slack_sender(slack.url, monkeypatch, client)
        first, _, _ = deliverer(sender, tmp_path, FakeClock(), [])
        assert first.deliver(notification()) == "delivered"
        restarted, _, _ = deliverer(sender, tmp_path, FakeClock(), [])  # same log file
        later = notification(at=T0 + timedelta(minutes=3))
        assert restarted.deliver(later) == "duplicate"
        # the same content after repeat_interval is a legitimate repeat
        assert restarted.deliver(notification(at=T0 + timedelta(hours=4))) == "delivered"
        assert len(slack.messages) == 2


def test_slack_block_kit_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_slack() as slack, httpx.Client() as client:
        slack_sender(slack.url, monkeypatch, client).send(notification())
    [message] = slack.messages
    assert message["channel"] == "#alerts"
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "[FIRING:1] NegativeSentimentSpike brand=acme"
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Now*\\n0.62" in text and "*Baseline*\\n0.18" in text
    assert sparkline([0.2, 0.3, 0.5, 0.62]) in text
    assert "> The app ate my order again" in text
    assert "<http://grafana.local/d/brand?var-brand=acme|Open dashboard>" in text


def test_rate_limit_token_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    bucket.take()
    bucket.take()
    assert bucket.wait() == pytest.approx(1.0)
    clock.advance(0.5)
    assert bucket.wait() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.wait() == 0.0


class _Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.content  # type: ignore[attr-defined]
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def test_email_over_real_smtp_has_text_html_and_inline_png_chart() -> None:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        tree = parse_routes(
            f"""
route: {{receiver: mail}}
receivers:
  mail: {{type: email, host: 127.0.0.1, port: {port}, from: lw@example.com, to: [m@example.com]}}
"""
        )
        EmailSender("mail", tree.receivers["mail"].config).send(notification("mail"))  # type: ignore[arg-type]
    finally:
        controller.stop()
    [msg] = sink.messages
    assert msg["Subject"] == "[FIRING:1] NegativeSentimentSpike brand=acme"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "now: 0.62  baseline: 0.18" in text.get_content()
    html_text = html.get_content()
    assert "Negative sentiment spike for acme" in html_text
    assert "<td>0.62</td><td>0.18</td>" in html_text
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    [png] = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    cid = png["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_text
    image = Image.open(io.BytesIO(png.get_content()))
    assert image.format == "PNG" and image.size == CHART_SIZE and image.mode == "RGB"
    # the metric line is drawn in red
    assert (200, 30, 30) in {c for _, c in image.getcolors(maxcolors=100000) or []}


def test_webhook_is_signed_with_hmac(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    with fake_slack() as hook, httpx.Client() as client:
        tree = parse_routes(
            f"""
route: {{receiver: hook}}
receivers:
  hook: {{type: webhook, url: "{hook.url}", hmac_secret: {{file: "{key}"}}}}
"""
        )
        sender = build_sender(tree.receivers["hook"], client)
        assert isinstance(sender, WebhookSender)
        sender.send(notification("hook"))
    [(headers, body)] = hook.requests
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Listenwell-Signature"] == expected
    payload = json.loads(body)
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["labels"]["brand"] == "acme"


def test_secret_reference_must_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_SLACK", raising=False)
    config = SlackConfig.model_validate({"type": "slack", "webhook_url": {"env": "NOPE_SLACK"}})
    with httpx.Client() as client, pytest.raises(KeyError, match="NOPE_SLACK"):
        build_sender(Receiver("s", config), client)


def test_rate_limit_spaces_out_deliveries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    with fake_slack() as slack, httpx.Client() as client:
        registry = CollectorRegistry()
        d = Deliverer(
            {"slack": slack_sender(slack.url, monkeypatch, client)},
            NotificationLog(tmp_path / "nflog"),
            NotifierMetrics(registry),
            lambda n, reason: None,
            rate_per_minute={"slack": 6},  # one every 10 s, burst 1
            clock=clock,
        )
        for minute in range(3):
            n = notification(at=T0 + timedelta(minutes=minute))
            other = Notification(**{**n.__dict__, "group_key": f"g{minute}"})
            assert d.deliver(other) == "delivered"
    assert len(slack.messages) == 3
    assert clock.sleeps == [pytest.approx(10.0), pytest.approx(10.0)]


def test_routes_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from services.cli import main

    broken = tmp_path / "routes.yaml"
    broken.write_text("route:\n  receiver: nobody\nreceivers:\n  a: {type: console}\n")
    assert main(["routes", "check", str(broken)]) == 1
    assert f"{broken}:2: unknown receiver 'nobody'" in capsys.readouterr().out
    shipped = Path(__file__).resolve().parents[3] / "alert_rules" / "routes.yaml"
    assert main(["routes", "check", str(shipped)]) == 0


def test_notification_log_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "nflog"
    log = NotificationLog(path)
    n = notification()
    log.record(n, "delivered")
    log.close()
    with path.open("a") as f:
        f.write('{"key": "slack/x", "ha')  # killed mid-write
    reopened = NotificationLog(path)
    assert reopened.already_sent(notification(at=T0 + timedelta(minutes=1)))
    later = notification(at=T0 + timedelta(hours=5))
    assert not reopened.already_sent(later)
    reopened.record(later, "delivered")
    reopened.close()
    assert NotificationLog(path).already_sent(notification(at=T0 + timedelta(hours=6)))


def test_a_transition_goes_to_the_console_once_ever_even_after_a_restart(tmp_path: Path) -> None:
    lines: list[str] = []
    firing = factories.alert(brand="acme")
    resolved = factories.alert(brand="acme", state=AlertState.RESOLVED)

    def console() -> Deliverer:
        return Deliverer(
            {"console": ConsoleSender("console", lines.append)},
            NotificationLog(tmp_path / "nflog"),
            NotifierMetrics(CollectorRegistry()),
            lambda n, reason: None,
            rate_per_minute={"console": None},  # not limited
        )

    first = console()
    for a in (firing, resolved, firing):
        first.deliver(Notification.transition("console", a, T0))
    restarted = console()
    assert restarted.deliver(Notification.transition("console", resolved, T0)) == "duplicate"
    assert lines == [format_alert(firing), format_alert(resolved)]
    assert lines[0].startswith("[firing] NegativeSentimentSpike brand=acme value=0.60")
    assert lines[1].startswith("[resolved] NegativeSentimentSpike brand=acme")


def test_the_transition_ids_an_older_console_notifier_logged_are_not_printed_again(
    tmp_path: Path,
) -> None:
    firing = factories.alert(brand="acme")
    log_path = tmp_path / "delivered.log"
    log_path.write_text(firing.transition_id + "\n")  # the old console notifier's format
    log = NotificationLog(log_path)
    assert log.already_sent(Notification.transition("console", firing, T0))
    later = factories.alert(brand="acme", starts=T0 + timedelta(hours=1))
    assert not log.already_sent(Notification.transition("console", later, T0))
