"""Receivers: one ``send(notification)`` per kind of destination; errors say whether to retry.

HTTP receivers use httpx; e-mail uses smtplib. A receiver raises ``DeliveryError`` with
``retryable`` (5xx, 429, connection errors) and ``retry_after`` (seconds, from ``Retry-After``);
retries, backoff and rate limits live in ``services.notify.delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import httpx

from services.notify import render
from services.notify.config import (
    AlertmanagerConfig,
    ConsoleConfig,
    EmailConfig,
    Receiver,
    SlackConfig,
    WebhookConfig,
)
from services.notify.console import ConsoleSender
from services.notify.core import Notification
from streams.records import Alert
from streams.settings import Settings


class DeliveryError(Exception):
    """A failed delivery; ``retryable`` says whether trying again may help."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers one notification or raises ``DeliveryError``."""

    name: str

    def send(self, notification: Notification) -> None: ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _check(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 300:
        return
    body = response.text[:200]
    if status == 429 or status >= 500:
        raise DeliveryError(
            f"{what} answered {status}: {body}", retryable=True, retry_after=_retry_after(response)
        )
    raise DeliveryError(f"{what} answered {status}: {body}", retryable=False)


def _post(client: httpx.Client, url: str, what: str, **kwargs: object) -> None:
    try:
        response = client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    _check(response, what)


class SlackSender:
    """Slack incoming webhook, Block Kit message."""

    def __init__(self, name: str, config: SlackConfig, client: httpx.Client) -> None:
        self.name = name
        self._config = config
        self._url = config.webhook_url.resolve()
        self._client = client
        self._public_url = Settings().public_url

    def send(self, notification: Notification) -> None:
        payload = render.slack_payload(
            notification, self._config.channel, public_url=self._public_url
        )
        _post(self._client, self._url.get_secret_value(), "Slack", json=payload)


def alertmanager_alert(alert: Alert) -> dict[str, object]:
    """One alert in Alertmanager's ``/api/v2/alerts`` shape."""
    body: dict[str, object] = {
        "labels": dict(alert.labels),
        "annotations": {
            **alert.annotations,
            "value": f"{alert.value:.4g}",
            **({"baseline": f"{alert.baseline:.4g}"} if alert.baseline is not None else {}),
        },
        "startsAt": alert.starts_at.isoformat(),
    }
    if alert.ends_at is not None:
        body["endsAt"] = alert.ends_at.isoformat()
    link = alert.annotations.get("link")
    if link and link.startswith(("http://", "https://")):
        body["generatorURL"] = link
    return body


class AlertmanagerSender:
    """Posts the group's alerts to an Alertmanager (which does its own grouping downstream)."""

    def __init__(self, name: str, config: AlertmanagerConfig, client: httpx.Client) -> None:
        self.name = name
        self._url = config.url.rstrip("/") + "/api/v2/alerts"
        self._client = client

    def send(self, notification: Notification) -> None:
        body = [alertmanager_alert(a) for a in notification.alerts]
        _post(self._client, self._url, "Alertmanager", json=body)


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Listenwell-Signature`` header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(notification: Notification) -> dict[str, object]:
    """The generic webhook's JSON body."""
    return {
        "version": "1",
        "receiver": notification.receiver,
        "status": notification.status,
        "kind": notification.kind,
        "groupKey": notification.group_key,
        "groupLabels": notification.group_labels,
        "title": render.title(notification),
        "alerts": [
            {
                **alertmanager_alert(a),
                "status": str(a.state),
                "fingerprint": a.fingerprint,
                "value": a.value,
                "baseline": a.baseline,
                "examples": [e.model_dump() for e in a.examples],
            }
            for a in notification.alerts
        ],
    }


class WebhookSender:
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is configured."""

    def __init__(self, name: str, config: WebhookConfig, client: httpx.Client) -> None:
        self.name = name
        self._url = config.url
        self._secret = config.hmac_secret.resolve() if config.hmac_secret else None
        self._client = client

    def send(self, notification: Notification) -> None:
        body = json.dumps(webhook_body(notification), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["X-Listenwell-Signature"] = signature(
                self._secret.get_secret_value().encode(), body
            )
        _post(self._client, self._url, "webhook", content=body, headers=headers)


def email_message(
    notification: Notification, sender: str, to: list[str], public_url: str | None = None
) -> EmailMessage:
    """multipart/alternative: text/plain, and multipart/related (text/html + inline PNG charts);
    alerts link to the incident room when ``public_url`` is set."""
    msg = EmailMessage()
    msg["Subject"] = render.title(notification)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(notification.at.timestamp(), usegmt=True)
    msg["Message-ID"] = make_msgid(domain="listenwell.local")
    msg.set_content(render.email_text(notification, public_url=public_url))
    cids: dict[str, str] = {}
    charts: list[tuple[str, bytes]] = []
    for alert in notification.alerts[: render.MAX_ALERTS]:
        cid = make_msgid(domain="listenwell.local")[1:-1]
        cids[alert.fingerprint] = cid
        points = notification.history.get(alert.fingerprint, ()) or (
            (alert.starts_at, alert.value),
        )
        charts.append((cid, render.chart_png(points, alert.baseline, alert.alertname)))
    msg.add_alternative(
        render.email_html(notification, cids, public_url=public_url), subtype="html"
    )
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    for cid, png in charts:
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", filename="chart.png")
    return msg


class EmailSender:
    """E-mail over SMTP, optionally with STARTTLS and login."""

    def __init__(self, name: str, config: EmailConfig, timeout: float = 15.0) -> None:
        self.name = name
        self._config = config
        self._password = config.password.resolve() if config.password else None
        self._timeout = timeout
        self._public_url = Settings().public_url

    def send(self, notification: Notification) -> None:
        c = self._config
        msg = email_message(notification, c.from_, c.to, self._public_url)
        try:
            with smtplib.SMTP(c.host, c.port, timeout=self._timeout) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username and self._password is not None:
                    smtp.login(c.username, self._password.get_secret_value())
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.smtp_code < 500
            raise DeliveryError(f"SMTP answered {exc.smtp_code}", retryable=retryable) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}", retryable=True) from None


def build_sender(
    receiver: Receiver, client: httpx.Client, emit: Callable[[str], None] = print
) -> Sender:
    """The sender for a configured receiver (resolves its secrets now)."""
    config = receiver.config
    if isinstance(config, SlackConfig):
        return SlackSender(receiver.name, config, client)
    if isinstance(config, EmailConfig):
        return EmailSender(receiver.name, config)
    if isinstance(config, AlertmanagerConfig):
        return AlertmanagerSender(receiver.name, config, client)
    if isinstance(config, WebhookConfig):
        return WebhookSender(receiver.name, config, client)
    assert isinstance(config, ConsoleConfig)
    return ConsoleSender(receiver.name, emit)
