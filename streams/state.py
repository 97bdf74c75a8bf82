"""What the rule engine remembers and what its calls return: plain data, no logic beyond indexing.

``BrandState`` is everything the engine keeps for one brand (JSON round-trips losslessly; the worker
stores it in a Faust table, the customers apart). ``RuleState`` is one brand-level rule's place in
its state machine with its baselines, detector state and the incident it follows; ``CustomerState``
one customer's recent mentions and risk. ``EngineOutput`` and ``Erased`` are what
:class:`streams.engine.Engine`'s calls produce. The field names are the changelog format: renaming
one breaks recovery of stored states.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.customer_risk import CustomerMention, scores_nothing
from streams.records import (
    Alert,
    AwareDatetime,
    CustomerHealth,
    CustomerTier,
    Example,
    Incident,
    IncidentPoint,
    encode_json,
    plain_float,
)
from streams.windows import MINUTE, Baseline, MinuteBucket, Seasonality, baseline_slots

__all__ = [
    "BrandState",
    "CustomerOrder",
    "CustomerState",
    "EngineOutput",
    "Erased",
    "IncidentState",
    "LastScore",
    "RuleState",
    "RuleStatus",
]


class RuleStatus(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class IncidentState(BaseModel):
    """The incident a rule is following for a brand (see :class:`streams.records.Incident`)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    onset: AwareDatetime
    firing_at: AwareDatetime
    firings: int = 1
    peak_value: float
    peak_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    in_band_since: AwareDatetime | None = None
    series: list[IncidentPoint] = []
    series_truncated: bool = False


class RuleState(BaseModel):
    """Where one brand-level rule stands for one brand."""

    model_config = ConfigDict(extra="forbid")

    state: RuleStatus = RuleStatus.INACTIVE
    since: AwareDatetime | None = None
    """When the rule entered its current state."""
    pending_since: AwareDatetime | None = None
    firing_since: AwareDatetime | None = None
    """``starts_at`` of the firing alert."""
    clear_since: AwareDatetime | None = None
    """First evaluation with the condition false while firing (for ``keep_firing_for``)."""
    last_resolved_at: AwareDatetime | None = None
    """For the cooldown."""
    value: float | None = None
    baseline: float | None = None
    peak: float | None = None
    peak_at: AwareDatetime | None = None
    examples: list[Example] = []
    """Examples at the peak of the current episode."""
    baselines: list[Baseline] = []
    """The rule's own baseline: one slot (flat) or 168 (``hour_of_week``), fed by the minutes
    that leave its window while it is inactive."""
    detectors: dict[str, dict[str, Any]] = {}
    """State of kinds with a detector of their own: a volume surge's per baseline slot, a share
    kind's sequential test under ``"share"``."""
    recent: list[IncidentPoint] = []
    """The last minutes before firing (for the onset of an incident's series)."""
    incident: IncidentState | None = None

    def seasonal_baselines(self, seasonality: Seasonality) -> list[Baseline]:
        """:attr:`baselines` with as many slots as ``seasonality`` needs, made fresh (and stored)
        when it has not; stored only then, as this runs for every rule at every closed minute and
        pydantic's ``__setattr__`` costs."""
        slots = baseline_slots(seasonality, self.baselines)
        if slots is not self.baselines:
            self.baselines = slots
        return slots


class CustomerState(BaseModel):
    """What one customer of one brand said recently, and how at risk that makes them."""

    model_config = ConfigDict(extra="forbid")

    mentions: list[CustomerMention] = []
    """Most recent mentions, oldest first, bounded by the engine's ``max_customer_mentions``."""
    last_mention_at: AwareDatetime
    evaluated_at: AwareDatetime | None = None
    risk_score: float = 0.0
    tier: CustomerTier = CustomerTier.HEALTHY
    reasons: list[str] = []
    firing: dict[str, AwareDatetime] = {}
    """alertname → ``starts_at`` of each customer rule firing for this customer."""
    last_resolved_at: dict[str, AwareDatetime] = {}
    pending: dict[str, AwareDatetime] = {}
    """alertname → since when the score has been at or above ``fire_at`` (for ``for``)."""
    clear_since: dict[str, AwareDatetime] = {}
    """alertname → since when a firing customer's score has been below ``resolve_below``."""

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the changelog form: msgspec on the fields' values, the same bytes
        as pydantic's ``model_dump_json`` (``tests/streams/test_codec.py`` compares the two on
        the crisis scenario) in ~55% of its time; the worker writes one for every customer a
        batch changed."""
        values = self.__dict__
        mentions = self.mentions
        if not plain_float(values["risk_score"]) or not all(
            plain_float(mention.compound) for mention in mentions
        ):
            return self.model_dump_json().encode()
        values = dict(values)
        values["mentions"] = [mention.__dict__ for mention in mentions]
        return encode_json(values)

    @property
    def watched(self) -> bool:
        """Firing, pending or not healthy: re-scored every quarter hour, not only hourly."""
        return bool(self.firing or self.pending) or self.tier is not CustomerTier.HEALTHY

    @property
    def quiet(self) -> bool:
        """Nothing against this customer: score 0, no reasons, healthy, no customer rule pending,
        firing or clearing, and only mentions that score nothing at any age. Re-scoring such a
        customer changes nothing but ``evaluated_at`` (see :mod:`streams.customers`)."""
        return (
            self.risk_score == 0.0
            and not self.reasons
            and self.tier is CustomerTier.HEALTHY
            and not (self.firing or self.pending or self.clear_since)
            and all(map(scores_nothing, self.mentions))
        )


class BrandState(BaseModel):
    """Everything the engine remembers about one brand; JSON round-trips losslessly."""

    model_config = ConfigDict(extra="forbid")

    brand: str
    buckets: list[MinuteBucket] = []
    """Minute buckets, oldest first: the open minutes and the closed ones a window still needs."""
    scopes: dict[str, list[MinuteBucket]] = {}
    """Buckets of the mentions a scoped rule sees (sources/segments), by the rule's scope key."""
    baseline: Baseline = Baseline()
    max_event_time: AwareDatetime | None = None
    watermark: AwareDatetime | None = None
    closed_until: AwareDatetime | None = None
    """Every minute starting before this instant is closed and evaluated."""
    baseline_until: AwareDatetime | None = None
    """Every minute starting before this instant has left the windows (fed to or kept from the
    baseline): the baseline never overlaps the windows it is compared with."""
    rules: dict[str, RuleState] = {}
    customers: dict[str, CustomerState] = {}
    late_dropped: int = 0

    @functools.cached_property
    def watched_customers(self) -> set[str]:
        """Ids of the customers firing, pending or not healthy: an index built on first use and
        then kept up to date by the engine (the only writer of ``customers`` once a state is in
        use), so the quarter-hourly sweep need not test every customer. A cached property: not a
        field, so never stored, compared or serialised; :meth:`reindex` drops it."""
        return {c for c, cs in self.customers.items() if cs.watched}

    @functools.cached_property
    def quiet_customers(self) -> set[str]:
        """Ids of customers known to be :attr:`CustomerState.quiet`: an index like
        :attr:`watched_customers` (never stored), so the hourly sweep need not re-score them.
        Kept by the engine as a subset of the quiet customers: one that turns quiet joins it at
        its next evaluation."""
        return {c for c, cs in self.customers.items() if cs.quiet}

    @functools.cached_property
    def customer_order(self) -> CustomerOrder:
        """Each customer's place in :attr:`customers` (its insertion order) as an increasing
        number: an index like :attr:`watched_customers` (never stored), so the quarter-hourly
        sweep puts the few customers it re-scores in the customers' order without a pass over
        all of them."""
        return CustomerOrder(self.customers)

    @functools.cached_property
    def last_scores(self) -> dict[str, LastScore]:
        """Customer → :class:`LastScore` of their last full scoring, kept by the engine in memory
        (never stored) so an hourly sweep can tell when scoring again would change nothing."""
        return {}

    @functools.cached_property
    def unchanged_until(self) -> dict[str, tuple[LastScore, datetime]]:
        """Customer → (their :class:`LastScore`, a time before which re-scoring them would change
        nothing while that last scoring stands): kept by the engine in memory (never stored) so
        the sweeps of a long silence need not test every watched customer at every quarter
        hour."""
        return {}

    def reindex(self) -> None:
        """Drop the customer indexes; call after changing ``customers`` other than by the engine."""
        self.__dict__.pop("watched_customers", None)
        self.__dict__.pop("quiet_customers", None)
        self.__dict__.pop("last_scores", None)
        self.__dict__.pop("unchanged_until", None)
        self.__dict__.pop("customer_order", None)

    def add_customer(self, customer: str, cs: CustomerState) -> None:
        """Add ``customer`` (not in :attr:`customers`) at the end of :attr:`customers`."""
        self.customers[customer] = cs
        order: CustomerOrder | None = self.__dict__.get("customer_order")
        if order is not None:
            order.append(customer)

    def track(self, customer: str, cs: CustomerState | None, *, quiet: bool = False) -> None:
        """Update the customer indexes after ``customer`` was re-scored (``cs``; ``quiet`` if it
        was found :attr:`CustomerState.quiet`) or removed (None)."""
        built = self.__dict__
        watched: set[str] | None = built.get("watched_customers")
        if watched is not None:  # not built yet: it will be, from the customers themselves
            if cs is not None and cs.watched:
                watched.add(customer)
            else:
                watched.discard(customer)
        known_quiet: set[str] | None = built.get("quiet_customers")
        if known_quiet is not None:
            if cs is not None and quiet:
                known_quiet.add(customer)
            else:
                known_quiet.discard(customer)
        if cs is None and "last_scores" in built:
            built["last_scores"].pop(customer, None)
        if cs is None and "unchanged_until" in built:
            built["unchanged_until"].pop(customer, None)
        if cs is None and "customer_order" in built:
            built["customer_order"].remove(customer)

    @property
    def last_evaluated_minute(self) -> datetime | None:
        """Start of the last closed (and evaluated) minute."""
        return None if self.closed_until is None else self.closed_until - MINUTE


class CustomerOrder:
    """Places of a brand's customers in insertion order, as numbers that only increase: a
    customer added later (or forgotten and back) gets a larger one than every customer kept."""

    __slots__ = ("_next", "places")

    def __init__(self, customers: Iterable[str]) -> None:
        self.places: dict[str, int] = {c: i for i, c in enumerate(customers)}
        self._next = len(self.places)

    def append(self, customer: str) -> None:
        """Place ``customer`` after every other."""
        self.places[customer] = self._next
        self._next += 1

    def remove(self, customer: str) -> None:
        """Forget ``customer``'s place (if any)."""
        self.places.pop(customer, None)

    def sort(self, customers: list[str]) -> None:
        """Put ``customers`` (all placed) in their places' order, in place."""
        customers.sort(key=self.places.__getitem__)


@dataclass(frozen=True, slots=True)
class LastScore:
    """A customer's last full scoring: when, the decayed points before rounding, and the very
    mention objects it was computed from (so any change to them is seen)."""

    at: datetime
    total: float
    mentions: tuple[CustomerMention, ...]


@dataclass
class EngineOutput:
    """What one ``process``/``advance`` call produced."""

    alerts: list[Alert] = field(default_factory=list)
    """Transitions to firing and to resolved, in event-time order (pending stays internal)."""
    customers: list[CustomerHealth] = field(default_factory=list)
    """Customers whose score, tier or reasons changed."""
    incidents: list[Incident] = field(default_factory=list)
    """Incidents that opened or changed (one per rule and brand per closed minute at most)."""
    late: int = 0
    """Mentions dropped because their minute was already closed."""
    forgotten: list[str] = field(default_factory=list)
    """Customers removed for having been silent longer than the horizon (one may come back later
    in the same call, with a new mention); the order carries no meaning."""


@dataclass
class Erased:
    """What :meth:`streams.engine.Engine.erase` removed from one brand's state."""

    examples: int = 0
    """Example mentions (id and text) kept as evidence in minute buckets and rule states."""
    customer_mentions: int = 0
    changed_customers: list[str] = field(default_factory=list)
    """Customers who lost some of their recent mentions."""
    customers: list[str] = field(default_factory=list)
    """Customers removed whole: the one named, and any left without mentions."""
    alerts: list[Alert] = field(default_factory=list)
    """Resolved transitions for the customer alerts that were firing for a removed customer."""
