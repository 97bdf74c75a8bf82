"""Incidents: read the compacted ``incidents`` topic, show them in a terminal, serve them over HTTP.

``listenwell incidents list`` and ``listenwell incidents show ID`` read the topic from its start
to its current end (the latest version of every incident wins, as compaction keeps it) and print
a table, or one incident with a sparkline of its metric against the baseline since onset.
``add_incident_routes(app, load)`` adds ``GET /v1/incidents`` and ``GET /v1/incidents/{id}`` to
the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from streams.clock import SYSTEM_CLOCK, Clock
from streams.records import Incident, IncidentPoint
from streams.settings import Settings
from streams.topic_reader import read_topic

__all__ = [
    "CachedIncidents",
    "add_incident_routes",
    "format_incident",
    "format_list",
    "read_incidents",
    "register",
    "sparkline",
]

BARS = "▁▂▃▄▅▆▇█"


def read_incidents(bootstrap: str, topic: str, *, timeout_s: float = 10.0) -> dict[str, Incident]:
    """Every incident in ``topic`` (latest version per id), read from the start to the end."""
    incidents: dict[str, Incident] = {}
    for _, key, value in read_topic(bootstrap, topic, timeout_s=timeout_s):
        if value is not None:
            incident = Incident.from_json(value)
            incidents[incident.id] = incident
        elif key is not None:  # a tombstone
            incidents.pop(key.decode(), None)
    return incidents


def sparkline(values: Sequence[float | None], *, low: float, high: float) -> str:
    """One bar per value on a shared ``low``..``high`` scale (blank for a missing value)."""
    span = high - low
    out = []
    for value in values:
        if value is None:
            out.append(" ")
            continue
        level = 0 if span <= 0 else round((value - low) / span * (len(BARS) - 1))
        out.append(BARS[max(0, min(len(BARS) - 1, level))])
    return "".join(out)


def _downsample(points: Sequence[IncidentPoint], width: int) -> list[IncidentPoint]:
    if len(points) <= width:
        return list(points)
    step = len(points) / width
    return [points[int(i * step)] for i in range(width)]


def _when(at: Any) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


def _ttr(incident: Incident) -> str:
    if incident.time_to_recover_s is None:
        return "-"
    minutes = int(incident.time_to_recover_s // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def format_list(incidents: Sequence[Incident]) -> list[str]:
    """A table of incidents, newest onset first."""
    rows = [f"{'ID':<34} {'ALERT':<24} {'BRAND':<16} {'STATUS':<11} {'ONSET':<16} {'TTR':>6}"]
    for inc in sorted(incidents, key=lambda i: i.onset, reverse=True):
        rows.append(
            f"{inc.id:<34} {inc.alertname:<24} {inc.brand:<16} {inc.status:<11} "
            f"{_when(inc.onset):<16} {_ttr(inc):>6}"
        )
    return rows


def format_incident(incident: Incident, *, width: int = 72) -> list[str]:
    """One incident: its facts and sparklines of the value and the baseline on one scale."""
    points = _downsample(incident.series, width)
    values = [p.value for p in points]
    baselines = [p.baseline for p in points]
    known = [v for v in (*values, *baselines) if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    lines = [
        f"incident  {incident.id}",
        f"alert     {incident.alertname}  brand {incident.brand}  status {incident.status}",
        f"onset     {_when(incident.onset)}   firing {_when(incident.firing_at)}"
        f"   firings {incident.firings}",
        f"peak      {incident.peak_value:g} at {_when(incident.peak_at)}",
        f"resolved  {_when(incident.resolved_at)}   recovered {_when(incident.recovered_at)}"
        f"   time to recover {_ttr(incident)}",
    ]
    if points:
        lines += [
            f"value     {sparkline(values, low=low, high=high)}",
            f"baseline  {sparkline(baselines, low=low, high=high)}",
            f"          {_when(points[0].minute)} … {_when(points[-1].minute)}"
            f"  (scale {low:g} to {high:g}, {len(incident.series)} minutes"
            f"{', truncated' if incident.series_truncated else ''})",
        ]
    return lines


# --- HTTP ---------------------------------------------------------------------------------------


def add_incident_routes(app: web.Application, load: Callable[[], dict[str, Incident]]) -> None:
    """``GET /v1/incidents`` (summaries, newest first) and ``GET /v1/incidents/{id}`` (with the
    series); ``load`` returns the current incidents (it runs in a thread: it may block)."""

    async def list_incidents(request: web.Request) -> web.Response:
        incidents = await asyncio.to_thread(load)
        body = [
            json.loads(i.model_dump_json(exclude={"series"}))
            for i in sorted(incidents.values(), key=lambda i: i.onset, reverse=True)
        ]
        return web.json_response({"incidents": body})

    async def get_incident(request: web.Request) -> web.Response:
        incidents = await asyncio.to_thread(load)
        incident = incidents.get(request.match_info["id"])
        if incident is None:
            return web.json_response({"error": "no such incident"}, status=404)
        return web.Response(body=incident.to_json(), content_type="application/json")

    app.router.add_get("/v1/incidents", list_incidents)
    app.router.add_get("/v1/incidents/{id}", get_incident)


# --- CLI ----------------------------------------------------------------------------------------


def _load(settings: Settings) -> dict[str, Incident]:
    from streams import topics

    return read_incidents(
        settings.kafka_bootstrap, topics.topic_name(topics.INCIDENTS, settings.topic_prefix)
    )


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    for line in format_list(list(_load(settings).values())):
        print(line)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    incidents = _load(settings)
    incident = incidents.get(args.id)
    if incident is None:
        matches = [i for key, i in incidents.items() if key.startswith(args.id)]
        if len(matches) != 1:
            print(f"listenwell incidents show: no single incident {args.id!r}")
            return 1
        incident = matches[0]
    for line in format_incident(incident):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``listenwell incidents list|show ID``."""
    parser = sub.add_parser("incidents", help="incidents from the incidents topic: list, show")
    incidents = parser.add_subparsers(dest="incidents_command", required=True)
    p = incidents.add_parser("list", help="every incident, newest first")
    p.set_defaults(func=cmd_list)
    p = incidents.add_parser("show", help="one incident with its sparkline (ID or a prefix)")
    p.add_argument("id")
    p.set_defaults(func=cmd_show)


class CachedIncidents:
    """A loader for :func:`add_incident_routes` that re-reads the topic at most every ``ttl_s``."""

    def __init__(
        self, bootstrap: str, topic: str, *, ttl_s: float = 5.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        import threading

        self._bootstrap, self._topic, self._ttl_s = bootstrap, topic, ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._incidents: dict[str, Incident] = {}

    def __call__(self) -> dict[str, Incident]:
        with self._lock:
            now = self._clock.monotonic()
            if self._loaded_at is None or now - self._loaded_at >= self._ttl_s:
                self._incidents = read_incidents(self._bootstrap, self._topic)
                self._loaded_at = now
            return self._incidents
