"""Causal anomaly detectors for per-minute mention counts (the ``volume_surge`` rule kind).

A detector sees one closed bucket's count at a time (``step``) and decides from the past only. Its
whole memory round-trips through ``to_state``/``from_state`` (JSON-serialisable), so the rule
engine can keep it in a brand's state.

Note to whoever improves volume detection (issue 8): this first detector is deliberately simple —
an exponentially weighted mean and variance of the counts and a z-score against them. The
*interface* (``VolumeSurgeParams``, ``Detection``, ``VolumeSurgeDetector.step/to_state/from_state``)
is what the engine, ``listenwell rules`` and ``listenwell detect`` rely on; the algorithm inside may
be replaced freely as long as that interface is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Detection", "VolumeSurgeDetector", "VolumeSurgeParams"]


class VolumeSurgeParams(BaseModel):
    """The parameters of a ``volume_surge`` rule (its ``params:`` mapping in YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=4.0, gt=0.0)
    """z-score (counts above the mean, in standard deviations) at which a bucket is a surge."""
    min_volume: float = Field(default=10.0, ge=0.0)
    """A bucket with fewer mentions is never a surge, whatever its z-score."""
    min_ratio: float = Field(default=2.0, ge=1.0)
    """... nor one below this multiple of the baseline mean."""
    half_life: int = Field(default=240, ge=1)
    """Half-life of the baseline, in buckets."""
    warmup: int = Field(default=60, ge=0)
    """Buckets seen before any bucket may be a surge."""


@dataclass(frozen=True)
class Detection:
    """The detector's verdict on one bucket."""

    score: float
    """Anomaly score in [0, 1] (0.5 at half the threshold's z, saturating above it)."""
    condition: bool
    baseline: float
    """Expected count (the mean before this bucket)."""
    reason: str


class VolumeSurgeDetector:
    """EW mean/variance z-score on counts; surges do not feed the baseline at full weight."""

    def __init__(self, params: VolumeSurgeParams) -> None:
        self.params = params
        self.mean = 0.0
        self.var = 0.0
        self.seen = 0
        self._alpha = 1.0 - 0.5 ** (1.0 / params.half_life)

    def step(self, value: float) -> Detection:
        """Judge one bucket's count against the past, then learn from it."""
        p = self.params
        mean, var = self.mean, self.var
        # Poisson floor on the spread: sparse counts are noisy even when the history is flat.
        std = math.sqrt(max(var, mean, 1.0))
        z = (value - mean) / std
        warm = self.seen >= p.warmup
        score = 0.0 if z <= 0 else min(1.0, 1.0 - math.exp(-math.log(2.0) * 2.0 * z / p.threshold))
        ratio_ok = value >= p.min_ratio * mean
        condition = warm and z > p.threshold and value >= p.min_volume and ratio_ok
        if not warm:
            reason = f"warming up ({self.seen}/{p.warmup} buckets)"
        elif condition:
            reason = f"{value:.0f} mentions, z={z:.1f} over a baseline of {mean:.1f}"
        else:
            reason = f"z={z:.1f} (threshold {p.threshold})"
        # Learn: a surge bucket moves the baseline only a little, so a long surge stays a surge.
        alpha = self._alpha * (0.1 if condition else 1.0)
        if self.seen == 0:
            self.mean, self.var = value, 0.0
        else:
            delta = value - mean
            self.mean = mean + alpha * delta
            self.var = (1.0 - alpha) * (var + alpha * delta * delta)
        self.seen += 1
        return Detection(score=round(score, 4), condition=condition, baseline=mean, reason=reason)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable memory of the detector."""
        return {"mean": self.mean, "var": self.var, "seen": self.seen}

    @classmethod
    def from_state(cls, params: VolumeSurgeParams, state: dict[str, Any]) -> Self:
        """A detector with ``params`` that remembers ``state`` (from ``to_state``)."""
        detector = cls(params)
        detector.mean = float(state.get("mean", 0.0))
        detector.var = float(state.get("var", 0.0))
        detector.seen = int(state.get("seen", 0))
        return detector
