"""SVG chart geometry for the incident room, computed server-side (pure functions).

The templates draw ``<polyline>``/``<line>``/``<circle>`` elements from these numbers; only numbers
and fixed labels go into the SVG, never record text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from streams.records import Incident


@dataclass(frozen=True)
class Sparkline:
    """A small line chart: ``points`` for ``<polyline points=…>`` in a ``width``×``height`` box."""

    width: int
    height: int
    points: str
    area: str
    """The same line closed along the bottom edge (a filled area)."""
    overlay: str
    """A second series (e.g. negative mentions) on the same scale."""
    peak: int


def sparkline(
    values: Sequence[float], overlay: Sequence[float] = (), *, width: int = 160, height: int = 32
) -> Sparkline:
    """A sparkline of ``values`` (and ``overlay`` on the same scale), zero at the bottom."""
    top = max([*values, *overlay, 0.0])
    scale = (height - 2) / top if top > 0 else 0.0
    step = width / max(1, len(values) - 1)

    def line(series: Sequence[float]) -> str:
        return " ".join(
            f"{i * step:.1f},{height - 1 - v * scale:.1f}" for i, v in enumerate(series)
        )

    points = line(values)
    area = f"0,{height} {points} {width},{height}" if values else ""
    return Sparkline(width, height, points, area, line(overlay), int(top))


@dataclass(frozen=True)
class Marker:
    """A vertical line at a moment of the incident."""

    x: float
    kind: str
    """onset, firing, peak, resolved, recovered, now (a CSS class)."""
    label: str
    at: datetime
    anchor: str = "middle"
    """SVG ``text-anchor`` of the label: kept inside the chart at its edges."""


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class IncidentChart:
    """The value-vs-baseline curve of an incident with its moments marked."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    value_points: str
    baseline_points: str
    markers: tuple[Marker, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    peak_x: float
    peak_y: float


def incident_chart(
    incident: Incident, *, width: int = 720, height: int = 280, now: datetime | None = None
) -> IncidentChart:
    """The incident's per-minute metric (line) against its baseline (dashed), from onset to the
    last point, with onset, firing, peak, resolved and recovered marked."""
    left, right, top, bottom = 48, 12, 28, 28
    series = incident.series
    start = incident.onset
    moments = [incident.onset, incident.firing_at, incident.peak_at]
    moments += [t for t in (incident.resolved_at, incident.recovered_at) if t is not None]
    if series:
        moments.append(series[-1].minute + timedelta(minutes=1))
    end = max(moments)
    if end <= start:
        end = start + timedelta(minutes=1)
    span_s = (end - start).total_seconds()
    plot_w, plot_h = width - left - right, height - top - bottom

    values = [p.value for p in series] + [incident.peak_value]
    values += [p.baseline for p in series if p.baseline is not None]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def x(at: datetime) -> float:
        return left + (at - start).total_seconds() / span_s * plot_w

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * plot_h

    # A point is the minute's value: drawn at the middle of its minute.
    half = timedelta(seconds=30)
    value_points = " ".join(f"{x(p.minute + half):.1f},{y(p.value):.1f}" for p in series)
    baseline_points = " ".join(
        f"{x(p.minute + half):.1f},{y(p.baseline):.1f}" for p in series if p.baseline is not None
    )
    markers = [
        Marker(x(incident.onset), "onset", "onset", incident.onset),
        Marker(x(incident.firing_at), "firing", "firing", incident.firing_at),
        Marker(x(incident.peak_at), "peak", "peak", incident.peak_at),
    ]
    if incident.resolved_at is not None:
        markers.append(
            Marker(x(incident.resolved_at), "resolved", "resolved", incident.resolved_at)
        )
    if incident.recovered_at is not None:
        markers.append(
            Marker(x(incident.recovered_at), "recovered", "recovered", incident.recovered_at)
        )

    def anchored(pos: float) -> str:
        if pos < left + 40:
            return "start"
        return "end" if pos > width - right - 40 else "middle"

    markers = [Marker(m.x, m.kind, m.label, m.at, anchored(m.x)) for m in markers]
    y_ticks = tuple(
        Tick(y(low + (high - low) * f), f"{low + (high - low) * f:.2f}") for f in (0.1, 0.5, 0.9)
    )
    x_ticks = tuple(
        Tick(
            x(start + timedelta(seconds=span_s * f)),
            f"{start + timedelta(seconds=span_s * f):%H:%M}",
            anchored(x(start + timedelta(seconds=span_s * f))),
        )
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    return IncidentChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        value_points=value_points,
        baseline_points=baseline_points,
        markers=tuple(markers),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        peak_x=x(incident.peak_at),
        peak_y=y(incident.peak_value),
    )
