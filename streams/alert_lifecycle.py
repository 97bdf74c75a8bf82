"""The state machine every brand rule shares: inactive → pending → firing → resolved.

:func:`step` takes one rule's :class:`streams.rule_kinds.Verdict` at a closed minute and applies
the guards every kind has — ``for`` (pending this long before firing), ``keep_firing_for`` (the
condition false this long before resolving), ``cooldown`` (no new episode this soon after a
resolve) — then follows the rule's incident (:mod:`streams.incident_tracking`). Firing and resolved
transitions become :class:`streams.records.Alert` records; pending stays internal. Pure: the time
is the minute's end, passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from streams.incident_tracking import follow_incident, open_incident
from streams.records import Alert, AlertState, Example, IncidentPoint, fingerprint
from streams.rule_kinds.base import BrandRule, Verdict, render_template
from streams.state import EngineOutput, RuleState, RuleStatus
from streams.windows import MINUTE

__all__ = ["MAX_RECENT_POINTS", "brand_alert", "run", "step"]

MAX_RECENT_POINTS = 60
"""Points kept before firing, so an incident's series starts at its onset."""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def step(
    rule: BrandRule,
    rs: RuleState,
    brand: str,
    end: datetime,
    verdict: Verdict,
    examples: Callable[[], tuple[Example, ...]],
    out: EngineOutput,
) -> None:
    """Move ``rule``'s state for ``brand`` by its verdict on the minute ending at ``end``.

    ``examples`` gives the window's most negative mentions; it is called only when an alert needs
    them (firing, or a new peak while firing). Transitions go to ``out.alerts``, incident updates to
    ``out.incidents``.
    """
    condition, value = verdict.condition, verdict.value
    # Plain field writes (no validation on assignment for RuleState, which is all pydantic's
    # __setattr__ would add): this runs for every rule at every closed minute.
    fields = vars(rs)
    fields["value"], fields["baseline"] = value, verdict.baseline
    if rs.state is RuleStatus.INACTIVE and condition:
        cooling = rs.last_resolved_at is not None and end < rs.last_resolved_at + rule.cooldown
        if not cooling:
            rs.state, rs.since, rs.pending_since = RuleStatus.PENDING, end, end
            rs.recent = []
    if rs.state is RuleStatus.INACTIVE and rs.incident is None:
        return
    # Trusted values: skip validation (this runs every minute of every pending rule).
    point = IncidentPoint.model_construct(
        minute=end - MINUTE, value=round(value, 4), baseline=_round(verdict.baseline)
    )
    if rs.state is RuleStatus.PENDING:
        assert rs.pending_since is not None
        rs.recent.append(point)
        del rs.recent[:-MAX_RECENT_POINTS]
        if not condition:
            rs.state, rs.since, rs.pending_since = RuleStatus.INACTIVE, end, None
            rs.recent = []
        elif end - rs.pending_since >= rule.for_:
            rs.state, rs.since, rs.firing_since, rs.clear_since = (
                RuleStatus.FIRING,
                end,
                end,
                None,
            )
            rs.peak, rs.peak_at, rs.examples = value, end, list(examples())
            alert = brand_alert(rule, brand, rs, AlertState.FIRING, None, verdict.facts())
            out.alerts.append(alert)
            open_incident(rule, rs, brand, alert, end, out)
            return
    elif rs.state is RuleStatus.FIRING:
        if condition:
            rs.clear_since = None
            if rs.peak is None or rule.worse(value, rs.peak):
                rs.peak, rs.peak_at, rs.examples = value, end, list(examples())
        else:
            if rs.clear_since is None:
                rs.clear_since = end
            if end - rs.clear_since >= rule.keep_firing_for:
                out.alerts.append(
                    brand_alert(rule, brand, rs, AlertState.RESOLVED, end, verdict.facts())
                )
                rs.state, rs.since, rs.last_resolved_at = RuleStatus.INACTIVE, end, end
                rs.pending_since = rs.firing_since = rs.clear_since = None
                if rs.incident is not None:
                    rs.incident.resolved_at = end
    if rs.incident is not None:
        follow_incident(rule, rs, brand, end, point, verdict, out)


def brand_alert(
    rule: BrandRule,
    brand: str,
    rs: RuleState,
    kind: AlertState,
    ends_at: datetime | None,
    facts: dict[str, str] | None = None,
) -> Alert:
    """The alert record of ``rule``'s current episode for ``brand``; ``facts`` are the kind's
    evidence at this minute (extra annotation template values)."""
    assert rs.firing_since is not None and rs.value is not None
    labels = rule.alert_labels(brand)
    values = {
        **(facts or {}),
        "brand": brand,
        "value": rule.format_value(rs.value),
        "baseline": rule.format_value(rs.baseline),
    }
    return Alert(
        labels=labels,
        annotations={k: render_template(v, values) for k, v in rule.annotations.items()},
        state=kind,
        value=round(rs.value, 4),
        baseline=_round(rs.baseline),
        starts_at=rs.firing_since,
        ends_at=ends_at,
        fingerprint=fingerprint(labels),
        examples=tuple(rs.examples),
    )


def run(
    rule: BrandRule, verdicts: Iterable[tuple[datetime, Verdict]], *, brand: str = "series"
) -> Iterator[EngineOutput]:
    """Run the state machine over verdicts already made, one per evaluation time, from a fresh
    state (``listenwell detect``: a detector's verdicts on a series, row by row). Yields what each
    step produced."""
    rs = RuleState()
    for at, verdict in verdicts:
        out = EngineOutput()
        step(rule, rs, brand, at, verdict, tuple, out)
        yield out
