"""Is a brand's negative (or empathy-deficit) share above its normal? A sequential test per minute.

The ``sentiment_spike`` and ``empathy_deficit`` rule kinds ask whether the share of a brand's
mentions that are *hits* (negative, or with an empathy-deficit phrase) has risen above the brand's
usual share ``p0`` (its baseline). A fixed window and a fixed increase cannot answer that for every
brand: 15 minutes of a brand with 10 mentions an hour hold two or three mentions, and for a brand
with 10,000 an hour a noise-sized move is "significant". This module answers it with a one-sided
Bernoulli CUSUM on the mention stream, whose false-alarm rate is set per brand-week at every volume:

- **The alternative.** The test is tuned to a rise of the share to ``p1``: the usual share with its
  odds multiplied by ``odds_ratio`` (2.0 turns 35% into 52% and 2% into 4%), and at least
  ``min_rise`` above it. It reacts to any rise past about the midpoint of ``p0`` and ``p1``
  (the share where the evidence stops drifting down), fastest to rises of ``p1`` and more.
- **The evidence.** Each closed minute with ``n`` mentions, ``k`` of them hits, adds their
  log-likelihood ratio ``k·ln(p1/p0) + (n−k)·ln((1−p1)/(1−p0))`` to the evidence ``S``, which
  never goes below 0 (Page's CUSUM, batched by minute). ``S`` is in nats: ``e^S`` is how many times
  likelier the mentions since ``S`` last was 0 (the *run*: the CUSUM's estimate of when the rise
  began) are under the raised share than under the usual one. A quiet brand accumulates it over
  hours, a loud one within minutes, with the same meaning.
- **The threshold** ``h`` comes from the false-alarm budget, not from examples of spikes: on a calm
  stream, the mean number of mentions between false alarms of a CUSUM is, by Siegmund's corrected
  diffusion approximation, ``ARL0 ≈ (e^h' − h' − 1) / I0`` with ``I0 = KL(p0 ‖ p1)`` and
  ``h' = h + c·σ`` (``σ``: standard deviation of one step's increment, ``c ≈ 1.166`` for normal
  increments). A brand with ``r`` mentions a minute sees ``r·10080`` mentions a week, so
  ``false_alarms_per_week`` fixes ``ARL0`` and hence ``h``. With :data:`OVERSHOOT` ``c = 1.0``,
  simulated calm streams with a known share (``tests/streams/test_share_spike.py``) give 0.7 to
  1.05 times the budget from 6 mentions an hour to 80 a minute; ``bench/spikes.py`` measures the
  whole rule (estimated baseline, daily cycles, ``for``) on streams of real texts.
- **Uncertain baselines.** ``p0`` is the baseline's share raised by ``baseline_margin`` standard
  errors of it (``sqrt(p0(1−p0)/n0)`` for a baseline of ``n0`` mentions), so a quiet brand's
  under-estimated normal does not read as a rise; no verdict before ``min_baseline_mentions``.
  :func:`reference_time_constant` gives a quiet brand's baseline a memory of enough mentions.
- **Episodes.** The test is *in alarm* from the minute ``S`` reaches ``h``; while in alarm ``S`` is
  capped at ``h``, and the alarm ends when calm mentions have brought it down to ``h − release``
  (``release`` nats of evidence that the share is back to normal: no flapping at the threshold,
  and a loud brand's alarm ends within minutes of the rise, a quiet one's after hours), or when
  the brand has been silent for as long as its usual rate expects ``silence_release`` mentions
  in (a share needs mentions: without them the alarm would never end). Then ``S`` restarts
  from 0, so one rise gives one alarm. The alarm is the rule's condition: ``for``,
  ``keep_firing_for``, cooldown and the seasonal baseline slots of the engine work on top of it.
  How strong the evidence of an episode is, is the most it reached uncapped
  (:attr:`ShareVerdict.peak_evidence`).

Everything is pure, causal and deterministic; a step is O(1) and the state (:meth:`to_state`) is
eight JSON values and the latest episode's verdict. A verdict explains itself
(:meth:`ShareVerdict.explain`): "37 of 48 mentions negative in the last 75 min (77%) against a
usual 35%", and the evidence against its threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MINUTES_PER_WEEK",
    "OVERSHOOT",
    "Reference",
    "ShareSpikeParams",
    "ShareSpikeTest",
    "ShareVerdict",
    "expected_false_alarms_per_week",
    "reference_time_constant",
    "target_share",
    "threshold",
]

MINUTES_PER_WEEK = 7 * 24 * 60
OVERSHOOT = 1.0
"""``c`` of ``h' = h + c·σ`` in the threshold (see the module docstring). Fitted ARLs of Bernoulli
CUSUMs give 1.0 to 1.9 (1.166 for normal steps); the low end errs towards fewer false alarms."""
MIN_THRESHOLD = 1.0
"""The threshold never goes below 1 nat, whatever the budget."""
SILENCE_RELEASE: float | None = 20.0
"""Default of :attr:`ShareSpikeParams.silence_release`, chosen by leave-one-volume-out
cross-validation on ``bench/spikes.py`` (docs/rules.md, "When a brand falls silent")."""
SHARE_FLOOR = 1e-4
SHARE_CEILING = 1.0 - 1e-4
_MINUTE = timedelta(minutes=1)


class ShareSpikeParams(BaseModel):
    """Parameters of the share test (a share rule's ``params:`` mapping in YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    odds_ratio: float = Field(default=2.0, gt=1.0, le=100.0)
    """The rise the test is tuned to: the usual share's odds times this (2.0: 35% → 52%)."""
    min_rise: float = Field(default=0.0, ge=0.0, lt=1.0)
    """... and at least this much above the usual share (absolute), for rare hits."""
    false_alarms_per_week: float = Field(default=0.5, gt=0.0, le=100.0)
    """The budget the threshold is derived from, on a calm stream at the brand's volume."""
    release: float = Field(default=3.0, gt=0.0, le=50.0)
    """Nats of evidence for the usual share, counted from the threshold, that end an alarm."""
    baseline_margin: float = Field(default=1.0, ge=0.0, le=5.0)
    """Standard errors of the baseline share added to it before it is tested against."""
    min_baseline_mentions: float = Field(default=200.0, ge=1.0)
    """Mentions (decayed) the baseline must hold before any verdict."""
    baseline_mentions: float = Field(default=2000.0, ge=0.0)
    """A flat baseline remembers at least this many mentions (see
    :func:`reference_time_constant`): days for a quiet brand, hours for a loud one."""
    silence_release: float | None = Field(default=SILENCE_RELEASE, gt=0.0)
    """An alarm also ends once the brand has been silent for as long as its usual rate expects
    this many mentions in (``None``: only calm mentions end it). A share needs mentions: without
    them there is nothing left to be raised, and the silence itself is a change the test does
    not weigh (a volume rule does)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A brand's usual share, from a baseline's exponentially weighted sums."""

    share: float
    """Usual share of hits (smoothed: never exactly 0 or 1)."""
    mentions: float
    """Mentions the share is estimated from (the decayed count)."""
    rate_per_minute: float
    """Usual mentions per minute."""

    @classmethod
    def from_sums(cls, hits: float, count: float, weight: float) -> Self:
        """From ``streams.windows.Baseline`` sums: decayed hits and mentions, decayed minutes."""
        share = (hits + 0.5) / (count + 1.0)
        rate = count / weight if weight > 0.0 else 0.0
        return cls(share=share, mentions=count, rate_per_minute=rate)


def _clamp(share: float) -> float:
    return min(SHARE_CEILING, max(SHARE_FLOOR, share))


def target_share(usual: float, params: ShareSpikeParams) -> float:
    """``p1``: the share the test is tuned to, for a usual share ``usual``."""
    odds = usual / (1.0 - usual) * params.odds_ratio
    return _clamp(max(odds / (1.0 + odds), usual + params.min_rise))


def _kl(p: float, q: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(q) from Bernoulli(p), in nats."""
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def _step_sigma(p0: float, p1: float, rate_per_minute: float) -> float:
    """Standard deviation of one step's increment under ``p0`` (a minute holding at least one
    mention: below one mention a minute the steps are single mentions)."""
    a = math.log(p1 / p0)
    b = math.log((1.0 - p1) / (1.0 - p0))
    per_mention = p0 * a * a + (1.0 - p0) * b * b
    return math.sqrt(max(rate_per_minute, 1.0) * per_mention)


def threshold(p0: float, p1: float, rate_per_minute: float, false_alarms_per_week: float) -> float:
    """Evidence (nats) at which the test alarms, for about ``false_alarms_per_week`` false alarms
    a week on a calm stream of ``rate_per_minute`` mentions a minute with share ``p0``.

    Solves ``(e^h' − h' − 1) / KL(p0‖p1) = mentions a week / budget`` for ``h'`` and subtracts the
    overshoot correction ``OVERSHOOT·σ`` (see the module docstring); at least ``MIN_THRESHOLD``.
    """
    mentions = max(rate_per_minute, 1e-9) * MINUTES_PER_WEEK
    target = mentions * _kl(p0, p1) / false_alarms_per_week
    shifted = math.log1p(target)
    for _ in range(50):  # fixed point of h' = ln(1 + target + h'); converges in a few rounds
        nxt = math.log1p(target + shifted)
        if abs(nxt - shifted) < 1e-9:
            break
        shifted = nxt
    return max(MIN_THRESHOLD, shifted - OVERSHOOT * _step_sigma(p0, p1, rate_per_minute))


def expected_false_alarms_per_week(h: float, p0: float, p1: float, rate_per_minute: float) -> float:
    """The inverse of :func:`threshold`: false alarms a week a calm stream gives at threshold
    ``h`` (Siegmund's approximation with the same overshoot correction)."""
    shifted = h + OVERSHOOT * _step_sigma(p0, p1, rate_per_minute)
    arl0 = math.expm1(shifted) - shifted
    return rate_per_minute * MINUTES_PER_WEEK * _kl(p0, p1) / max(arl0, 1e-300)


def reference_time_constant(
    mentions: int,
    *,
    base: timedelta,
    min_mentions: float = 2000.0,
    longest: timedelta = timedelta(days=7),
) -> timedelta:
    """Time constant with which a minute holding ``mentions`` mentions is folded into a share
    baseline, so that it forgets by mentions rather than by minutes.

    A minute of ``n`` mentions decays the baseline by ``n / min_mentions`` (it remembers about
    ``min_mentions`` mentions), but never faster than ``base`` (a loud brand: hours) nor slower
    than ``longest`` (a silent minute; a silent week costs a share of ``1 − e^-1`` of the
    memory). A quiet brand's usual share is then known to a point or two (2,000 mentions: ±1
    point at 35%) rather than guessed from the last few hours."""
    if mentions <= 0 or min_mentions >= mentions * (longest / _MINUTE):
        return max(base, longest)
    return max(base, timedelta(minutes=min_mentions / mentions))


@dataclass(frozen=True, slots=True)
class ShareVerdict:
    """The test's verdict after one closed minute, with what an alert needs to explain it."""

    condition: bool
    """In alarm: the share has risen (the rule's condition)."""
    evidence: float
    """``S``, nats of evidence for the raised share over the run."""
    threshold: float
    """``h`` for this minute (0 while warming up)."""
    usual: float
    """``p0`` tested against: the baseline share plus its margin."""
    baseline: float
    """The baseline share itself."""
    target: float
    """``p1``: the raised share the test is tuned to."""
    run_mentions: int
    run_hits: int
    run_since: datetime | None
    """Start of the run (the first minute of the current rise), None when ``evidence`` is 0."""
    peak_evidence: float
    """The most evidence the run reached, had it not been capped: how strong it is."""
    end: datetime
    """End of the minute judged."""
    warm: bool
    """The baseline holds enough mentions for a verdict."""
    false_alarms_per_week: float
    """The budget ``threshold`` was derived from."""

    @property
    def elevated(self) -> bool:
        """Evidence of at least half the threshold (an incident's recovery band): a calm stream's
        evidence is above 0 about half the time, above ``h / 2`` seldom."""
        return self.warm and self.evidence >= self.threshold / 2.0

    @property
    def run_share(self) -> float | None:
        """Share of hits in the run."""
        return self.run_hits / self.run_mentions if self.run_mentions else None

    @property
    def run_minutes(self) -> int:
        return 0 if self.run_since is None else int((self.end - self.run_since) / _MINUTE)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable copy (for the episode a test remembers)."""
        return {
            "condition": self.condition,
            "evidence": self.evidence,
            "threshold": self.threshold,
            "usual": self.usual,
            "baseline": self.baseline,
            "target": self.target,
            "run_mentions": self.run_mentions,
            "run_hits": self.run_hits,
            "run_since": None if self.run_since is None else self.run_since.isoformat(),
            "peak_evidence": self.peak_evidence,
            "end": self.end.isoformat(),
            "warm": self.warm,
            "false_alarms_per_week": self.false_alarms_per_week,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ShareVerdict:
        """The verdict ``to_state`` copied."""
        since = state.get("run_since")
        return cls(
            condition=bool(state["condition"]),
            evidence=float(state["evidence"]),
            threshold=float(state["threshold"]),
            usual=float(state["usual"]),
            baseline=float(state["baseline"]),
            target=float(state["target"]),
            run_mentions=int(state["run_mentions"]),
            run_hits=int(state["run_hits"]),
            run_since=None if since is None else datetime.fromisoformat(since),
            peak_evidence=float(state["peak_evidence"]),
            end=datetime.fromisoformat(state["end"]),
            warm=bool(state["warm"]),
            false_alarms_per_week=float(state["false_alarms_per_week"]),
        )

    @property
    def expected_hits(self) -> float:
        """Hits the run would hold at the usual share."""
        return self.run_mentions * self.baseline

    def explain(self, hits: str = "negative") -> str:
        """One line for an alert: counts, shares, evidence and threshold."""
        if not self.warm:
            return f"warming up: too few mentions in the baseline (usual share {self.baseline:.0%})"
        if self.run_since is None or not self.run_mentions:
            return f"no rise: evidence 0, share at its usual {self.baseline:.0%}"
        share = self.run_share or 0.0
        strength = self.peak_evidence
        return (
            f"{self.run_hits} of {self.run_mentions} mentions {hits} in the last "
            f"{self.run_minutes} min ({share:.0%}) against a usual {self.baseline:.0%}; "
            f"evidence {strength:.1f} (threshold {self.threshold:.1f}; "
            f"likelihood ratio {math.exp(min(strength, 700.0)):.3g}:1 for a rise to "
            f"{self.target:.0%}; threshold set for {self.false_alarms_per_week:g} false alarms "
            f"a week)"
        )


class ShareSpikeTest:
    """The sequential share test of one rule for one brand (see the module docstring).

    ``step`` takes each closed minute in order; minutes without mentions may be skipped (they
    add no evidence, and the silence that can end an alarm is counted from the last minute with
    mentions, so the next minute judged sees it). State round-trips through
    ``to_state``/``from_state`` (JSON).
    """

    def __init__(self, params: ShareSpikeParams) -> None:
        self.params = params
        self.evidence = 0.0
        self.alarm = False
        self.run_since: datetime | None = None
        self.run_mentions = 0
        self.run_hits = 0
        self.capped = 0.0
        """Evidence cut off by the cap in this run (``evidence + capped``: uncapped)."""
        self.peak = 0.0
        self.episode: ShareVerdict | None = None
        """The verdict of the last minute in alarm (the latest episode, for alerts that resolve
        after the run has restarted)."""
        self.heard_until: datetime | None = None
        """End of the last minute with mentions (the silence since then can end an alarm)."""

    def _restart(self) -> None:
        self.evidence = self.capped = self.peak = 0.0
        self.run_since = None
        self.run_mentions = self.run_hits = 0

    def design(self, reference: Reference) -> tuple[float, float]:
        """``(p0, p1)`` for a reference: the share tested against and the share tuned to."""
        margin = self.params.baseline_margin * math.sqrt(
            reference.share * (1.0 - reference.share) / max(reference.mentions, 1.0)
        )
        p0 = _clamp(reference.share + margin)
        return p0, target_share(p0, self.params)

    def step(self, end: datetime, count: int, hits: int, reference: Reference) -> ShareVerdict:
        """Judge the minute ending at ``end`` with ``count`` mentions, ``hits`` of them hits,
        against ``reference`` (the baseline before this minute)."""
        if not 0 <= hits <= count:
            raise ValueError(f"need 0 <= hits <= count, got {hits} of {count}")
        p = self.params
        # The silence an alarm may end on: from the last minute with mentions (or, for a state
        # saved before this was kept, from the first minute judged since) to this minute's start.
        heard = end - _MINUTE if self.heard_until is None else self.heard_until
        if count:
            self.heard_until = end
        elif self.heard_until is None:
            self.heard_until = heard
        p0, p1 = self.design(reference)
        warm = reference.mentions >= p.min_baseline_mentions and p1 > p0
        if not warm:
            # No verdict without a known normal; evidence from before a gap is not carried over.
            self.alarm = False
            self._restart()
            return self._verdict(end, 0.0, p0, p1, reference, warm=False)
        h = threshold(p0, p1, reference.rate_per_minute, p.false_alarms_per_week)
        if self.alarm and self._silent_too_long(heard, end - _MINUTE if count else end, reference):
            # Silent past the release (minutes the engine skipped count too): the alarm ends
            # before this minute's mentions, if any, are weighed.
            self.alarm = False
            self._restart()
        if count:
            step = hits * math.log(p1 / p0) + (count - hits) * math.log((1.0 - p1) / (1.0 - p0))
            evidence = self.evidence + step
            if evidence <= 0.0:
                self._restart()
            else:
                if self.run_since is None:
                    self.run_since = end - _MINUTE
                self.evidence = evidence
                self.peak = max(self.peak, evidence + self.capped)
                self.run_mentions += count
                self.run_hits += hits
        if not self.alarm and self.evidence >= h:
            self.alarm = True
        if self.alarm:
            if self.evidence <= h - p.release:
                self.alarm = False
                self._restart()
            elif self.evidence > h:
                self.capped += self.evidence - h
                self.evidence = h
        verdict = self._verdict(end, h, p0, p1, reference, warm=True)
        if verdict.condition:
            self.episode = verdict
        return verdict

    def _silent_too_long(self, heard: datetime, until: datetime, reference: Reference) -> bool:
        """No mention from ``heard`` to ``until`` for as long as ``reference``'s rate expects
        :attr:`ShareSpikeParams.silence_release` mentions in."""
        release = self.params.silence_release
        if release is None or until <= heard:
            return False
        return (until - heard) / _MINUTE * reference.rate_per_minute >= release

    def describe(self) -> ShareVerdict | None:
        """What an alert should tell: the episode in progress or the latest one."""
        return self.episode

    def _verdict(
        self, end: datetime, h: float, p0: float, p1: float, reference: Reference, *, warm: bool
    ) -> ShareVerdict:
        return ShareVerdict(
            condition=self.alarm,
            evidence=self.evidence,
            threshold=h,
            usual=p0,
            baseline=reference.share,
            target=p1,
            run_mentions=self.run_mentions,
            run_hits=self.run_hits,
            run_since=self.run_since,
            peak_evidence=self.peak,
            end=end,
            warm=warm,
            false_alarms_per_week=self.params.false_alarms_per_week,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable memory of the test."""
        return {
            "evidence": self.evidence,
            "alarm": self.alarm,
            "run_since": None if self.run_since is None else self.run_since.isoformat(),
            "run_mentions": self.run_mentions,
            "run_hits": self.run_hits,
            "capped": self.capped,
            "peak": self.peak,
            "episode": None if self.episode is None else self.episode.to_state(),
            "heard_until": None if self.heard_until is None else self.heard_until.isoformat(),
        }

    @classmethod
    def from_state(cls, params: ShareSpikeParams, state: dict[str, Any]) -> Self:
        """A test with ``params`` that remembers ``state`` (from ``to_state``)."""
        test = cls(params)
        test.evidence = float(state.get("evidence", 0.0))
        test.alarm = bool(state.get("alarm", False))
        since = state.get("run_since")
        test.run_since = None if since is None else datetime.fromisoformat(since)
        test.run_mentions = int(state.get("run_mentions", 0))
        test.run_hits = int(state.get("run_hits", 0))
        test.capped = float(state.get("capped", 0.0))
        test.peak = float(state.get("peak", 0.0))
        episode = state.get("episode")
        test.episode = None if episode is None else ShareVerdict.from_state(episode)
        heard = state.get("heard_until")
        test.heard_until = None if heard is None else datetime.fromisoformat(heard)
        return test
