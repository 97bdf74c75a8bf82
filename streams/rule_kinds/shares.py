"""Share-spike kinds: a share of the window's mentions far above the brand's own baseline share.

``sentiment_spike`` watches the negative share, ``empathy_deficit`` the share of mentions with
empathy-deficit phrases ("nobody answers", "no one cares"); both are judged the same way, by
:class:`ShareSpikeRule`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from streams.rule_kinds.base import BrandRule, Verdict
from streams.state import RuleState
from streams.windows import (
    MINUTE,
    Baseline,
    WindowStats,
    baseline_slots,
    window_baseline,
)
from streams.yamlfile import Duration

__all__ = ["EmpathyDeficitRule", "SentimentSpikeRule", "ShareSpikeRule"]


class ShareSpikeRule(BrandRule):
    """True at a closed minute when the window holds at least ``min_volume`` mentions, its share
    reaches the kind's floor and exceeds the baseline share by ``min_increase`` (absolute), and
    the baseline is warm (``warmup`` of minutes and ``warmup_volume`` mentions)."""

    def share(self, stats: WindowStats) -> float:
        """The window's share this kind watches."""
        raise NotImplementedError

    def base_share(self, baseline: Baseline) -> float | None:
        """The same share in the baseline (None before any mention)."""
        raise NotImplementedError

    @property
    def floor(self) -> float:
        """The least share that may fire, whatever the baseline."""
        raise NotImplementedError

    @property
    def increase(self) -> float:
        """The least absolute increase over the baseline share that may fire."""
        raise NotImplementedError

    def evaluate(self, rs: RuleState, stats: WindowStats, end: datetime) -> Verdict:
        seasonality = self.baseline.seasonality
        rs.baselines = baseline_slots(seasonality, rs.baselines)
        base_sums = window_baseline(seasonality, rs.baselines, end=end, minutes=self.window_minutes)
        warm = base_sums.minutes * MINUTE >= self.warmup and base_sums.volume >= self.warmup_volume
        value, base = self.share(stats), self.base_share(base_sums)
        condition = (
            warm
            and base is not None
            and stats.count >= self.min_volume
            and value >= self.floor
            and value - base >= self.increase
        )
        elevated = base is None or value - base >= self.increase / 2
        return Verdict(value, base, condition, elevated)


class SentimentSpikeRule(ShareSpikeRule):
    """Negative share over a sliding window of closed minutes, against the brand's own baseline:
    at least ``min_negative_share`` and ``min_increase`` above the baseline share."""

    kind: Literal["sentiment_spike"]
    window: Duration
    min_volume: int = Field(ge=1)
    min_negative_share: float = Field(ge=0.0, le=1.0)
    min_increase: float = Field(ge=0.0, le=1.0)

    def share(self, stats: WindowStats) -> float:
        return stats.negative_share

    def base_share(self, baseline: Baseline) -> float | None:
        return baseline.negative_share

    @property
    def floor(self) -> float:
        return self.min_negative_share

    @property
    def increase(self) -> float:
        return self.min_increase


class EmpathyDeficitRule(ShareSpikeRule):
    """Share of mentions with empathy-deficit phrases: at least ``min_share`` and ``min_increase``
    above the baseline share."""

    kind: Literal["empathy_deficit"]
    min_share: float = Field(ge=0.0, le=1.0)
    min_increase: float = Field(ge=0.0, le=1.0)

    def share(self, stats: WindowStats) -> float:
        return stats.deficit_share

    def base_share(self, baseline: Baseline) -> float | None:
        return baseline.deficit_share

    @property
    def floor(self) -> float:
        return self.min_share

    @property
    def increase(self) -> float:
        return self.min_increase
