"""Causal anomaly detectors for per-bucket mention counts (the ``volume_surge`` rule kind).

A detector sees one closed bucket's count at a time (``step``) and decides from the past only. Its
whole memory is three numbers that round-trip through ``to_state``/``from_state`` (JSON), so the
rule engine keeps it in a brand's state at O(1) cost.

The algorithm (tuned once, with one configuration for every series, on the development series of
the Numenta Anomaly Benchmark in ``../shared/data/nab-dev``; see ``bench/detection.py``):

- counts are compared on a log scale, ``x = log(1 + count)``, so a surge is a *ratio* to normal
  and busy and quiet brands are judged alike;
- the baseline ``level`` is an exponentially weighted mean of ``x`` whose updates are clipped to
  ``clip`` spreads (a Huber-type robust mean: one burst barely moves it);
- the ``spread`` is an exponentially weighted mean absolute deviation (times 1.2533, which makes it
  a standard deviation for normal noise) of residuals clipped to ``scale_clip`` spreads, combined
  with the Poisson noise of a count of that level (``sqrt(b) / (b + 1)`` on the log scale), so a
  brand with 3 mentions a bucket needs a much larger relative jump than one with 3,000;
- a bucket is a surge when its robust z-score ``(x - level) / spread`` reaches ``threshold``, it
  holds at least ``min_volume`` mentions and ``min_ratio`` times the baseline count, after
  ``warmup`` buckets of history;
- and when it is *news*: its excess over the baseline (``x - level``, a log ratio) is at least the
  largest excess seen lately, a running maximum that decays by half every ``novelty_half_life``
  buckets. The second, smaller wave of a story, or the daily peak of a brand that was in the news
  last week, does not page anyone again; a surge larger than anything recent does.

Persistence and suppression (``for``, ``cooldown``) belong to the rule's state machine in the
engine, which the detector's verdicts feed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Detection", "VolumeSurgeDetector", "VolumeSurgeParams"]

_MAD_TO_STD = 1.2533  # sqrt(pi / 2): mean absolute deviation -> standard deviation (normal noise)
_INITIAL_DEV = 0.3


class VolumeSurgeParams(BaseModel):
    """The parameters of a ``volume_surge`` rule (its ``params:`` mapping in YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=3.4, gt=0.0)
    """Robust z-score of ``log(1 + count)`` against the baseline at which a bucket is a surge."""
    min_volume: float = Field(default=5.0, ge=0.0)
    """A bucket with fewer mentions is never a surge, whatever its z-score."""
    min_ratio: float = Field(default=1.5, ge=1.0)
    """... nor one below this multiple of the baseline count."""
    half_life: int = Field(default=864, ge=1)
    """Half-life of the baseline level, in buckets (864 five-minute buckets: 3 days)."""
    scale_half_life: int = Field(default=864, ge=1)
    """Half-life of the baseline spread, in buckets."""
    clip: float = Field(default=3.0, gt=0.0)
    """A bucket moves the level by at most this many spreads (robustness to bursts)."""
    scale_clip: float = Field(default=6.0, gt=0.0)
    """... and the spread by a residual of at most this many spreads."""
    warmup: int = Field(default=288, ge=0)
    """Buckets seen before any bucket may be a surge."""
    novelty_half_life: int = Field(default=4032, ge=0)
    """Half-life, in buckets, of the largest recent excess over the baseline that a surge must
    exceed (4032 five-minute buckets: 14 days); 0 turns the novelty test off."""


@dataclass(frozen=True)
class Detection:
    """The detector's verdict on one bucket."""

    score: float
    """Anomaly score in [0, 1]: ``1 - 2^-(z / threshold)^2`` for a positive z (0.5 at the
    threshold), 0 otherwise."""
    condition: bool
    """Whether this bucket is a surge."""
    baseline: float
    """Expected count for this bucket (from the buckets before it)."""
    reason: str
    """Why: current value, baseline, ratio and z-score against the threshold."""


class VolumeSurgeDetector:
    """Robust exponentially weighted baseline of log counts and a z-score against it.

    ``step`` is causal (the verdict on a bucket uses only earlier buckets) and O(1) in time and
    memory.
    """

    def __init__(self, params: VolumeSurgeParams) -> None:
        self.params = params
        self.level = 0.0
        self.dev = _INITIAL_DEV
        self.seen = 0
        self.peak = 0.0
        """Largest recent excess of ``log(1 + count)`` over the level, decaying."""
        self._alpha = 1.0 - 0.5 ** (1.0 / params.half_life)
        self._beta = 1.0 - 0.5 ** (1.0 / params.scale_half_life)
        self._peak_decay = (
            0.5 ** (1.0 / params.novelty_half_life) if params.novelty_half_life else 0.0
        )

    def spread(self) -> float:
        """Standard deviation of ``log(1 + count)`` the baseline expects (with Poisson noise)."""
        base = math.expm1(self.level)
        return math.sqrt((_MAD_TO_STD * self.dev) ** 2 + base / (base + 1.0) ** 2)

    def step(self, value: float) -> Detection:
        """Judge one closed bucket's count against the past, then learn from it."""
        p = self.params
        x = math.log1p(max(value, 0.0))
        if self.seen == 0:
            self.level, self.dev, self.seen = x, _INITIAL_DEV, 1
            return Detection(
                score=0.0,
                condition=False,
                baseline=value,
                reason=f"warming up (1/{p.warmup} buckets)",
            )
        base = math.expm1(self.level)
        spread = self.spread()
        z = (x - self.level) / spread
        warm = self.seen >= p.warmup
        residual = x - self.level
        news = not p.novelty_half_life or residual >= self.peak
        big = z >= p.threshold and value >= p.min_volume and value >= p.min_ratio * base
        condition = warm and big and news
        score = 0.0 if z <= 0 else 1.0 - 2.0 ** (-((z / p.threshold) ** 2))
        ratio = value / base if base > 0 else math.inf
        facts = f"{value:g} mentions against a baseline of {base:.1f} ({ratio:.1f}x)"
        if not warm:
            reason = f"warming up ({self.seen}/{p.warmup} buckets); {facts}"
        elif condition:
            reason = f"surge: {facts}, robust z {z:.1f} >= {p.threshold:g}"
        elif z < p.threshold:
            reason = f"normal: {facts}, robust z {z:.1f} < {p.threshold:g}"
        elif value < p.min_volume:
            reason = f"too few: {facts}, below min_volume {p.min_volume:g}"
        elif value < p.min_ratio * base:
            reason = f"too small: {facts}, below min_ratio {p.min_ratio:g}"
        else:
            recent = math.exp(self.peak)
            reason = (
                f"not news: {facts}, robust z {z:.1f} >= {p.threshold:g} but a recent surge "
                f"reached {recent:.1f}x its baseline"
            )
        if p.novelty_half_life:
            self.peak = max(self.peak * self._peak_decay, residual)
        self.level += self._alpha * max(-p.clip * spread, min(p.clip * spread, residual))
        self.dev += self._beta * (min(abs(residual), p.scale_clip * spread) - self.dev)
        self.seen += 1
        return Detection(score=round(score, 4), condition=condition, baseline=base, reason=reason)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable memory of the detector."""
        return {"level": self.level, "dev": self.dev, "seen": self.seen, "peak": self.peak}

    @classmethod
    def from_state(cls, params: VolumeSurgeParams, state: dict[str, Any]) -> Self:
        """A detector with ``params`` that remembers ``state`` (from ``to_state``)."""
        detector = cls(params)
        detector.level = float(state.get("level", 0.0))
        detector.dev = float(state.get("dev", _INITIAL_DEV))
        detector.seen = int(state.get("seen", 0))
        detector.peak = float(state.get("peak", 0.0))
        return detector
