"""The incident room's read model: a pure fold of listenwell's topics into what the pages show.

:class:`RoomModel` takes records one at a time (:meth:`RoomModel.apply`, in any interleaving of
the topics) and answers the pages' questions. It reads no clock and does no I/O: its "now" is
the latest event time it has seen (the latest ``created_at`` minute of a scored mention), so the
same records give the same pages whether they are replayed at start-up or arrive live. Every
collection is bounded by :class:`Limits`.

What it keeps, and from which topic:

* ``incidents`` (compacted): the latest version of each incident, tombstones remove it;
* ``alerts``: the latest transition of each alert fingerprint (open = firing) and a few recent
  distinct transitions per fingerprint (the incident page's "alerts sent");
* ``customers.health`` (compacted): customers on watch or at risk, and those that were and are
  healthy again ("recovered"); healthy customers never flagged are not held; tombstones remove;
* ``mentions.scored``: per brand, event-time minute buckets for the last 24 hours (mentions,
  negative, empathy-deficit), a ring of the most recent mentions, and per hour a uniform sample of
  the negative ones (the ``samples_per_hour`` with the smallest hash of their id: the same sample
  whatever the arrival order, duplicates included); samples of hours that age out are kept with
  the incidents they overlap;
* ``erasures`` (compacted): the erased authors and customers; their mentions and health leave the
  model and are dropped when they arrive later (a rebuild reads the erasure before or after them).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from streams.pii import redact
from streams.records import (
    ERASURE_KEY,
    Alert,
    AlertState,
    CustomerHealth,
    CustomerTier,
    Incident,
    IncidentStatus,
    ScoredMention,
    SentimentLabel,
)

MINUTE_S = 60
HOUR_MINUTES = 60
FUTURE_TOLERANCE = timedelta(minutes=5)
"""A mention created this long after the worker scored it claims a time that has not come yet: it
is not counted (it would move the room's "now" and age out everything else)."""


class TopicKind(StrEnum):
    """The topics the room reads."""

    INCIDENTS = "incidents"
    CUSTOMERS = "customers.health"
    ALERTS = "alerts"
    SCORED = "mentions.scored"
    ERASURES = "erasures"


class Outcome(StrEnum):
    """What :meth:`RoomModel.apply` did with a record (a bounded metric label)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    """A mention older than the held window, or claiming a future time."""
    ERASED = "erased"
    """A mention or health record of an erased person."""
    OVER_CAPACITY = "over_capacity"
    """A brand beyond ``Limits.max_brands``."""
    INVALID = "invalid"
    FOR_WORKER = "for_worker"
    """An erasure command on ``mentions.scored``, for the brand stage (the room reads the
    ``erasures`` topic instead)."""


@dataclass(frozen=True)
class Limits:
    """The bounds of the model's memory."""

    window_minutes: int = 24 * HOUR_MINUTES
    max_brands: int = 100
    ring_per_brand: int = 50
    samples_per_hour: int = 24
    samples_per_incident: int = 60
    dedupe_ids_per_brand: int = 4096
    max_incidents: int = 500
    max_alert_fingerprints: int = 5000
    transitions_per_alert: int = 20
    max_customers: int = 10_000
    max_recovered: int = 500
    max_erased: int = 100_000
    max_text_chars: int = 1000


@dataclass(frozen=True)
class MentionView:
    """A scored mention as the pages show it (text redacted and cut to ``max_text_chars``)."""

    id: str
    brand: str
    source: str
    kind: str
    url: str | None
    text: str
    label: str
    compound: float
    deficit: tuple[str, ...]
    churn: tuple[str, ...]
    created_at: datetime
    author: str
    customer_id: str | None


@dataclass
class _Brand:
    minutes: dict[int, list[int]] = field(default_factory=dict)
    """epoch minute → [mentions, negative, empathy deficit]"""
    ring: deque[MentionView] = field(default_factory=deque)
    negatives: dict[int, list[tuple[int, MentionView]]] = field(default_factory=dict)
    """epoch hour → the negative mentions with the smallest id hashes, sorted by hash"""
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass
class _Customer:
    health: CustomerHealth
    flagged: bool


@dataclass(frozen=True)
class BrandRow:
    """One row of the Brands page. Shares are ``None`` without mentions to divide by."""

    brand: str
    volume_now: int
    """Mentions in the last hour (event time)."""
    volume_usual: float | None
    """Mean mentions per hour over the rest of the held 24 hours."""
    negative_now: float | None
    negative_baseline: float | None
    deficit_now: float | None
    deficit_baseline: float | None
    share_of_voice: float | None
    """This brand's share of the last hour's mentions of all tracked brands."""
    open_alerts: int
    open_incident: str | None
    volume_series: tuple[int, ...]
    """Mentions per ``SPARK_BUCKET_MINUTES`` over the 24 hours ending now, oldest first."""
    negative_series: tuple[int, ...]


SPARK_BUCKET_MINUTES = 15


@dataclass(frozen=True)
class SentAlert:
    """One alert transition of an incident and the receivers its labels route to."""

    alert: Alert
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class IncidentView:
    """Everything the Incident page shows."""

    incident: Incident
    alerts: tuple[Alert, ...]
    representatives: tuple[MentionView, ...]
    negatives_sampled: int
    now: datetime | None


@dataclass(frozen=True)
class CustomerView:
    """A customer of the at-risk queue (or a recovered one) with their recent mentions."""

    health: CustomerHealth
    mentions: tuple[MentionView | None, ...]
    """One per ``health.last_mentions``: the scored mention when the room still holds it."""


def id_hash(mention_id: str) -> int:
    """A stable 64-bit hash of a mention id (the sample order)."""
    return int.from_bytes(hashlib.blake2b(mention_id.encode(), digest_size=8).digest(), "big")


def _epoch_minute(at: datetime) -> int:
    return int(at.timestamp()) // MINUTE_S


def _minute_time(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * MINUTE_S, UTC)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class RoomModel:
    """The read model; see the module docstring. Not thread-safe: the shell holds a lock."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.version = 0
        """Incremented on every change (the pages' live updates watch it)."""
        self.incidents: dict[str, Incident] = {}
        self._incident_samples: dict[str, list[tuple[int, MentionView]]] = {}
        self._alerts: dict[str, Alert] = {}
        self._transitions: dict[str, OrderedDict[str, Alert]] = {}
        self._customers: dict[tuple[str, str], _Customer] = {}
        self._brands: dict[str, _Brand] = {}
        self._now: int | None = None
        self._first_minute: int | None = None
        self._erased: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    # --- folding ----------------------------------------------------------------------------

    def apply(self, kind: TopicKind, key: bytes | None, value: bytes | None) -> Outcome:
        """Fold one record of topic ``kind`` (``value`` ``None``: a tombstone for ``key``)."""
        try:
            if kind is TopicKind.SCORED:
                if key == ERASURE_KEY:
                    return Outcome.FOR_WORKER
                if value is None:
                    return Outcome.INVALID
                return self.add_mention(ScoredMention.from_json(value))
            if kind is TopicKind.INCIDENTS:
                if value is None:
                    return self.drop_incident(key.decode() if key else "")
                return self.put_incident(Incident.from_json(value))
            if kind is TopicKind.CUSTOMERS:
                if value is None:
                    brand, _, customer = (key or b"").decode().partition("/")
                    return self.drop_customer(brand, customer)
                return self.put_customer(CustomerHealth.from_json(value))
            if kind is TopicKind.ALERTS:
                if value is None:
                    return Outcome.INVALID
                return self.add_alert(Alert.from_json(value))
            if kind is TopicKind.ERASURES:
                if value is None:
                    return Outcome.APPLIED  # compaction of an old request: what it erased stays so
                return self.erase(json.loads(value))
        except (ValidationError, ValueError, UnicodeDecodeError, TypeError, AttributeError):
            return Outcome.INVALID
        return Outcome.INVALID

    def _changed(self) -> Outcome:
        self.version += 1
        return Outcome.APPLIED

    def put_incident(self, incident: Incident) -> Outcome:
        """Keep the latest version of an incident (evicting the oldest closed ones when full)."""
        self.incidents[incident.id] = incident
        if len(self.incidents) > self.limits.max_incidents:
            closed = (IncidentStatus.RECOVERED, IncidentStatus.UNRECOVERED)
            victim = min(
                self.incidents.values(), key=lambda i: (i.status not in closed, i.onset, i.id)
            )
            self.drop_incident(victim.id)
        return self._changed()

    def drop_incident(self, incident_id: str) -> Outcome:
        self.incidents.pop(incident_id, None)
        self._incident_samples.pop(incident_id, None)
        return self._changed()

    def add_alert(self, alert: Alert) -> Outcome:
        """Note an alert transition (the latest per fingerprint says whether it is open)."""
        customer = alert.labels.get("customer")
        brand = alert.labels.get("brand", "")
        if customer is not None and self._is_erased("customer", customer, brand):
            return Outcome.ERASED
        transitions = self._transitions.setdefault(alert.fingerprint, OrderedDict())
        if alert.transition_id in transitions and self._alerts.get(alert.fingerprint) == alert:
            return Outcome.DUPLICATE
        transitions[alert.transition_id] = alert
        transitions.move_to_end(alert.transition_id)
        while len(transitions) > self.limits.transitions_per_alert:
            transitions.popitem(last=False)
        self._alerts.pop(alert.fingerprint, None)
        self._alerts[alert.fingerprint] = alert  # re-inserted: dict order is recency
        while len(self._alerts) > self.limits.max_alert_fingerprints:
            victim = next(
                (fp for fp, a in self._alerts.items() if a.state is not AlertState.FIRING),
                next(iter(self._alerts)),
            )
            del self._alerts[victim]
            self._transitions.pop(victim, None)
        return self._changed()

    def put_customer(self, health: CustomerHealth) -> Outcome:
        """Hold a customer on watch or at risk, or one that was and is healthy again."""
        if self._is_erased("customer", health.customer_id, health.brand):
            return Outcome.ERASED
        key = (health.brand, health.customer_id)
        held = self._customers.get(key)
        flagged = health.tier is not CustomerTier.HEALTHY or (held is not None and held.flagged)
        if not flagged:
            return Outcome.APPLIED  # healthy and never flagged here: nothing to show
        safe = health.model_copy(
            update={
                "last_mentions": tuple(
                    e.model_copy(update={"text": self._clean(e.text)}) for e in health.last_mentions
                )
            }
        )
        self._customers.pop(key, None)
        self._customers[key] = _Customer(safe, flagged=True)
        self._bound_customers()
        return self._changed()

    def _bound_customers(self) -> None:
        recovered = [k for k, c in self._customers.items() if c.health.tier is CustomerTier.HEALTHY]
        if len(recovered) > self.limits.max_recovered:
            recovered.sort(key=lambda k: self._customers[k].health.updated_at)
            for k in recovered[: len(recovered) - self.limits.max_recovered]:
                del self._customers[k]
        while len(self._customers) > self.limits.max_customers:
            victim = min(
                self._customers,
                key=lambda k: (
                    self._customers[k].health.tier is CustomerTier.AT_RISK,
                    self._customers[k].health.risk_score,
                    self._customers[k].health.updated_at,
                ),
            )
            del self._customers[victim]

    def drop_customer(self, brand: str, customer: str) -> Outcome:
        self._customers.pop((brand, customer), None)
        return self._changed()

    def add_mention(self, scored: ScoredMention) -> Outcome:
        """Count a scored mention in its brand's minute buckets, ring and negative sample."""
        m = scored.mention
        if self._is_erased("author", m.author, m.brand) or (
            m.customer_id is not None and self._is_erased("customer", m.customer_id, m.brand)
        ):
            return Outcome.ERASED
        if m.created_at > scored.scored_at + FUTURE_TOLERANCE:
            return Outcome.STALE
        minute = _epoch_minute(m.created_at)
        if self._now is not None and minute <= self._now - self.limits.window_minutes:
            return Outcome.STALE
        brand = self._brands.get(m.brand)
        if brand is None:
            if len(self._brands) >= self.limits.max_brands:
                return Outcome.OVER_CAPACITY
            brand = self._brands[m.brand] = _Brand()
        if m.id in brand.recent_ids:
            return Outcome.DUPLICATE
        brand.recent_ids[m.id] = None
        if len(brand.recent_ids) > self.limits.dedupe_ids_per_brand:
            brand.recent_ids.popitem(last=False)

        negative = scored.sentiment.label is SentimentLabel.NEGATIVE
        counts = brand.minutes.setdefault(minute, [0, 0, 0])
        counts[0] += 1
        counts[1] += negative
        counts[2] += bool(scored.empathy.deficit)
        view = self._view(scored)
        brand.ring.append(view)
        while len(brand.ring) > self.limits.ring_per_brand:
            brand.ring.popleft()
        if negative:
            _offer(
                brand.negatives.setdefault(minute // HOUR_MINUTES, []),
                (id_hash(m.id), view),
                self.limits.samples_per_hour,
            )
        if self._first_minute is None or minute < self._first_minute:
            self._first_minute = minute
        if self._now is None or minute > self._now:
            self._advance(minute)
        return self._changed()

    def _view(self, scored: ScoredMention) -> MentionView:
        m = scored.mention
        url = m.url if m.url and m.url.startswith(("https://", "http://")) else None
        return MentionView(
            id=m.id,
            brand=m.brand,
            source=m.source,
            kind=str(m.kind),
            url=url,
            text=self._clean(m.text),
            label=str(scored.sentiment.label),
            compound=scored.sentiment.compound,
            deficit=scored.empathy.deficit,
            churn=scored.churn.phrases,
            created_at=m.created_at,
            author=m.author,
            customer_id=m.customer_id,
        )

    def _clean(self, text: str) -> str:
        """Redacted again (the worker already did; a second pass costs little and keeps PII out
        of the page even for a record that skipped it) and cut to ``max_text_chars``."""
        cut = text[: self.limits.max_text_chars]
        redacted, _ = redact(cut)
        return redacted + ("…" if len(text) > self.limits.max_text_chars else "")

    def _advance(self, minute: int) -> None:
        """Move "now" to ``minute`` and drop what falls out of the window."""
        self._now = minute
        oldest = minute - self.limits.window_minutes + 1
        oldest_hour = oldest // HOUR_MINUTES
        for name, brand in self._brands.items():
            for old in [k for k in brand.minutes if k < oldest]:
                del brand.minutes[old]
            for hour in [h for h in brand.negatives if h < oldest_hour]:
                self._keep_with_incidents(name, hour, brand.negatives.pop(hour))

    def _keep_with_incidents(
        self, brand: str, hour: int, sample: list[tuple[int, MentionView]]
    ) -> None:
        start, end = _minute_time(hour * HOUR_MINUTES), _minute_time((hour + 1) * HOUR_MINUTES)
        for incident in self.incidents.values():
            if incident.brand != brand:
                continue
            until = incident.recovered_at or incident.resolved_at
            if incident.onset < end and (until is None or until >= start):
                kept = self._incident_samples.setdefault(incident.id, [])
                for item in sample:
                    if incident.onset <= item[1].created_at and (
                        until is None or item[1].created_at <= until
                    ):
                        _offer(kept, item, self.limits.samples_per_incident)

    def erase(self, record: dict[str, Any]) -> Outcome:
        """Apply an ``erasures`` record: forget the author's and the customer's mentions and the
        customer's health (all brands, or the record's brand)."""
        brand = record.get("brand") or ""
        names = [("author", record.get("author")), ("customer", record.get("customer_id"))]
        for kind, ident in names:
            if isinstance(ident, str) and ident:
                self._erased[(kind, ident, brand)] = None
        while len(self._erased) > self.limits.max_erased:
            self._erased.popitem(last=False)

        def gone(v: MentionView) -> bool:
            return self._is_erased("author", v.author, v.brand) or (
                v.customer_id is not None and self._is_erased("customer", v.customer_id, v.brand)
            )

        for b in self._brands.values():
            b.ring = deque(v for v in b.ring if not gone(v))
            for hour, sample in b.negatives.items():
                b.negatives[hour] = [item for item in sample if not gone(item[1])]
        for incident_id, sample in self._incident_samples.items():
            self._incident_samples[incident_id] = [item for item in sample if not gone(item[1])]
        for key in [k for k in self._customers if self._is_erased("customer", k[1], k[0])]:
            del self._customers[key]
        for fp in [
            fp
            for fp, a in self._alerts.items()
            if "customer" in a.labels
            and self._is_erased("customer", a.labels["customer"], a.labels.get("brand", ""))
        ]:
            del self._alerts[fp]
            self._transitions.pop(fp, None)
        return self._changed()

    def _is_erased(self, kind: str, ident: str, brand: str) -> bool:
        return (kind, ident, "") in self._erased or (kind, ident, brand) in self._erased

    # --- questions --------------------------------------------------------------------------

    @property
    def now(self) -> datetime | None:
        """The end of the latest event-time minute seen."""
        return None if self._now is None else _minute_time(self._now + 1)

    def held(self) -> dict[str, int]:
        """Items held, by kind (the ``listenwell_room_items`` gauge)."""
        return {
            "brand": len(self._brands),
            "incident": len(self.incidents),
            "alert": len(self._alerts),
            "customer": len(self._customers),
            "mention": sum(len(b.ring) for b in self._brands.values())
            + sum(len(s) for b in self._brands.values() for s in b.negatives.values())
            + sum(len(s) for s in self._incident_samples.values()),
            "minute": sum(len(b.minutes) for b in self._brands.values()),
            "erasure": len(self._erased),
        }

    def open_alerts(self, brand: str | None = None) -> list[Alert]:
        """Alerts whose latest transition is firing (of one brand, or all)."""
        return [
            a
            for a in self._alerts.values()
            if a.state is AlertState.FIRING and (brand is None or a.labels.get("brand") == brand)
        ]

    def brand_rows(self) -> list[BrandRow]:
        """One row per brand with mentions in the window, by name."""
        if self._now is None:
            return []
        now = self._now
        hour_start = now - HOUR_MINUTES + 1
        window_start = max(now - self.limits.window_minutes + 1, self._first_minute or now)
        prior_minutes = hour_start - window_start
        sums: dict[str, tuple[list[int], list[int]]] = {}
        for name, brand in self._brands.items():
            last, prior = [0, 0, 0], [0, 0, 0]
            for minute, counts in brand.minutes.items():
                target = last if minute >= hour_start else prior
                for i in range(3):
                    target[i] += counts[i]
            sums[name] = (last, prior)
        total_last = sum(last[0] for last, _ in sums.values())
        rows = []
        buckets = self.limits.window_minutes // SPARK_BUCKET_MINUTES
        first_bucket_minute = now - buckets * SPARK_BUCKET_MINUTES + 1
        for name in sorted(self._brands):
            brand = self._brands[name]
            last, prior = sums[name]
            volume, negative = [0] * buckets, [0] * buckets
            for minute, counts in brand.minutes.items():
                index = (minute - first_bucket_minute) // SPARK_BUCKET_MINUTES
                if 0 <= index < buckets:
                    volume[index] += counts[0]
                    negative[index] += counts[1]
            incident = self._open_incident(name)
            rows.append(
                BrandRow(
                    brand=name,
                    volume_now=last[0],
                    volume_usual=prior[0] / (prior_minutes / HOUR_MINUTES)
                    if prior_minutes >= HOUR_MINUTES
                    else None,
                    negative_now=_share(last[1], last[0]),
                    negative_baseline=_share(prior[1], prior[0]),
                    deficit_now=_share(last[2], last[0]),
                    deficit_baseline=_share(prior[2], prior[0]),
                    share_of_voice=_share(last[0], total_last),
                    open_alerts=len(self.open_alerts(name)),
                    open_incident=incident.id if incident is not None else None,
                    volume_series=tuple(volume),
                    negative_series=tuple(negative),
                )
            )
        return rows

    def _open_incident(self, brand: str) -> Incident | None:
        open_ = [
            i
            for i in self.incidents.values()
            if i.brand == brand and i.status in (IncidentStatus.FIRING, IncidentStatus.RESOLVED)
        ]
        return max(open_, key=lambda i: (i.onset, i.id), default=None)

    def recent_mentions(self, brand: str) -> list[MentionView]:
        """The brand's most recent mentions, newest first."""
        held = self._brands.get(brand)
        if held is None:
            return []
        return sorted(held.ring, key=lambda v: (v.created_at, v.id), reverse=True)

    def incident_list(self) -> list[Incident]:
        """Every held incident, newest onset first."""
        return sorted(self.incidents.values(), key=lambda i: (i.onset, i.id), reverse=True)

    def incident_for_alert(self, fingerprint: str, starts_at: datetime) -> str | None:
        """The incident an alert transition belongs to: same fingerprint, the latest onset not
        after the alert's start."""
        candidates = [
            i
            for i in self.incidents.values()
            if i.fingerprint == fingerprint and i.onset <= starts_at
        ]
        best = max(candidates, key=lambda i: (i.onset, i.id), default=None)
        return best.id if best is not None else None

    def incident_view(self, incident_id: str, *, representatives: int = 5) -> IncidentView | None:
        """The incident, its alert transitions, and its most representative negative mentions."""
        incident = self.incidents.get(incident_id)
        if incident is None:
            return None
        until = incident.recovered_at or incident.resolved_at
        transitions = self._transitions.get(incident.fingerprint, OrderedDict()).values()
        alerts = tuple(
            sorted(
                (
                    a
                    for a in transitions
                    if a.starts_at >= incident.onset and (until is None or a.starts_at <= until)
                ),
                key=lambda a: (a.ends_at or a.starts_at, a.state != AlertState.FIRING),
            )
        )
        pool: dict[str, tuple[int, MentionView]] = {
            item[1].id: item for item in self._incident_samples.get(incident.id, ())
        }
        brand = self._brands.get(incident.brand)
        if brand is not None:
            first_hour = _epoch_minute(incident.onset) // HOUR_MINUTES
            last_hour = None if until is None else _epoch_minute(until) // HOUR_MINUTES
            for hour, sample in brand.negatives.items():
                if hour >= first_hour and (last_hour is None or hour <= last_hour):
                    for item in sample:
                        at = item[1].created_at
                        if at >= incident.onset and (until is None or at <= until):
                            pool[item[1].id] = item
        ordered = [view for _, view in sorted(pool.values(), key=lambda item: item[0])]
        return IncidentView(
            incident=incident,
            alerts=alerts,
            representatives=tuple(representative(ordered, representatives)),
            negatives_sampled=len(ordered),
            now=self.now,
        )

    def customer_queue(self) -> tuple[list[CustomerView], list[CustomerView]]:
        """Customers at risk or on watch, by risk (at risk first); and the recovered ones,
        most recently recovered first."""
        flagged, recovered = [], []
        for customer in self._customers.values():
            view = CustomerView(
                customer.health,
                tuple(
                    self._find(customer.health.brand, e.id) for e in customer.health.last_mentions
                ),
            )
            if customer.health.tier is CustomerTier.HEALTHY:
                recovered.append(view)
            else:
                flagged.append(view)
        flagged.sort(
            key=lambda v: (
                v.health.tier is not CustomerTier.AT_RISK,
                -v.health.risk_score,
                v.health.brand,
                v.health.customer_id,
            )
        )
        recovered.sort(key=lambda v: (v.health.updated_at, v.health.customer_id), reverse=True)
        return flagged, recovered

    def _find(self, brand: str, mention_id: str) -> MentionView | None:
        held = self._brands.get(brand)
        if held is None:
            return None
        return next((v for v in held.ring if v.id == mention_id), None)


def _offer(sample: list[tuple[int, MentionView]], item: tuple[int, MentionView], k: int) -> None:
    """Keep in ``sample`` (sorted by hash) the ``k`` items with the smallest hashes."""
    if any(existing[1].id == item[1].id for existing in sample):
        return
    if len(sample) >= k and item[0] >= sample[-1][0]:
        return
    sample.append(item)
    sample.sort(key=lambda x: x[0])
    del sample[k:]


_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "your",
        "are",
        "was",
        "were",
        "with",
        "this",
        "that",
        "have",
        "has",
        "had",
        "not",
        "but",
        "they",
        "them",
        "their",
        "our",
        "out",
        "what",
        "when",
        "why",
        "how",
        "who",
        "from",
        "just",
        "get",
        "got",
        "can",
        "all",
        "any",
        "too",
        "very",
        "again",
        "still",
        "over",
        "into",
        "about",
        "after",
        "before",
        "been",
        "being",
        "its",
        "it's",
        "i'm",
        "i've",
        "don't",
    ]
)


def _words(text: str) -> frozenset[str]:
    return frozenset(
        w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP
    )


def representative(samples: Sequence[MentionView], k: int = 5) -> list[MentionView]:
    """The ``k`` mentions that say what most of ``samples`` say: ranked by how many other samples
    share each of their words (normalised by the square root of their word count), skipping one
    whose words mostly repeat an already chosen one (Jaccard ≥ 0.6). Ties keep the input order."""
    words = [_words(s.text) for s in samples]
    frequency: Counter[str] = Counter(w for ws in words for w in ws)

    def typical(index: int) -> float:
        ws = words[index]
        return sum(frequency[w] - 1 for w in ws) / math.sqrt(len(ws)) if ws else 0.0

    chosen: list[int] = []
    for index in sorted(range(len(samples)), key=lambda i: (-typical(i), i)):
        if len(chosen) >= k:
            break
        if any(_jaccard(words[index], words[c]) >= 0.6 for c in chosen):
            continue
        chosen.append(index)
    return [samples[i] for i in chosen]


def _jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0
