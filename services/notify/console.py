"""The console receiver: one line per alert, ``[firing] <alertname> …`` or ``[resolved] …``.

The notifier process gives it every alert transition as it arrives (``listenwell notifier`` prints
them, with or without routes); a routes file may also name a ``type: console`` receiver, which then
gets the grouped notifications of its routes like any other receiver.
"""

from __future__ import annotations

from collections.abc import Callable

from services.notify.core import Notification
from streams.records import Alert, AlertState


def format_alert(alert: Alert) -> str:
    """One console line: ``[state] AlertName`` then who, value, baseline and one example."""
    parts = [f"[{alert.state}] {alert.alertname}"]
    for label in ("brand", "customer"):
        if label in alert.labels:
            parts.append(f"{label}={alert.labels[label]}")
    parts.append(f"value={alert.value:.2f}")
    if alert.baseline is not None:
        parts.append(f"baseline={alert.baseline:.2f}")
    when = (
        alert.ends_at if alert.state == AlertState.RESOLVED and alert.ends_at else alert.starts_at
    )
    parts.append(f"at={when:%Y-%m-%d %H:%M}Z")
    if alert.examples:
        text = " ".join(alert.examples[0].text.split())
        parts.append(f'example="{text[:120]}"')
    return " ".join(parts)


class ConsoleSender:
    """Prints one line per alert of the notification (through ``emit``, e.g. ``print``)."""

    def __init__(self, name: str, emit: Callable[[str], None]) -> None:
        self.name = name
        self._emit = emit

    def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            self._emit(format_alert(alert))
