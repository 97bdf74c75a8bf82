"""``threshold``: any windowed metric against a fixed value (``metric op value``)."""

from __future__ import annotations

from typing import Literal

from streams.rule_kinds.base import BrandRule, Verdict, format_share
from streams.state import RuleState
from streams.windows import (
    Baseline,
    WindowStats,
    WindowView,
    window_baseline,
)

__all__ = ["Metric", "ThresholdRule"]

Metric = Literal["count", "negative_share", "mean_compound", "deficit_share", "churn_share"]


class ThresholdRule(BrandRule):
    """Any windowed metric against a fixed value: ``metric op value``."""

    kind: Literal["threshold"]
    metric: Metric
    op: Literal[">", "<", ">=", "<="]
    value: float

    def holds(self, metric_value: float) -> bool:
        if self.op == ">":
            return metric_value > self.value
        if self.op == "<":
            return metric_value < self.value
        if self.op == ">=":
            return metric_value >= self.value
        return metric_value <= self.value

    def measure(self, stats: WindowStats) -> float:
        """The window's value of ``metric``."""
        if self.metric == "count":
            return float(stats.count)
        value: float = getattr(stats, self.metric)
        return value

    def expected(self, baseline: Baseline) -> float | None:
        """The baseline's value of ``metric`` (a count scaled to the window)."""
        if self.metric == "count":
            per_minute = baseline.count_per_minute
            return None if per_minute is None else per_minute * self.window_minutes
        value: float | None = getattr(baseline, self.metric)
        return value

    def evaluate(self, rs: RuleState, window: WindowView) -> Verdict:
        stats = window.sums(self.window_minutes)
        seasonality = self.baseline.seasonality
        base_sums = window_baseline(
            seasonality,
            rs.seasonal_baselines(seasonality),
            end=window.end,
            minutes=self.window_minutes,
        )
        value = self.measure(stats)
        condition = stats.count >= self.min_volume and self.holds(value)
        return Verdict(value, self.expected(base_sums), condition, self.holds(value))

    @property
    def silence_may_fire(self) -> bool:
        # Every metric of an empty window is 0.
        return self.min_volume == 0 and self.holds(0.0)

    def format_value(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.metric == "count":
            return f"{value:.0f}"
        if self.metric == "mean_compound":
            return f"{value:.2f}"
        return format_share(value)

    def worse(self, value: float, than: float) -> bool:
        if self.op in ("<", "<="):
            return value < than
        return value > than
