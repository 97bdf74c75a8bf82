"""Incidents: one firing episode of a brand rule, followed from onset until it has recovered.

An incident opens when a rule fires (its series starts at the first pending minute), goes on if
the rule fires again before recovering, and is published as an :class:`streams.records.Incident`
at every closed minute it changes: ``firing`` → ``resolved`` → ``recovered`` once the rule's value
stayed inside its baseline band for the rule's ``recovery``, or ``unrecovered`` a day after it
resolved without recovering. A minute changes it when it adds a point to its series, a new peak or
a new status; once the series is full (:data:`MAX_INCIDENT_POINTS`) a minute that changes nothing
else publishes nothing but on the hour, so an incident that stays open costs its whole series
once an hour, not every minute. Called by :mod:`streams.alert_lifecycle`; pure, state in
:class:`streams.state.IncidentState`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import (
    SCHEMA_VERSION,
    Alert,
    Incident,
    IncidentPoint,
    IncidentStatus,
    fingerprint,
    trusted,
)
from streams.rule_kinds.base import BrandRule, Verdict
from streams.state import EngineOutput, IncidentState, RuleState, RuleStatus
from streams.windows import MINUTE

__all__ = ["INCIDENT_TRACKING", "MAX_INCIDENT_POINTS", "follow_incident", "open_incident"]

MAX_INCIDENT_POINTS = 720
"""Minutes of an incident's series kept (12 hours); later minutes only update peak and status."""
INCIDENT_TRACKING = timedelta(days=1)
"""How long after resolving an incident waits for recovery before it is closed as unrecovered."""


def open_incident(
    rule: BrandRule,
    rs: RuleState,
    brand: str,
    alert: Alert,
    end: datetime,
    out: EngineOutput,
) -> None:
    """``rule`` fired (``alert``) at ``end``: open its incident, or go on with the open one."""
    inc = rs.incident
    if inc is not None:
        # Re-fired before recovering: the same incident goes on.
        inc.firings += 1
        inc.resolved_at = None
        inc.in_band_since = None
        if rule.worse(alert.value, inc.peak_value):
            inc.peak_value, inc.peak_at = alert.value, end
        out.incidents.append(_record(rule, brand, inc, end))
        return
    assert rs.pending_since is not None
    onset = rs.recent[0].minute if rs.recent else rs.pending_since - MINUTE
    series = rs.recent[-MAX_INCIDENT_POINTS:]
    peak = max(series, key=lambda p: p.value) if series else None
    rs.incident = IncidentState(
        id=f"{alert.fingerprint}:{onset.strftime('%Y%m%dT%H%MZ')}",
        onset=onset,
        firing_at=end,
        peak_value=peak.value if peak is not None else alert.value,
        peak_at=peak.minute + MINUTE if peak is not None else end,
        series=list(series),
    )
    rs.recent = []
    out.incidents.append(_record(rule, brand, rs.incident, end))


def follow_incident(
    rule: BrandRule,
    rs: RuleState,
    brand: str,
    end: datetime,
    point: IncidentPoint,
    verdict: Verdict,
    out: EngineOutput,
) -> None:
    """Add the minute ending at ``end`` to the open incident; close it once it has recovered."""
    inc = rs.incident
    assert inc is not None
    # Whether the record changes at this minute (beyond ``updated_at``): a record that would
    # only repeat the last one is not published again.
    changed = inc.resolved_at == end  # resolved at this minute (by the alert's lifecycle)
    if not inc.series or inc.series[-1].minute < point.minute:
        if len(inc.series) < MAX_INCIDENT_POINTS:
            inc.series.append(point)
            changed = True
        elif not inc.series_truncated:
            inc.series_truncated = changed = True
    if rs.state is RuleStatus.FIRING and rule.worse(verdict.value, inc.peak_value):
        inc.peak_value, inc.peak_at = round(verdict.value, 4), end
        changed = True
    if verdict.elevated:
        inc.in_band_since = None
    elif inc.in_band_since is None:
        inc.in_band_since = point.minute
    status = IncidentStatus.FIRING
    if inc.resolved_at is not None:
        status = IncidentStatus.RESOLVED
        if inc.in_band_since is not None and end - inc.in_band_since >= rule.recovery:
            status = IncidentStatus.RECOVERED
        elif end - inc.resolved_at >= INCIDENT_TRACKING:
            status = IncidentStatus.UNRECOVERED
    closed = status in (IncidentStatus.RECOVERED, IncidentStatus.UNRECOVERED)
    # An unchanged incident is still published once an hour: its readers see it is followed
    # (``updated_at``), and a restarted worker's open-incidents gauge finds it again.
    if changed or closed or end.minute == 0:
        out.incidents.append(_record(rule, brand, inc, end, status))
    if closed:
        rs.incident = None


def _record(
    rule: BrandRule,
    brand: str,
    inc: IncidentState,
    end: datetime,
    status: IncidentStatus | None = None,
) -> Incident:
    labels = rule.alert_labels(brand)
    if status is None:
        status = IncidentStatus.FIRING if inc.resolved_at is None else IncidentStatus.RESOLVED
    recovered = end if status is IncidentStatus.RECOVERED else None
    values = {
        "schema_version": SCHEMA_VERSION,
        "id": inc.id,
        "fingerprint": fingerprint(labels),
        "brand": brand,
        "alertname": rule.alert,
        "labels": labels,
        "status": status,
        "onset": inc.onset,
        "firing_at": inc.firing_at,
        "firings": inc.firings,
        "peak_value": inc.peak_value,
        "peak_at": inc.peak_at,
        "resolved_at": inc.resolved_at,
        "recovered_at": recovered,
        "time_to_recover_s": (
            None if recovered is None else (recovered - inc.onset).total_seconds()
        ),
        "updated_at": end,
        "series": tuple(inc.series),
        "series_truncated": inc.series_truncated,
    }
    if _known_valid(inc, end):
        # Validating the series (up to MAX_INCIDENT_POINTS points) cost ~15-30 µs a record, at
        # every minute an open incident changes: built from the state's validated values instead.
        return trusted(Incident, values)
    return Incident.model_validate(values)  # pydantic converts or raises, with its message


def _known_valid(inc: IncidentState, end: datetime) -> bool:
    """Whether the incident record of ``inc`` at ``end`` holds only values its validation would
    keep as they are: UTC times, a float peak and at least one firing (the other fields come
    from validated state and rules, or are built valid here)."""
    return (
        end.tzinfo is UTC
        and inc.onset.tzinfo is UTC
        and inc.firing_at.tzinfo is UTC
        and inc.peak_at.tzinfo is UTC
        and (inc.resolved_at is None or inc.resolved_at.tzinfo is UTC)
        and type(inc.firings) is int
        and inc.firings >= 1
        and type(inc.peak_value) is float
    )
