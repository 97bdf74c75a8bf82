"""Rendering incidents for the terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.incidents import format_incident, format_list, sparkline
from streams.records import Incident, IncidentPoint, IncidentStatus

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def incident(**changes: object) -> Incident:
    series = tuple(
        IncidentPoint(minute=T0 + timedelta(minutes=i), value=v, baseline=0.1)
        for i, v in enumerate([0.1, 0.3, 0.8, 0.5, 0.1])
    )
    fields: dict[str, object] = {
        "id": "abc:20260105T0900Z",
        "fingerprint": "abc",
        "brand": "acme",
        "alertname": "Spike",
        "status": IncidentStatus.RECOVERED,
        "onset": T0,
        "firing_at": T0 + timedelta(minutes=2),
        "peak_value": 0.8,
        "peak_at": T0 + timedelta(minutes=3),
        "resolved_at": T0 + timedelta(minutes=4),
        "recovered_at": T0 + timedelta(minutes=95),
        "time_to_recover_s": 95 * 60.0,
        "updated_at": T0 + timedelta(minutes=95),
        "series": series,
    }
    fields.update(changes)
    return Incident.model_validate(fields)


def test_sparkline_scales_values_onto_eight_bars() -> None:
    assert sparkline([0.0, 0.5, 1.0, None], low=0.0, high=1.0) == "▁▅█ "
    assert sparkline([2.0, 2.0], low=2.0, high=2.0) == "▁▁"


def test_show_draws_value_and_baseline_on_one_scale() -> None:
    lines = format_incident(incident())
    value = next(line for line in lines if line.startswith("value"))
    baseline = next(line for line in lines if line.startswith("baseline"))
    assert value.split()[1] == "▁▃█▅▁"
    assert baseline.split()[1] == "▁▁▁▁▁"
    assert any("time to recover 1h35m" in line for line in lines)


def test_list_is_newest_first_with_status_and_time_to_recover() -> None:
    older = incident(id="old:1", onset=T0 - timedelta(days=1))
    open_ = incident(
        id="new:1",
        status=IncidentStatus.FIRING,
        resolved_at=None,
        recovered_at=None,
        time_to_recover_s=None,
    )
    rows = format_list([older, open_])
    assert rows[1].startswith("new:1") and "firing" in rows[1] and rows[1].rstrip().endswith("-")
    assert rows[2].startswith("old:1") and "1h35m" in rows[2]
