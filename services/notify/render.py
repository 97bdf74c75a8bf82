"""What a notification looks like: Slack Block Kit, e-mail text and HTML, a sparkline, a chart."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime

from services.notify.core import Notification
from services.room.links import alert_url
from streams.records import Alert

_BARS = "▁▂▃▄▅▆▇█"
MAX_ALERTS = 10
MAX_EXAMPLES = 3


def sparkline(values: Sequence[float]) -> str:
    """A text sparkline (``▁▂▅█``) of the values, scaled to their own range."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        return _BARS[len(_BARS) // 2] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))] for v in values)


def title(n: Notification) -> str:
    """``[FIRING:2] NegativeSentimentSpike brand=acme`` (or the digest's title)."""
    if n.kind == "digest":
        return f"Daily digest {n.group_labels.get('digest', '')}: {len(n.firing)} minor alerts"
    names = sorted({a.alertname for a in n.alerts})
    count = len(n.firing) if n.firing else len(n.resolved)
    scope = " ".join(f"{k}={v}" for k, v in n.group_labels.items() if k != "alertname" and v)
    return f"[{n.status.upper()}:{count}] {', '.join(names)} {scope}".strip()


def _summary(alert: Alert) -> str:
    return alert.annotations.get("summary") or alert.alertname


def _link(alert: Alert) -> str | None:
    for key in ("link", "dashboard", "runbook_url", "runbook"):
        value = alert.annotations.get(key)
        if value and value.startswith(("http://", "https://")):
            return value
    return None


def _room(alert: Alert, public_url: str | None) -> str | None:
    """The alert's incident-room page (``LISTENWELL_PUBLIC_URL``); ``None`` when unset."""
    return alert_url(public_url, alert.labels, alert.fingerprint, alert.starts_at)


ROOM_LINK_TEXT = "Open the incident room"


def _values(n: Notification, alert: Alert) -> list[float]:
    return [v for _, v in n.history.get(alert.fingerprint, ())] or [alert.value]


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def slack_payload(
    n: Notification, channel: str | None = None, *, public_url: str | None = None
) -> dict[str, object]:
    """Slack incoming-webhook JSON with Block Kit blocks (and a plain ``text`` fallback); each
    alert links to its incident-room page when ``public_url`` is set."""
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(n)[:150]}}
    ]
    for alert in n.alerts[:MAX_ALERTS]:
        state = "🔴 firing" if alert in n.firing else "✅ resolved"
        who = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")
        text = f"*{_summary(alert)}* ({state})\n{who}"
        description = alert.annotations.get("description")
        if description:
            text += f"\n{description}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Now*\n{_fmt(alert.value)}"},
                    {"type": "mrkdwn", "text": f"*Baseline*\n{_fmt(alert.baseline)}"},
                ],
            }
        )
        context = f"`{sparkline(_values(n, alert))}` since {alert.starts_at:%Y-%m-%d %H:%M}Z"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        if alert.examples:
            quotes = "\n".join(
                "> " + " ".join(e.text.split())[:280] for e in alert.examples[:MAX_EXAMPLES]
            )
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": f"Top mentions:\n{quotes}"}}
            )
        links = [f"<{u}|{ROOM_LINK_TEXT}>" for u in (_room(alert, public_url),) if u]
        links += [f"<{u}|Open dashboard>" for u in (_link(alert),) if u]
        if links:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": " · ".join(links)}}
            )
        blocks.append({"type": "divider"})
    if len(n.alerts) > MAX_ALERTS:
        more = f"… and {len(n.alerts) - MAX_ALERTS} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    payload: dict[str, object] = {"text": title(n), "blocks": blocks}
    if channel:
        payload["channel"] = channel
    return payload


def email_text(n: Notification, *, public_url: str | None = None) -> str:
    """The plain-text part of the e-mail (with each alert's incident-room link when
    ``public_url`` is set)."""
    lines = [title(n), ""]
    for alert in n.alerts:
        state = "FIRING" if alert in n.firing else "RESOLVED"
        lines.append(f"{state} {_summary(alert)}")
        for k, v in sorted(alert.labels.items()):
            lines.append(f"  {k}: {v}")
        lines.append(f"  now: {_fmt(alert.value)}  baseline: {_fmt(alert.baseline)}")
        lines.append(f"  trend: {sparkline(_values(n, alert))}")
        lines.append(f"  since: {alert.starts_at:%Y-%m-%d %H:%M}Z")
        if alert.annotations.get("description"):
            lines.append(f"  {alert.annotations['description']}")
        for example in alert.examples[:MAX_EXAMPLES]:
            lines.append(f'  > "{" ".join(example.text.split())[:280]}"')
        room = _room(alert, public_url)
        if room:
            lines.append(f"  incident room: {room}")
        link = _link(alert)
        if link:
            lines.append(f"  {link}")
        lines.append("")
    return "\n".join(lines)


def email_html(
    n: Notification, chart_cids: dict[str, str], *, public_url: str | None = None
) -> str:
    """The HTML part; each alert's chart is an ``<img src="cid:…">`` of the related PNG, and its
    incident-room link when ``public_url`` is set."""
    e = html.escape
    parts = [f"<html><body><h2>{e(title(n))}</h2>"]
    for alert in n.alerts:
        state = "firing" if alert in n.firing else "resolved"
        parts.append(f"<h3>{e(_summary(alert))} ({state})</h3>")
        parts.append(
            "<table><tr><th>Now</th><th>Baseline</th></tr>"
            f"<tr><td>{e(_fmt(alert.value))}</td><td>{e(_fmt(alert.baseline))}</td></tr></table>"
        )
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        parts.append(f"<p>{e(labels)}</p>")
        if alert.annotations.get("description"):
            parts.append(f"<p>{e(alert.annotations['description'])}</p>")
        cid = chart_cids.get(alert.fingerprint)
        if cid:
            parts.append(f'<img src="cid:{cid}" alt="{e(alert.alertname)} against its baseline">')
        if alert.examples:
            items = "".join(
                f"<li>{e(' '.join(x.text.split())[:280])}</li>"
                for x in alert.examples[:MAX_EXAMPLES]
            )
            parts.append(f"<p>Top mentions:</p><ul>{items}</ul>")
        room = _room(alert, public_url)
        if room:
            parts.append(f'<p><a href="{e(room)}">{ROOM_LINK_TEXT}</a></p>')
        link = _link(alert)
        if link:
            parts.append(f'<p><a href="{e(link)}">Open dashboard</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts)


CHART_SIZE = (480, 160)


def chart_png(
    points: Sequence[tuple[datetime, float]], baseline: float | None, title_text: str = ""
) -> bytes:
    """A small PNG line chart (Pillow): the metric (red) against its baseline (grey, dashed)."""
    from PIL import Image, ImageDraw

    width, height = CHART_SIZE
    left, right, top, bottom = 40, 10, 20, 20
    image = Image.new("RGB", CHART_SIZE, "white")
    draw = ImageDraw.Draw(image)
    values = [v for _, v in points] or [0.0]
    scale = [*values, baseline] if baseline is not None else values
    low, high = min(scale), max(scale)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    def x(index: int) -> float:
        return left + (index / max(1, len(values) - 1)) * (width - left - right)

    draw.rectangle((left, top, width - right, height - bottom), outline=(200, 200, 200))
    draw.text((left, 4), title_text[:70], fill=(0, 0, 0))
    draw.text((2, top), f"{high:.2f}", fill=(90, 90, 90))
    draw.text((2, height - bottom - 10), f"{low:.2f}", fill=(90, 90, 90))
    if baseline is not None:
        by = y(baseline)
        for start in range(left, width - right, 12):
            draw.line((start, by, min(start + 6, width - right), by), fill=(120, 120, 120), width=2)
    if len(values) == 1:
        draw.ellipse((x(0) - 3, y(values[0]) - 3, x(0) + 3, y(values[0]) + 3), fill=(200, 30, 30))
    else:
        draw.line([(x(i), y(v)) for i, v in enumerate(values)], fill=(200, 30, 30), width=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
