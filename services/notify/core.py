"""The pure notifier core: routing, grouping, timers, silences and daily digests.

No I/O and no clock of its own: ``Dispatcher.ingest(alert, now, ref)`` adds an alert transition,
``Dispatcher.due(now)`` returns the ``Notification`` batches whose time has come, and
``Dispatcher.done(notification)`` releases the records behind a batch once it is delivered or
parked. Timers follow Alertmanager: a new group waits ``group_wait`` before its first message,
later changes are batched every ``group_interval``, an unchanged firing group is re-sent after
``repeat_interval``, resolved alerts are sent if the receiver has ``send_resolved``, and silenced
alerts are left out. Alerts with a digest severity (``info`` by default) or on a ``digest: daily``
route are collected and sent once per UTC day instead.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.notify.config import Matcher, Route, RouteTree
from streams.records import Alert, AlertState

MAX_HISTORIES = 10_000
"""Alerts whose recent values are kept for sparklines and charts (the least recent are dropped)."""

# --- silences -----------------------------------------------------------------------------------


class Silence(BaseModel):
    """Mutes every alert whose labels match all matchers between ``starts_at`` and ``ends_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    matchers: tuple[str, ...] = Field(min_length=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str

    def parsed(self) -> tuple[Matcher, ...]:
        return tuple(Matcher.parse(m) for m in self.matchers)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: datetime) -> bool:
        """Whether this silence is active at ``now`` and matches the labels."""
        return self.active(now) and all(m.matches(labels) for m in self.parsed())


def silenced(silences: Iterable[Silence], labels: dict[str, str], now: datetime) -> bool:
    """Whether any of the silences mutes these labels at ``now``."""
    return any(s.mutes(labels, now) for s in silences)


# --- notifications ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One message to one receiver: a group's alerts (or a day's digest)."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    at: datetime
    kind: str = "group"  # "group", "digest" or "transition"
    repeat_interval: timedelta = timedelta(hours=4)
    history: dict[str, tuple[tuple[datetime, float], ...]] = field(default_factory=dict)
    refs: frozenset[int] = frozenset()

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return self.firing + self.resolved

    @property
    def content_hash(self) -> str:
        """Identity of what the message says: which transitions of which alerts."""
        ids = sorted(a.transition_id for a in self.alerts)
        return hashlib.sha256("\n".join([self.kind, *ids]).encode()).hexdigest()[:16]

    @property
    def log_key(self) -> str:
        """Key of the notification log: receiver and group (the digest's day for digests)."""
        return f"{self.receiver}/{self.group_key}"

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    @classmethod
    def transition(cls, receiver: str, alert: Alert, at: datetime) -> Notification:
        """One alert transition on its own, for a receiver that gets every transition as it
        arrives (the console): sent at most once, ever (its log key is the transition's id)."""
        firing = alert.state == AlertState.FIRING
        return cls(
            receiver=receiver,
            group_key=alert.transition_id,
            group_labels=dict(alert.labels),
            firing=(alert,) if firing else (),
            resolved=() if firing else (alert,),
            at=at,
            kind="transition",
        )


# --- groups -------------------------------------------------------------------------------------


@dataclass
class _Group:
    route: Route
    key: str
    labels: dict[str, str]
    send_resolved: bool
    alerts: dict[str, Alert] = field(default_factory=dict)
    next_flush: datetime | None = None
    flushed_once: bool = False
    last_hash: str | None = None
    last_sent: datetime | None = None
    refs: set[int] = field(default_factory=set)
    dirty: bool = False


@dataclass
class _Digest:
    receiver: str
    due: datetime
    alerts: dict[str, Alert] = field(default_factory=dict)
    refs: set[int] = field(default_factory=set)


def group_key(route: Route, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The group an alert joins on a route: the route id and the values of its ``group_by``."""
    if route.group_by == ("...",):
        group_labels = dict(sorted(labels.items()))
    else:
        group_labels = {k: labels.get(k, "") for k in route.group_by}
    inner = ",".join(f"{k}={v}" for k, v in group_labels.items())
    return f"{route.id}:{{{inner}}}", group_labels


class Dispatcher:
    """Routes alert transitions into groups and decides, by the clock it is given, what to send."""

    def __init__(self, tree: RouteTree, send_resolved: dict[str, bool] | None = None) -> None:
        self.tree = tree
        self._send_resolved = send_resolved or {
            name: r.config.send_resolved for name, r in tree.receivers.items()
        }
        self._groups: dict[str, _Group] = {}
        self._digests: dict[str, _Digest] = {}
        self._pending: dict[int, int] = {}  # ref -> number of groups still holding it
        self._history: dict[str, list[tuple[datetime, float]]] = {}
        self.silences: list[Silence] = []

    # -- input ---------------------------------------------------------------------------------

    def ingest(self, alert: Alert, now: datetime, ref: int | None = None) -> bool:
        """Add one transition; returns whether it is silenced at ``now``. Pending ones are ignored.

        ``ref`` (e.g. the record's offset) stays pending until every notification carrying the
        alert is released by ``done``; ``low_watermark`` tells the caller what it may commit.
        """
        if alert.state == AlertState.PENDING:
            return False
        points = self._history.pop(alert.fingerprint, [])
        points.append((alert.ends_at or alert.starts_at, alert.value))
        del points[:-60]
        self._history[alert.fingerprint] = points  # most recent last
        if len(self._history) > MAX_HISTORIES:
            del self._history[next(iter(self._history))]
        muted = silenced(self.silences, alert.labels, now)
        for route in self.tree.match(alert.labels):
            if self._is_digest(route, alert):
                if alert.state == AlertState.FIRING:
                    self._add_digest(route.receiver, alert, now, ref)
                continue
            self._add(route, alert, now, ref)
        return muted

    def _is_digest(self, route: Route, alert: Alert) -> bool:
        severity = alert.labels.get("severity")
        return route.digest == "daily" or severity in self.tree.digest_severities

    def _hold(self, ref: int | None, holder: set[int]) -> None:
        if ref is not None and ref not in holder:
            holder.add(ref)
            self._pending[ref] = self._pending.get(ref, 0) + 1

    def _add(self, route: Route, alert: Alert, now: datetime, ref: int | None) -> None:
        key, labels = group_key(route, alert.labels)
        group = self._groups.get(key)
        if group is None:
            group = _Group(route, key, labels, self._send_resolved.get(route.receiver, True))
            group.next_flush = now + route.group_wait
            self._groups[key] = group
        previous = group.alerts.get(alert.fingerprint)
        if previous is not None and previous.transition_id == alert.transition_id:
            self._hold(ref, group.refs)  # a re-sent record: released with the group's next flush
            return
        if previous is not None and previous.starts_at > alert.starts_at:
            self._hold(ref, group.refs)  # an older episode arriving late
            return
        group.alerts[alert.fingerprint] = alert
        group.dirty = True
        self._hold(ref, group.refs)

    def _add_digest(self, receiver: str, alert: Alert, now: datetime, ref: int | None) -> None:
        digest = self._digests.get(receiver)
        if digest is None:
            midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
            digest = _Digest(receiver, midnight + timedelta(days=1))
            self._digests[receiver] = digest
        digest.alerts[alert.transition_id] = alert
        self._hold(ref, digest.refs)

    # -- output --------------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When ``due`` will next have something to do (for the caller's sleep)."""
        times = [g.next_flush for g in self._groups.values() if g.next_flush is not None]
        times += [d.due for d in self._digests.values()]
        return min(times) if times else None

    def due(self, now: datetime) -> list[Notification]:
        """Notifications whose time has come; call ``done`` for each once delivered or parked."""
        out: list[Notification] = []
        for key in list(self._groups):
            group = self._groups[key]
            if group.next_flush is None or now < group.next_flush:
                continue
            out.extend(self._flush(group, now))
        for receiver in list(self._digests):
            digest = self._digests[receiver]
            if now >= digest.due:
                del self._digests[receiver]
                alerts = tuple(
                    a for a in digest.alerts.values() if not silenced(self.silences, a.labels, now)
                )
                day = (digest.due - timedelta(days=1)).date().isoformat()
                out.append(
                    Notification(
                        receiver=receiver,
                        group_key=f"digest:{day}",
                        group_labels={"digest": day},
                        firing=alerts,
                        resolved=(),
                        at=now,
                        kind="digest",
                        history=self._histories(alerts),
                        refs=frozenset(digest.refs),
                    )
                )
        return out

    def _histories(self, alerts: Sequence[Alert]) -> dict[str, tuple[tuple[datetime, float], ...]]:
        return {a.fingerprint: tuple(self._history.get(a.fingerprint, ())) for a in alerts}

    def _flush(self, group: _Group, now: datetime) -> list[Notification]:
        route = group.route
        visible = [a for a in group.alerts.values() if not silenced(self.silences, a.labels, now)]
        firing = tuple(a for a in visible if a.state == AlertState.FIRING)
        resolved = tuple(a for a in visible if a.state == AlertState.RESOLVED)
        refs = frozenset(group.refs)
        group.refs = set()
        # Resolved alerts leave the group once this flush has reported them (or not).
        for a in [a for a in group.alerts.values() if a.state == AlertState.RESOLVED]:
            del group.alerts[a.fingerprint]
        notification = Notification(
            receiver=route.receiver,
            group_key=group.key,
            group_labels=group.labels,
            firing=firing,
            resolved=resolved if group.send_resolved else (),
            at=now,
            repeat_interval=route.repeat_interval,
            history=self._histories(firing + resolved),
            refs=refs,
        )
        send = bool(notification.firing or notification.resolved)
        if send and not notification.firing and group.last_hash is None:
            send = False  # nothing was ever announced: a resolve alone says nothing
        if send and notification.content_hash == group.last_hash:
            due_repeat = group.last_sent is None or now >= group.last_sent + route.repeat_interval
            send = bool(firing) and due_repeat
        group.dirty = False
        group.flushed_once = True
        if not group.alerts:
            del self._groups[group.key]
        else:
            group.next_flush = now + route.group_interval
        if send:
            group.last_hash = notification.content_hash
            group.last_sent = now
            return [notification]
        self._release(refs)
        return []

    def done(self, notification: Notification) -> None:
        """The notification was delivered (or parked): its records no longer hold the commit."""
        self._release(notification.refs)

    def _release(self, refs: Iterable[int]) -> None:
        for ref in refs:
            left = self._pending.get(ref, 0) - 1
            if left <= 0:
                self._pending.pop(ref, None)
            else:
                self._pending[ref] = left

    def low_watermark(self) -> int | None:
        """The smallest ref still held by an unsent notification (None if none is)."""
        return min(self._pending) if self._pending else None
