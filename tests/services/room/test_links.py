"""Alerts link to the incident room when LISTENWELL_PUBLIC_URL is set, and only then."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notify.core import Notification
from services.notify.render import email_html, email_text, slack_payload
from streams.settings import Settings
from tests.services.room.records import alert

PUBLIC = "https://listen.example.com"


def notification(*alerts: object) -> Notification:
    firing = tuple(alerts)
    return Notification(
        receiver="r",
        group_key="g",
        group_labels={},
        firing=firing,  # type: ignore[arg-type]
        resolved=(),
        at=firing[0].starts_at,  # type: ignore[attr-defined]
    )


def test_alerts_link_to_their_room_page_when_a_public_url_is_set() -> None:
    brand = alert()
    customer = alert(alertname="CustomerAtRisk", customer="cust-1")
    n = notification(brand, customer)
    expected = f"{PUBLIC}/room/alerts/{brand.fingerprint}?at=2026-01-05T10%3A00%3A00Z"
    slack = str(slack_payload(n, public_url=PUBLIC))
    assert f"<{expected}|Open the incident room>" in slack
    assert f"<{PUBLIC}/room/customers|Open the incident room>" in slack
    assert f"incident room: {expected}" in email_text(n, public_url=PUBLIC)
    html = email_html(n, {}, public_url=PUBLIC)
    assert f'<a href="{expected.replace("&", "&amp;")}">Open the incident room</a>' in html


def test_no_link_without_a_public_url() -> None:
    n = notification(alert())
    assert "/room/" not in str(slack_payload(n))
    assert "/room/" not in email_text(n) and "/room/" not in email_html(n, {})


def test_the_public_url_setting_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTENWELL_PUBLIC_URL", "https://listen.example.com/")
    assert Settings().public_url == PUBLIC
    monkeypatch.setenv("LISTENWELL_PUBLIC_URL", "javascript:alert(1)")
    with pytest.raises(ValidationError, match="must be an http"):
        Settings()
    monkeypatch.setenv("LISTENWELL_PUBLIC_URL", "")
    assert Settings().public_url is None
