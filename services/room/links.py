"""Links into the incident room, shared by the pages and the notifier's messages."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

ROOM_PATH = "/room/"


def alert_path(labels: dict[str, str], fingerprint: str, starts_at: datetime) -> str:
    """The room page of an alert: the at-risk queue for a customer alert, else the page that
    leads to the incident the alert belongs to (``/room/alerts/<fingerprint>?at=<start>``)."""
    if "customer" in labels:
        return f"{ROOM_PATH}customers"
    at = starts_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{ROOM_PATH}alerts/{quote(fingerprint, safe='')}?{urlencode({'at': at})}"


def alert_url(
    public_url: str | None, labels: dict[str, str], fingerprint: str, starts_at: datetime
) -> str | None:
    """``public_url`` + :func:`alert_path`; ``None`` when no public URL is configured."""
    if not public_url:
        return None
    return public_url.rstrip("/") + alert_path(labels, fingerprint, starts_at)
