"""The rule engine: a pure function of (brand state, scored mentions, watermark) → alerts.

Event time is ``mention.created_at``. The watermark of a brand is the latest event time seen minus
the allowed lateness; each time it passes a minute boundary that minute is closed and every rule is
evaluated at the minute's end, one closed minute after the other. Nothing here reads the clock, so
the same mentions in the same order give the same alerts however fast they arrive and however they
are split into batches.

The engine only loops: it counts mentions into minute buckets (:mod:`streams.windows`), closes
minutes, asks each brand rule for its verdict on its window (:mod:`streams.rule_kinds`), runs the
verdict through the shared state machine (:mod:`streams.alert_lifecycle`, which follows incidents),
re-scores customers (:mod:`streams.customers`) and feeds the minutes that leave the windows into
the baselines. State lives in :class:`streams.state.BrandState` (JSON-serialisable, bounded): the
Faust agent keeps one per brand in a plain table and reassigns it after every ``process`` call so
the changelog carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta

from streams import alert_lifecycle
from streams.customers import CUSTOMER_DECAY_MINUTES, CustomerTracker
from streams.records import Example, Mention, ScoredMention
from streams.rule_kinds import BrandRule, CustomerAtRiskRule
from streams.rules import RuleSet
from streams.state import BrandState, EngineOutput, Erased, RuleState, RuleStatus
from streams.windows import (
    MINUTE,
    MinuteBucket,
    WindowView,
    feed_silence,
    floor_minute,
    slot_of,
    window_stats,
)

__all__ = ["Engine"]

SILENCE_CHUNK = timedelta(days=1)
"""The piece of a silence passed to :meth:`BrandRule.pass_silence` at once when every minute of
it counts (shorter than any kind's own limit)."""

_NO_MINUTE = datetime.min.replace(tzinfo=UTC)
"""An empty span of time (start = end), before any minute."""


class Engine:
    """Evaluates a ``RuleSet`` over per-brand state; pure and deterministic.

    ``baseline_time_constant`` is the memory of the brand baseline, ``customer_horizon`` how long a
    customer without mentions is remembered (at least the longest customer-rule lookback),
    ``max_customer_mentions`` and ``max_examples`` bound what is kept per customer and per alert.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        allowed_lateness: timedelta,
        baseline_time_constant: timedelta = timedelta(hours=6),
        customer_horizon: timedelta = timedelta(days=7),
        max_customer_mentions: int = 20,
        max_examples: int = 3,
    ) -> None:
        if allowed_lateness < timedelta(0):
            raise ValueError("allowed_lateness must not be negative")
        if baseline_time_constant <= timedelta(0):
            raise ValueError("baseline_time_constant must be positive")
        self.rules = rules
        self.allowed_lateness = allowed_lateness
        self.baseline_time_constant = baseline_time_constant
        self.max_customer_mentions = max_customer_mentions
        self.max_examples = max_examples
        self._brand_rules: tuple[BrandRule, ...] = tuple(
            r for r in rules.rules if isinstance(r, BrandRule)
        )
        self.customers = CustomerTracker(
            [r for r in rules.rules if isinstance(r, CustomerAtRiskRule)],
            horizon=customer_horizon,
            max_mentions=max_customer_mentions,
        )
        self._retention = max((r.window_minutes for r in self._brand_rules), default=1)
        scopes: dict[str, Callable[[Mention], bool]] = {}
        for rule in self._brand_rules:
            if rule.scope_key and rule.scope_key not in scopes:
                scopes[rule.scope_key] = rule.scope_matcher()
        self._scopes = tuple(scopes.items())
        self._scope_of = {id(rule): rule.scope_key for rule in self._brand_rules}
        self._plans: dict[str, tuple[tuple[BrandRule, str], ...]] = {}

    # --- public API -----------------------------------------------------------------------------

    def new_state(self, brand: str) -> BrandState:
        """Fresh state for a brand never seen before."""
        return BrandState(
            brand=brand,
            rules={r.alert: RuleState() for r in self._brand_rules if r.applies_to(brand)},
        )

    def process(self, state: BrandState, batch: Sequence[ScoredMention]) -> EngineOutput:
        """Feed mentions of ``state.brand`` in arrival order; **mutates** ``state`` in place.

        Each mention is counted into its minute, then the watermark moves and every minute it
        passed is closed and evaluated. Mentions whose minute is already closed are counted in
        ``late`` and ``state.late_dropped``. Raises ``ValueError`` for a mention of another brand.
        """
        out = EngineOutput()
        scopes = self._scopes
        brand = state.brand
        # Plain field writes below (no validation on assignment for BrandState, which is all
        # pydantic's __setattr__ would add): this loop runs for every mention.
        fields = vars(state)
        # The minute of the last mention and its end: most mentions fall in the same minute as
        # the one before, and ``floor_minute`` costs more than two comparisons.
        minute = minute_end = _NO_MINUTE
        for scored in batch:
            mention = scored.mention
            if mention.brand != brand:
                raise ValueError(f"mention {mention.id} is for {mention.brand}, not {brand}")
            at = mention.created_at
            closed_until = fields["closed_until"]
            if closed_until is not None and at < closed_until:
                fields["late_dropped"] += 1
                out.late += 1
                continue
            if not minute <= at < minute_end:
                minute = floor_minute(at)
                minute_end = minute + MINUTE
            _bucket(state.buckets, minute).add(scored)
            if scopes:
                for key, matches in scopes:
                    if matches(mention):
                        _bucket(state.scopes.setdefault(key, []), minute).add(scored)
            if mention.customer_id:
                self.customers.mention(state, mention.customer_id, scored, out)
            max_event_time = fields["max_event_time"]
            if max_event_time is None or at > max_event_time:
                max_event_time = fields["max_event_time"] = at
            self._advance_to(state, max_event_time - self.allowed_lateness, out)
        return out

    def advance(self, state: BrandState, watermark: datetime) -> EngineOutput:
        """Close every minute that ends at or before ``watermark``; **mutates** ``state``.

        Used at the end of input (pass the last event time, or later) and by a timer so quiet
        brands still resolve. A watermark behind the current one changes nothing.
        """
        out = EngineOutput()
        self._advance_to(state, watermark, out)
        return out

    def erase(
        self, state: BrandState, mention_ids: AbstractSet[str], customer_id: str | None = None
    ) -> Erased:
        """Remove a person's data from ``state`` (right to erasure); **mutates** ``state``.

        Every kept copy of the mentions in ``mention_ids`` goes (examples in minute buckets and in
        rule states, a customer's recent mentions), and so does the customer ``customer_id``.
        Counts, sums, baselines and detector state stay: they hold no text and no identity.
        """
        erased = Erased()
        for buckets in (state.buckets, *state.scopes.values()):
            for bucket in buckets:
                kept = [e for e in bucket.examples if e.id not in mention_ids]
                erased.examples += len(bucket.examples) - len(kept)
                bucket.examples = kept
        for rs in state.rules.values():
            kept_examples = [e for e in rs.examples if e.id not in mention_ids]
            erased.examples += len(rs.examples) - len(kept_examples)
            rs.examples = kept_examples
        self.customers.erase(state, mention_ids, customer_id, erased)
        state.reindex()
        return erased

    # --- minutes ---------------------------------------------------------------------------------

    def _rules_quiet(self, state: BrandState) -> bool:
        """No closed data in any window and no brand rule active or following an incident: the
        brand rules' verdicts on silent minutes change nothing."""
        assert state.closed_until is not None
        closed = state.closed_until
        # Buckets are kept oldest first: the first of each list is its oldest minute (this runs
        # at every closed minute, and testing every bucket cost more than the rest of it).
        return (
            not _alert_active(state)
            and all(rs.incident is None for rs in state.rules.values())
            and (not state.buckets or state.buckets[0].minute >= closed)
            and all(not bs or bs[0].minute >= closed for bs in state.scopes.values())
        )

    def _silence_may_fire(self, brand: str) -> bool:
        """Whether a rule of ``brand`` could fire on minutes without mentions."""
        return any(rule.silence_may_fire for rule in self._brand_rules if rule.applies_to(brand))

    def _rules_of(self, state: BrandState) -> Iterator[tuple[BrandRule, RuleState]]:
        for rule in self._brand_rules:
            if rule.applies_to(state.brand):
                rs = state.rules.get(rule.alert)
                if rs is None:
                    rs = state.rules[rule.alert] = RuleState()
                yield rule, rs

    def _advance_to(self, state: BrandState, watermark: datetime, out: EngineOutput) -> None:
        fields = vars(state)  # plain field writes, as in :meth:`process`
        before = fields["watermark"]
        if before is not None and watermark <= before:
            return
        fields["watermark"] = watermark
        closed_until = fields["closed_until"]
        if closed_until is not None and watermark < closed_until + MINUTE:
            return  # still inside the first open minute: nothing to close
        target = floor_minute(watermark)
        if state.closed_until is None:
            state.closed_until = state.buckets[0].minute if state.buckets else target
            state.baseline_until = state.closed_until
        while state.closed_until < target:
            start = state.closed_until
            if self._rules_quiet(state):
                # Long silence: skip the empty minutes in one step (same result, O(1) time).
                resume = min((b.minute for b in state.buckets), default=target)
                resume = min(resume, target)
                if not state.watched_customers:
                    if resume - start > MINUTE:
                        self._skip_silence(state, start, resume)
                        self.customers.sweep(state, resume, out, full=True)
                        continue
                elif resume - start > MINUTE and not self._silence_may_fire(state.brand):
                    self._skip_watched_silence(state, start, resume, out)
                    continue
            self._close_minute(state, start, out)
            state.closed_until = start + MINUTE

    def _skip_watched_silence(
        self, state: BrandState, start: datetime, resume: datetime, out: EngineOutput
    ) -> None:
        """Close the silent minutes from ``start`` to ``resume`` while customers are watched.

        The brand rules' verdicts on silent minutes change nothing (see :meth:`_rules_quiet`), so
        the minutes are skipped in one step as for any silence, their own state (a detector)
        passing through each minute as it did when they were closed one by one; only the customer
        sweeps of the minutes' ends are run, at the same times and in the same order as closing
        each minute would, until no customer is watched any more (then the rest is a plain
        silence). A silence of months costs its quarter-hourly sweeps until the customers are
        forgotten (the customer horizon), not one evaluation of every rule per minute.
        """
        step = CUSTOMER_DECAY_MINUTES * MINUTE
        swept = start
        last_full: datetime | None = None
        sweep_at = _next_sweep(start)
        while sweep_at <= resume and state.watched_customers:
            # The hourly sweeps leave the quiet customers (who output nothing) to the last one.
            full = sweep_at.minute == 0
            self.customers.sweep(state, sweep_at, out, full=full, quiet=False)
            if full:
                last_full = sweep_at
            swept, sweep_at = sweep_at, sweep_at + step
        watched_until = swept if not state.watched_customers else resume
        if not state.watched_customers and resume - swept > MINUTE:
            self.customers.sweep(state, resume, out, full=True)
        elif last_full is not None:
            self.customers.sweep_quiet(state, last_full, out)
        # While customers were watched every minute used to be closed, so the rules' own state
        # (a volume detector) saw every one of them; the rest is a plain silence.
        self._skip_silence(state, start, watched_until, every_minute=True)
        if resume > watched_until:
            self._skip_silence(state, watched_until, resume)

    def _skip_silence(
        self, state: BrandState, start: datetime, resume: datetime, *, every_minute: bool = False
    ) -> None:
        """Close the silent minutes from ``start`` to ``resume`` in one step (``every_minute``:
        the rules' own state passes through all of them, not only as many as a kind keeps up
        with after a long gap)."""
        assert state.baseline_until is not None
        leave = resume - self._retention * MINUTE
        if leave > state.baseline_until:
            skipped = int((leave - state.baseline_until) / MINUTE)
            state.baseline.feed(None, self.baseline_time_constant, times=skipped)
            for rule, rs in self._rules_of(state):
                if rule.feeds_baseline:
                    feed_silence(
                        rule.baseline.seasonality,
                        rs.seasonal_baselines(rule.baseline.seasonality),
                        start=state.baseline_until,
                        minutes=skipped,
                        time_constant=rule.baseline_memory(
                            self.baseline_time_constant, rs.baselines, 0
                        ),
                    )
            state.baseline_until = leave
        for rule, rs in self._rules_of(state):
            if not every_minute:
                rule.pass_silence(rs, start, resume)
                continue
            at = start
            while at < resume:
                until = min(resume, at + SILENCE_CHUNK)
                rule.pass_silence(rs, at, until)
                at = until
        state.closed_until = resume

    def _plan(self, brand: str) -> tuple[tuple[BrandRule, str], ...]:
        """The brand rules of ``brand`` with their scope keys, in the rules' order (what
        :meth:`_rules_of` walks, without testing each rule again at every closed minute)."""
        plan = self._plans.get(brand)
        if plan is None:
            plan = self._plans[brand] = tuple(
                (rule, self._scope_of[id(rule)])
                for rule in self._brand_rules
                if rule.applies_to(brand)
            )
        return plan

    def _close_minute(self, state: BrandState, minute: datetime, out: EngineOutput) -> None:
        end = minute + MINUTE
        brand = state.brand
        rules = state.rules
        plan = self._plan(brand)
        # One view per scope: rules of the same scope see the same closed minutes, so a window's
        # sums are computed once for all of them (the same function of the same buckets).
        views: dict[str, WindowView] = {}
        for rule, scope in plan:
            rs = rules.get(rule.alert)
            if rs is None:
                rs = rules[rule.alert] = RuleState()
            view = views.get(scope)
            if view is None:
                buckets = state.scopes.get(scope, []) if scope else state.buckets
                view = views[scope] = WindowView(buckets, end)
            verdict = rule.evaluate(rs, view)
            alert_lifecycle.step(
                rule, rs, brand, end, verdict, self._examples(rule, view.buckets, end), out
            )
        if end.minute % CUSTOMER_DECAY_MINUTES == 0:
            self.customers.sweep(state, end, out, full=end.minute == 0)
        # Minutes leave the windows into the baselines, except while an alert is pending or
        # firing: an incident must not become its own baseline. (Plain field writes, as in
        # :meth:`process`: this runs at every closed minute.)
        fields = vars(state)
        keep_from = end - self._retention * MINUTE
        baseline_until = fields["baseline_until"]
        assert baseline_until is not None
        if baseline_until < keep_from:
            active = _alert_active(state)
            while baseline_until < keep_from:
                leaving_minute = baseline_until
                leaving = _bucket_at(state.buckets, leaving_minute)
                if not active:
                    state.baseline.feed(leaving, self.baseline_time_constant)
                for rule, scope in plan:
                    rs = rules[rule.alert]
                    if not rule.feeds_baseline or rs.state is not RuleStatus.INACTIVE:
                        continue
                    mine = (
                        leaving
                        if not scope
                        else _bucket_at(state.scopes.get(scope, []), leaving_minute)
                    )
                    seasonality = rule.baseline.seasonality
                    slots = rs.seasonal_baselines(seasonality)
                    memory = rule.baseline_memory(
                        self.baseline_time_constant, slots, 0 if mine is None else mine.count
                    )
                    slots[slot_of(seasonality, leaving_minute)].feed(mine, memory)
                baseline_until += MINUTE
            fields["baseline_until"] = baseline_until
        buckets = fields["buckets"]
        if buckets and buckets[0].minute < keep_from:
            fields["buckets"] = _kept(buckets, keep_from)
        for key, buckets in state.scopes.items():
            if buckets and buckets[0].minute < keep_from:
                state.scopes[key] = _kept(buckets, keep_from)

    def _examples(
        self, rule: BrandRule, buckets: Sequence[MinuteBucket], end: datetime
    ) -> Callable[[], tuple[Example, ...]]:
        """The window's most negative mentions, computed only when an alert needs them."""

        def examples() -> tuple[Example, ...]:
            return window_stats(
                buckets, end=end, minutes=rule.window_minutes, examples=self.max_examples
            ).examples

        return examples


def _next_sweep(start: datetime) -> datetime:
    """The first end of a minute from ``start`` on at which closing it sweeps the customers
    (a multiple of ``CUSTOMER_DECAY_MINUTES`` past the hour)."""
    end = start + MINUTE
    past = end.minute % CUSTOMER_DECAY_MINUTES
    return end if past == 0 else end + (CUSTOMER_DECAY_MINUTES - past) * MINUTE


def _alert_active(state: BrandState) -> bool:
    return any(rs.state is not RuleStatus.INACTIVE for rs in state.rules.values())


def _kept(buckets: list[MinuteBucket], keep_from: datetime) -> list[MinuteBucket]:
    """A new list of the buckets (oldest first) from ``keep_from`` on."""
    first = 0
    for bucket in buckets:
        if bucket.minute >= keep_from:
            break
        first += 1
    return buckets[first:]


def _bucket_at(buckets: Sequence[MinuteBucket], minute: datetime) -> MinuteBucket | None:
    """The bucket of ``minute`` in ``buckets`` (oldest first, one per minute), if any."""
    for bucket in buckets:
        if bucket.minute >= minute:
            return bucket if bucket.minute == minute else None
    return None


def _bucket(buckets: list[MinuteBucket], minute: datetime) -> MinuteBucket:
    """The bucket of ``minute`` in ``buckets`` (oldest first, one per minute), added in its
    place if there is none."""
    place = len(buckets)
    for bucket in reversed(buckets):
        if bucket.minute == minute:
            return bucket
        if bucket.minute < minute:
            break
        place -= 1
    bucket = MinuteBucket.empty(minute)
    buckets.insert(place, bucket)
    return bucket
