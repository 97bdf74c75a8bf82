"""Causal surge detection for per-bucket mention counts (the ``volume_surge`` rule kind).

A detector sees one bucket's count at a time, with its time (``step(at, value)``), and decides from
the past only. Its constants are durations or plain numbers with a meaning, so the worker (which
steps it every closed minute on the count of the last 5 minutes) and ``listenwell detect`` (one step
per 5-minute row) agree. Its memory is small (about 1.7 KB of JSON through ``to_state`` /
``from_state``), so the engine keeps it in a brand's state.

How a step is judged (on the log scale, ``x = log(1 + count)``, so a surge is a *ratio*):

1. **Expected count.** The hourly mean of ``x`` over the last 7 days is kept (168 numbers). The
   expectation for an hour is the median of that hour on the last 7 days (a story on one day
   barely moves a median of seven), plus an hour-of-week offset learnt over weeks
   (``weekly_half_life``: Friday evenings may differ from other evenings), times the level of the
   last 24 hours (the median ratio of each hour to its expectation: a story of a few hours does
   not move it, a new normal does within 12 hours). Between hours it is a straight line from one
   hour's centre to the next. A new normal is thus one alert, not one a day. Until there is a
   daily shape (the first day), the expectation is the level of the hours seen so far, and a
   surge must be ``first_day_ratio`` (10) times it: the daily cycle is not known yet, and a
   day's own rise from night to afternoon is several times its level.
2. **Sustained count.** The median count over the last ``sustain`` (10 minutes: three 5-minute
   rows, or eleven per-minute sums in the worker), so the volume must have been high for most of
   it: a bot's burst of retweets that is over in five minutes is not a surge. It is compared with
   the *highest* expectation over that span (the line at both ends, and the typical level of each
   hour it touches), so a steep daily edge (a show that starts at 20:00 every day) is not one.
3. **Significance.** Its robust z-score: the log ratio to that expectation over the spread of such
   ratios (an exponentially weighted mean absolute deviation, ``spread_half_life``). A surge
   needs ``z >= threshold``.
4. **Unusual for this brand.** The z-score must also reach the brand's *usual peak*: the
   ``peak_rank``-th (4th) highest of its daily peak z-scores over ``peak_window`` (28 days), i.e. a
   height the brand reaches on fewer than one day a week. A brand whose mentions jump every day
   (news, launches, retweet storms) is paged for its exceptional days; a quiet brand for any
   significant surge. A story is one peak (an episode is counted once, on the day it started),
   and a rank, unlike a decaying maximum, is not raised for weeks by one big story: a story ten
   days ago does not mute today's. With fewer days of history than ``peak_rank``, there is no
   usual peak yet and significance alone decides.
5. **Episodes (re-arm).** A surge starts an episode: ``condition`` stays true until the volume is
   back near normal (a smoothed ratio, half-life ``smoothing``, within ``rearm`` spreads of the
   expectation); only then can the next surge start, so two surges a few hours apart are two
   alerts. There is no fixed cooldown.

``direction: down`` (or ``both``) watches for collapses the same way. Every verdict carries its
evidence (:class:`Detection`): count against expected, the sustained count, ratio, z-score, the
brand's usual peak, the same hour on the last 7 days and the level over the last 24 hours, as
fields and as one sentence.

The defaults are the one configuration shipped for every brand; ``threshold`` was chosen by
leave-one-series-out cross-validation on the NAB development series (``bench/tune_detector.py``,
figures in ``bench/results/tune_detector.json``); the others have a meaning and are fixed.

Longer than most modules here (about 700 lines) on purpose: the parameters, the step, the evidence
and the state format of one detector change together (a new input to a step is a new field of the
state and of the evidence), and reading them side by side is what keeps them in step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.yamlfile import Duration

__all__ = ["Detection", "VolumeSurgeDetector", "VolumeSurgeParams"]

STATE_VERSION = 3
HOUR = 3600.0
DAY = 86400.0
DAYS = 7
"""Days of hourly history kept (the same hour on each is the expectation's evidence)."""
HOURS_KEPT = 24 * DAYS
WEEK = 7 * DAY
MIN_HOURS_PER_DAY = 6
"""A day's level is known once it has this many hourly means."""
CLIP = 3.0
"""An hour moves its hour-of-week offset by at most this many spreads."""
SPREAD_CAP = 6.0
"""... and the spread by a residual of at most this many spreads."""
MAD_TO_STD = 1.2533  # sqrt(pi / 2): mean absolute deviation -> standard deviation (normal noise)
MIN_SPREAD = 0.05
"""No spread is taken to be below 5% (a log unit of 0.05): counts are never that regular."""
SCALE = 100
"""Hourly means and hour-of-week offsets are kept in hundredths of a log unit (1%)."""
MAX_PEAK_DAYS = 90

Direction = Literal["up", "down", "both"]


class VolumeSurgeParams(BaseModel):
    """The parameters of a ``volume_surge`` rule (its ``params:`` mapping in YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=4.5, gt=0.0)
    """Robust z-score of the sustained count against the expectation at which it is significant."""
    peak_rank: int = Field(default=4, ge=0)
    """The z-score must also reach the brand's usual peak: the ``peak_rank``-th highest of its
    daily peaks over ``peak_window`` (an episode counted once, on the day it started). 0 turns
    the test off."""
    peak_window: Duration = timedelta(days=28)
    """The days whose peaks give the usual peak (whole days, at most 90)."""
    sustain: Duration = timedelta(minutes=10)
    """The count judged is the median over this long (0s: the current count)."""
    rearm: float = Field(default=1.0, ge=0.0)
    """A surge is over once the smoothed residual is within this many spreads of normal."""
    smoothing: Duration = timedelta(minutes=15)
    """Half-life of the smoothed residual that says when a surge is over."""
    spread_half_life: Duration = timedelta(days=3)
    """How fast the spread of the residuals follows a change in noise."""
    weekly_half_life: Duration = timedelta(days=7)
    """How fast the hour-of-week offsets follow a change in the weekly pattern."""
    warmup: Duration = timedelta(hours=3)
    """History needed before the first surge."""
    first_day_ratio: float = Field(default=10.0, gt=1.0)
    """While the expectation has no daily shape yet (the first day: it is the level of the hours
    seen so far), a surge needs ``(1 + sustained) / (1 + expected)`` at least this high instead
    of the z-score: the spread learnt so far mixes noise with the day's own rise."""
    min_volume: float = Field(default=0.0, ge=0.0)
    """A sustained count below this never starts a surge."""
    direction: Direction = "up"
    """``up`` (surges), ``down`` (collapses) or ``both``."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.rearm >= self.threshold:
            raise ValueError(f"rearm ({self.rearm:g}) must be below threshold ({self.threshold:g})")
        for name in ("smoothing", "spread_half_life", "weekly_half_life"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration")
        days = self.peak_window / timedelta(days=1)
        if days != int(days) or not 1 <= days <= MAX_PEAK_DAYS:
            raise ValueError(f"peak_window must be whole days from 1d to {MAX_PEAK_DAYS}d")
        if self.peak_rank > days:
            raise ValueError(
                f"peak_rank ({self.peak_rank}) must not exceed the days of peak_window ({days:g})"
            )
        return self


@dataclass(frozen=True)
class Detection:
    """The detector's verdict on one step, with the evidence a person needs to judge it."""

    score: float
    """Anomaly score in [0, 1]: ``1 - 2^-(z / threshold)^2`` for a positive z in a watched
    direction (0.5 at the threshold), 0 otherwise."""
    condition: bool
    """Whether a surge is in progress (from the step that started it until it is over)."""
    baseline: float
    """Expected count for this step, from the past only (also ``expected``)."""
    verdict: str = "normal"
    """What this step is: ``surge`` or ``collapse`` (it starts one), ``surge continues`` or
    ``collapse continues``, ``normal``, ``not unusual`` (significant, but below the brand's usual
    peak), ``too few`` (below ``min_volume``) or ``warming up``."""
    started: bool = False
    """This step started a surge."""
    value: float = 0.0
    """The count of this step."""
    sustained: float = 0.0
    """The count judged: the median over the last ``sustain``."""
    ratio: float = 1.0
    """``sustained / expected`` (``inf`` when nothing was expected)."""
    z: float = 0.0
    """Robust z-score of the sustained count (positive: above expected)."""
    needed: float = 0.0
    """The z-score a surge needed at this step: the threshold or the usual peak, whichever is
    higher (the first day: the z-score of ``first_day_ratio``)."""
    usual_peak: float | None = None
    """The brand's usual peak z-score (the ``peak_rank``-th highest daily peak over
    ``peak_window``); ``None`` while there are fewer days of history."""
    shaped: bool = True
    """Whether the expectation rests on a daily shape (false on the first day)."""
    same_hour: tuple[float | None, ...] = ()
    """Mean count per step at this hour on each of the last 7 days, yesterday first."""
    level_24h: float | None = None
    """Median over the last 24 hours of the hourly mean count per step."""
    direction: str = ""
    """``up`` or ``down`` while a surge is in progress, else empty."""
    params: VolumeSurgeParams | None = field(default=None, compare=False, repr=False)
    """The parameters it was judged with (for ``reason``)."""

    @property
    def expected(self) -> float:
        """Expected count for this step."""
        return self.baseline

    @cached_property
    def reason(self) -> str:
        """Why, in one sentence: the figures above (written when first asked for: the worker
        judges every brand every minute and rarely needs the words)."""
        return _explain(self, self.params or VolumeSurgeParams())


def _explain(d: Detection, p: VolumeSurgeParams) -> str:
    if d.verdict == "warming up" and not d.same_hour:
        return "warming up: no history yet"
    minutes = int(p.sustain.total_seconds() // 60)
    measure = f"{_fmt(d.value)} mentions"
    if minutes and d.sustained != d.value:
        measure += f" (median {_fmt(d.sustained)} over {minutes} min)"
    ratio = f"{d.ratio:.1f}x" if math.isfinite(d.ratio) else "none expected"
    facts = f"{measure} against {_fmt(d.baseline)} expected ({ratio}, z {d.z:.1f})"
    history = ", ".join("-" if c is None else _fmt(c) for c in d.same_hour)
    context = f"same hour on the last 7 days: {history}"
    if d.level_24h is not None:
        context += f"; level over the last 24 h: {_fmt(d.level_24h)}"
    usual = (
        f"usual peak z {d.usual_peak:.1f} (the {_ordinal(p.peak_rank)} highest daily peak of the "
        f"last {p.peak_window.days} days)"
        if d.usual_peak is not None
        else None
    )
    bar = f"{d.needed:.1f}"
    if not d.shaped:
        bar += f" ({p.first_day_ratio:g}x the level so far: no daily shape yet)"
    if d.verdict in ("surge", "collapse"):
        reason = f"{d.verdict}: {facts} >= {bar}; {context}"
        return reason + (f"; {usual}" if usual else "")
    if d.verdict.endswith("continues"):
        return f"{d.verdict}: {facts}; over once back within {p.rearm:g} spread of normal"
    if d.verdict == "warming up":
        return f"warming up: {facts}; {context}"
    if d.verdict == "normal":
        return f"normal: {facts} < {bar}; {context}"
    if d.verdict == "too few":
        return f"too few: {facts}, below min_volume {p.min_volume:g}"
    return f"not unusual: {facts}; below this brand's {usual}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class _Hourly:
    """Derived from the hourly history; recomputed when the hour changes (never stored)."""

    hour: int
    before: float | None
    this: float | None
    after: float | None
    shaped: bool
    """Whether ``this`` rests on a daily shape (some history at this hour)."""
    level: float | None
    """The level of the last 24 hours (log scale)."""
    same_hour: tuple[float | None, ...]
    level_24h: float | None


@dataclass(frozen=True)
class _Side:
    """One direction of a step: how far the sustained count is from the expectation."""

    z: float
    """Robust z-score in this direction (positive: beyond the expectation)."""
    judged: float
    """The sustained count: the median over ``sustain``."""
    expected: float
    """The expectation it is judged against: the highest (up) or lowest (down) over
    ``sustain``."""
    watched: bool
    sign: int


def _slog(value: float) -> float:
    return math.log1p(value) if value >= 0.0 else -math.log1p(-value)


def _sexp(x: float) -> float:
    return math.expm1(x) if x >= 0.0 else -math.expm1(-x)


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def _decay(dt: float, half_life: float) -> float:
    """Weight left on the past after ``dt`` seconds with this half-life."""
    return float(0.5 ** (dt / half_life))


def _fmt(count: float) -> str:
    if count >= 100 or count == int(count):
        return f"{count:,.0f}"
    return f"{count:.1f}"


class VolumeSurgeDetector:
    """Seasonal, level-following expectation; sustained, significant surges, unusual for the
    brand.

    ``step`` is causal (the verdict on a step uses only earlier steps and this one's count) and
    costs O(1) time and memory, except a median of 7 numbers once an hour and a sort of
    ``peak_window`` numbers once a day.
    """

    def __init__(self, params: VolumeSurgeParams) -> None:
        self.params = params
        self._sustain = params.sustain.total_seconds()
        self._smoothing = params.smoothing.total_seconds()
        self._spread_half_life = params.spread_half_life.total_seconds()
        self._warmup = params.warmup.total_seconds()
        self._weekly_rate = 1.0 - _decay(WEEK, params.weekly_half_life.total_seconds())
        self._peak_days = params.peak_window.days
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.hour: int | None = None
        """Index (hours since the epoch) of the hour being accumulated."""
        self.hour_sum = 0.0
        self.hour_steps = 0
        self.hours: list[int | None] = [None] * HOURS_KEPT
        """Hourly means of ``log(1 + count)`` (hundredths), slot ``hour % 168``."""
        self.weekly: list[int] = [0] * HOURS_KEPT
        """Hour-of-week offsets (hundredths) on top of the same-hour median."""
        self.spread = 0.0
        """Spread of the sustained residuals (log scale)."""
        self.smooth_spread = 0.0
        """Spread of the smoothed residual."""
        self.spread_weight = 0.0
        """How much history the spreads rest on (1 - 0.5^(time / spread_half_life))."""
        self.smooth = 0.0
        """Smoothed residual (log scale)."""
        self.surge = 0
        """+1 / -1 while a surge up / down is in progress, else 0."""
        self.peaks: list[list[float]] = []
        """``[day, peak z]`` of the last ``peak_window`` days (days since the epoch, UTC), oldest
        first: the highest z-score of each day in the watched directions, an episode's counted
        on the day it started."""
        self.episode_day: int | None = None
        """The day the surge in progress started."""
        self.recent: list[tuple[float, float]] = []
        """(time, count) of the steps within ``sustain``."""
        self._hourly_cache: _Hourly | None = None
        self._usual_cache: tuple[int, float | None] | None = None

    # --- the expectation --------------------------------------------------------------------

    def _hourly(self, hour: int) -> _Hourly:
        """What changes only hourly: the expectation (log scale) at the previous, this and the
        next hour, and the evidence shown with each verdict.

        The expectation of an hour is the level of the last 24 hours (their median hourly mean),
        times the daily shape at that hour (the median, over the last 7 days, of the same hour
        against its day's level: each day being the 24 hours that end that many days before
        now), times its hour-of-week offset. While there is no shape yet (the first day), it is
        the level alone.
        """
        cache = self._hourly_cache
        if cache is not None and cache.hour == hour:
            return cache
        start = hour % HOURS_KEPT
        ordered = self.hours[start:] + self.hours[:start]  # element j: hour - 168 + j
        levels: list[float | None] = []
        for day in range(1, DAYS + 1):
            first = HOURS_KEPT - 24 * day
            seen = [x for x in ordered[first : first + 24] if x is not None]
            median = _median(seen)
            enough = median is not None and len(seen) >= (MIN_HOURS_PER_DAY if day > 1 else 1)
            levels.append(median / SCALE if enough and median is not None else None)
        level = levels[0]
        bases: list[float | None] = []
        shapes: list[float | None] = []
        for offset in (-1, 0, 1):
            if level is None:
                bases.append(None)
                shapes.append(None)
                continue
            ratios = []
            for day in range(1, DAYS + 1 if offset >= 0 else DAYS):
                value = ordered[HOURS_KEPT - 24 * day + offset]
                day_level = levels[day - 1 if offset >= 0 else day]
                if value is not None and day_level is not None:
                    ratios.append(value / SCALE - day_level)
            shape = _median(ratios)
            shapes.append(shape)
            weekly = self.weekly[(hour + offset) % HOURS_KEPT] / SCALE
            bases.append(None if shape is None else round(level + shape + weekly, 4))
        shaped = shapes[1] is not None
        flat = None if level is None else round(level, 4)
        bases = [flat if b is None else b for b in bases] if shaped else [flat, flat, flat]
        cache = self._with_evidence(hour, bases[0], bases[1], bases[2], shaped, level)
        self._hourly_cache = cache
        return cache

    def _with_evidence(
        self,
        hour: int,
        before: float | None,
        this: float | None,
        after: float | None,
        shaped: bool,
        level: float | None,
    ) -> _Hourly:
        same_hour = tuple(
            None if x is None else _sexp(x / SCALE)
            for x in (self.hours[(hour - 24 * day) % HOURS_KEPT] for day in range(1, DAYS + 1))
        )
        return _Hourly(
            hour=hour,
            before=before,
            this=this,
            after=after,
            shaped=shaped,
            level=level,
            same_hour=same_hour,
            level_24h=None if level is None else _sexp(level),
        )

    def _expectation(self, hourly: _Hourly, at: float) -> float:
        """Expected ``log(1 + count)`` at ``at`` (this hour or the one before): a straight line
        between the centres of neighbouring hours."""
        assert hourly.this is not None
        this = hourly.this
        position = at / HOUR - hourly.hour - 0.5
        neighbour = hourly.after if position >= 0.0 else hourly.before
        if neighbour is None:
            neighbour = this
        return this + min(abs(position), 1.0) * (neighbour - this)

    def _expectation_span(self, hourly: _Hourly, start: float, end: float) -> tuple[float, float]:
        """Lowest and highest expectation over ``[start, end]`` (``end`` in this hour): the
        interpolated line at both ends and the typical level of each hour the span touches. A
        surge must stand above all of them, so a steep daily edge (a show that starts at 20:00
        every day) is not a surge, nor its end a collapse."""
        assert hourly.this is not None
        points = [self._expectation(hourly, start), self._expectation(hourly, end), hourly.this]
        if start < hourly.hour * HOUR and hourly.before is not None:
            points.append(hourly.before)
        return min(points), max(points)

    def _close_hour(self, hour: int) -> None:
        """Store the finished hour's mean, learn its hour-of-week offset (how far it was from
        its expectation, at most 6 spreads), forget skipped hours."""
        if self.hour is not None and self.hour_steps:
            mean = self.hour_sum / self.hour_steps
            hourly = self._hourly(self.hour)
            if hourly.this is not None and hourly.shaped:
                slot = self.hour % HOURS_KEPT
                limit = SPREAD_CAP * max(self.spread, MIN_SPREAD)
                step = self._weekly_rate * max(-limit, min(limit, mean - hourly.this))
                self.weekly[slot] = round(self.weekly[slot] + step * SCALE)
            self.hours[self.hour % HOURS_KEPT] = round(mean * SCALE)
        if self.hour is not None:
            for skipped in range(self.hour + 1, min(hour, self.hour + 1 + HOURS_KEPT)):
                self.hours[skipped % HOURS_KEPT] = None
        self.hour, self.hour_sum, self.hour_steps = hour, 0.0, 0
        self._hourly_cache = None

    # --- the brand's usual peak ---------------------------------------------------------------

    def _usual_peak(self, day: int) -> float | None:
        """The ``peak_rank``-th highest daily peak of the ``peak_window`` days before ``day``
        (``None`` with fewer days, or when the test is off)."""
        cache = self._usual_cache
        if cache is not None and cache[0] == day:
            return cache[1]
        rank = self.params.peak_rank
        window = [z for d, z in self.peaks if day - self._peak_days <= d < day]
        usual = sorted(window, reverse=True)[rank - 1] if rank and len(window) >= rank else None
        self._usual_cache = (day, usual)
        return usual

    def _record_peak(self, day: int, z: float) -> None:
        """Raise ``day``'s peak to ``z``; forget days that left the window."""
        peaks = self.peaks
        for entry in reversed(peaks):
            if entry[0] == day:
                if z > entry[1]:
                    entry[1] = round(z, 2)
                    if self._usual_cache is not None and day < self._usual_cache[0]:
                        self._usual_cache = None
                return
            if entry[0] < day:
                break
        peaks.append([day, round(z, 2)])
        peaks.sort(key=lambda entry: entry[0])
        oldest = peaks[-1][0] - self._peak_days
        if peaks[0][0] < oldest:
            self.peaks = [entry for entry in peaks if entry[0] >= oldest]
        if self._usual_cache is not None and day < self._usual_cache[0]:
            self._usual_cache = None

    # --- evidence -----------------------------------------------------------------------------

    def same_hour_counts(self, at: datetime) -> tuple[float | None, ...]:
        """Mean count per step at the hour of ``at`` on each of the last 7 days, yesterday first."""
        return self._hourly(int(at.timestamp() // HOUR)).same_hour

    def level_24h(self, at: datetime) -> float | None:
        """Median of the hourly mean counts over the 24 hours before the hour of ``at``."""
        return self._hourly(int(at.timestamp() // HOUR)).level_24h

    # --- the step -----------------------------------------------------------------------------

    def step(self, at: datetime, value: float) -> Detection:
        """Judge the count of the bucket ending at ``at`` against the past, then learn from it.

        Raises ``ValueError`` for a count that is not a finite number or a time before the
        previous step's.
        """
        if not math.isfinite(value):
            raise ValueError(f"count must be a finite number, got {value!r}")
        p = self.params
        now = at.timestamp()
        if self.last_at is not None and now < self.last_at:
            raise ValueError(f"step at {at.isoformat()} is before the previous step")
        if self.first_at is None:
            self.first_at = now
        dt = 0.0 if self.last_at is None else now - self.last_at
        self.last_at = now
        hour = int(now // HOUR)
        if hour != self.hour:
            self._close_hour(hour)
        sustain = self._sustain
        recent = self.recent
        recent.append((now, value))
        if recent[0][0] < now - sustain:
            # Steps come in time order: the ones that left the span are at the front.
            cutoff = now - sustain
            first = 0
            while first < len(recent) and recent[first][0] < cutoff:
                first += 1
            recent = self.recent = recent[first:]
        judged = _median([v for _, v in recent]) or 0.0
        x = _slog(value)
        hourly = self._hourly(hour)
        if hourly.this is None:
            self.hour_sum += x
            self.hour_steps += 1
            return Detection(
                score=0.0,
                condition=False,
                baseline=value,
                verdict="warming up",
                value=value,
                sustained=value,
                shaped=False,
                params=p,
            )
        expected_log = self._expectation(hourly, now)
        lowest, highest = self._expectation_span(hourly, now - self._sustain, now)
        residual = x - expected_log
        residual_high = _slog(judged) - highest
        residual_low = _slog(judged) - lowest
        spread = max(self.spread, MIN_SPREAD)
        smooth_spread = max(self.smooth_spread, MIN_SPREAD)
        self.smooth += (1.0 - _decay(dt, self._smoothing)) * (residual - self.smooth)
        up = _Side(
            z=residual_high / spread,
            judged=judged,
            expected=_sexp(highest),
            watched=p.direction in ("up", "both"),
            sign=1,
        )
        down = _Side(
            z=-residual_low / spread,
            judged=judged,
            expected=_sexp(lowest),
            watched=p.direction in ("down", "both"),
            sign=-1,
        )
        day = int(now // DAY)
        usual = self._usual_peak(day)
        threshold = p.threshold if hourly.shaped else math.log(p.first_day_ratio) / spread
        needed = threshold if usual is None else max(threshold, usual)
        warm = now - self.first_at >= self._warmup
        started = False
        if self.surge == 0 and warm:
            for side in (up, down):
                if side.watched and side.z >= needed and judged >= p.min_volume:
                    started = True
                    self.surge = side.sign
                    self.episode_day = day
                    # The smoothed residual starts at least at the level that was sustained.
                    self.smooth = (
                        max(self.smooth, residual_high)
                        if side.sign > 0
                        else min(self.smooth, residual_low)
                    )
                    break
        elif self.surge and self.surge * self.smooth / smooth_spread < p.rearm:
            self.surge = 0
            self.episode_day = None
        if self.surge:
            side = up if self.surge > 0 else down
        elif up.watched and (not down.watched or up.z >= down.z):
            side = up
        else:
            side = down
        detection = self._verdict(
            at,
            value,
            side,
            hourly,
            warm=warm,
            started=started,
            threshold=threshold,
            needed=needed,
            usual=usual,
        )
        # Learn.
        watched_z = max(s.z for s in (up, down) if s.watched)
        self._record_peak(self.episode_day if self.episode_day is not None else day, watched_z)
        centred = 0.5 * (residual_high + residual_low)
        keep = _decay(dt, self._spread_half_life)
        known = self.spread_weight > 0.0
        self.spread_weight = keep * self.spread_weight + (1.0 - keep)
        # A bias-corrected exponentially weighted mean: a plain mean until it rests on a
        # half-life of history, so the first day is not judged by a made-up starting value.
        rate = (1.0 - keep) / self.spread_weight if self.spread_weight > 0.0 else 1.0
        deviation = min(abs(centred), SPREAD_CAP * spread) if known else abs(centred)
        smooth_deviation = (
            min(abs(self.smooth), SPREAD_CAP * smooth_spread) if known else abs(self.smooth)
        )
        self.spread += rate * (deviation * MAD_TO_STD - self.spread)
        self.smooth_spread += rate * (smooth_deviation * MAD_TO_STD - self.smooth_spread)
        self.hour_sum += x
        self.hour_steps += 1
        return detection

    def _verdict(
        self,
        at: datetime,
        value: float,
        side: _Side,
        hourly: _Hourly,
        *,
        warm: bool,
        started: bool,
        threshold: float,
        needed: float,
        usual: float | None,
    ) -> Detection:
        p = self.params
        judged, expected = side.judged, side.expected
        if started:
            verdict = "surge" if side.sign > 0 else "collapse"
        elif self.surge:
            verdict = "surge continues" if self.surge > 0 else "collapse continues"
        elif not warm:
            verdict = "warming up"
        elif side.z < threshold or not side.watched:
            verdict = "normal"
        elif judged < p.min_volume:
            verdict = "too few"
        else:
            verdict = "not unusual"
        score = 1.0 - 2.0 ** (-((side.z / threshold) ** 2)) if side.z > 0.0 else 0.0
        return Detection(
            score=round(score, 4) if side.watched else 0.0,
            condition=self.surge != 0,
            baseline=expected,
            verdict=verdict,
            started=started,
            value=value,
            sustained=judged,
            ratio=judged / expected if expected > 0.0 else math.inf,
            z=round(side.sign * side.z, 4),
            needed=needed,
            usual_peak=usual,
            shaped=hourly.shaped,
            same_hour=hourly.same_hour,
            level_24h=hourly.level_24h,
            direction={1: "up", -1: "down"}.get(self.surge, ""),
            params=p,
        )

    # --- state ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable memory of the detector (about 1.7 KB)."""
        return {
            "v": STATE_VERSION,
            "first": self.first_at,
            "last": self.last_at,
            "hour": self.hour,
            "hour_sum": self.hour_sum,
            "hour_steps": self.hour_steps,
            "hours": list(self.hours),
            "weekly": list(self.weekly),
            "spread": self.spread,
            "smooth_spread": self.smooth_spread,
            "spread_weight": self.spread_weight,
            "smooth": self.smooth,
            "surge": self.surge,
            "peaks": [list(entry) for entry in self.peaks],
            "episode_day": self.episode_day,
            # Each step within ``sustain``: [seconds before ``last``, count].
            "recent": [[self.last_at - t if self.last_at else 0.0, v] for t, v in self.recent],
            # Derived from the above, kept so a detector restored every minute need not redo
            # the hour's medians.
            "hourly": None
            if (c := self._hourly_cache) is None
            else [c.hour, c.before, c.this, c.after, c.shaped, c.level],
        }

    @classmethod
    def from_state(cls, params: VolumeSurgeParams, state: dict[str, Any]) -> Self:
        """A detector with ``params`` that remembers ``state`` (from ``to_state``). A state of
        the previous format (version 2) keeps its history and has no daily peaks yet; any other
        starts afresh."""
        detector = cls(params)
        version = state.get("v")
        if version not in (2, STATE_VERSION):
            return detector
        detector.first_at = state["first"]
        detector.last_at = state["last"]
        detector.hour = state["hour"]
        detector.hour_sum = float(state["hour_sum"])
        detector.hour_steps = int(state["hour_steps"])
        # Trusted: written by to_state (the brand's own changelog), read every minute.
        detector.hours = list(state["hours"])
        detector.weekly = list(state["weekly"])
        detector.spread = float(state["spread"])
        detector.smooth_spread = float(state["smooth_spread"])
        detector.spread_weight = float(state["spread_weight"])
        detector.smooth = float(state["smooth"])
        detector.surge = int(state["surge"])
        if version == STATE_VERSION:
            detector.peaks = [[int(d), float(z)] for d, z in state["peaks"]]
            detector.episode_day = state["episode_day"]
            hourly = state.get("hourly")
            if hourly is not None:
                hour, before, this, after, shaped, level = hourly
                detector._hourly_cache = detector._with_evidence(
                    hour, before, this, after, shaped, level
                )
        elif detector.surge and detector.last_at is not None:
            detector.episode_day = int(detector.last_at // DAY)
        last = detector.last_at or 0.0
        detector.recent = [(last - ago, v) for ago, v in state["recent"]]
        return detector
