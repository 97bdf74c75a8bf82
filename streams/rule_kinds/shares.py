"""Share-spike kinds: the share of a brand's mentions that are negative (or unheard) has risen.

``sentiment_spike`` watches the negative share, ``empathy_deficit`` the share of mentions with
empathy-deficit phrases ("nobody answers", "no one cares"); both are judged the same way, by
:class:`ShareSpikeRule`: each closed minute's mentions go through the sequential test of
:mod:`streams.share_spike` against the rule's own baseline share, so a brand with a few mentions an
hour accumulates evidence over hours and one with thousands reacts within minutes, at the same
false-alarm budget per brand-week (``params.false_alarms_per_week``).

The test's alarm is the condition; ``for``, ``keep_firing_for``, ``cooldown``, ``warmup`` and
the ``hour_of_week`` baseline work on top of it as for every kind. The alarm ends when calm
mentions bring the evidence down (``params.release``) or when the brand falls silent for as long
as its usual rate expects ``params.silence_release`` mentions in: a share needs mentions, and a
brand nobody mentions any more is not having a negative-share spike (a volume rule is what
watches a silence). The alert then resolves after ``keep_firing_for`` and its incident recovers,
so the engine goes back to skipping the silent minutes instead of closing each one.

``window`` is the span the alert's example mentions come from. The keys of the fixed-window
condition these kinds had before (``min_volume``, ``min_negative_share``, ``min_share``,
``min_increase``) are rejected at load with what replaces them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar, Literal

from streams.rule_kinds.base import BrandRule, LiveDetectors, Problem, Verdict, format_share
from streams.share_spike import (
    Reference,
    ShareSpikeParams,
    ShareSpikeTest,
    reference_time_constant,
)
from streams.state import RuleState
from streams.windows import (
    MINUTE,
    Baseline,
    WindowStats,
    WindowView,
    slot_of,
)
from streams.yamlfile import Duration

__all__ = ["EmpathyDeficitRule", "SentimentSpikeRule", "ShareSpikeRule"]

STATE_KEY = "share"
"""Where the test's state lives in ``RuleState.detectors``."""
_LIVE: LiveDetectors[ShareSpikeTest] = LiveDetectors()
"""The tests kept alive between a brand's minutes (instead of rebuilt from their state)."""

_RETIRED = {
    "min_volume": "the test weighs every mention's evidence itself, at any volume; remove it "
    "(params.min_baseline_mentions sets how much history it needs)",
    "min_increase": "use params.min_rise (the least rise, absolute, the test is tuned to) and "
    "params.odds_ratio (the relative rise)",
    "min_negative_share": "the test fires on a rise above the brand's own usual share; set the "
    "rise with params.odds_ratio and params.min_rise",
    "min_share": "the test fires on a rise above the brand's own usual share; set the rise with "
    "params.odds_ratio and params.min_rise",
}


class ShareSpikeRule(BrandRule):
    """A share of the brand's mentions above its usual share, by the sequential test of
    :mod:`streams.share_spike` (parameters: ``params``)."""

    window: Duration = timedelta(minutes=30)
    """The span the alert's example mentions come from."""
    params: ShareSpikeParams = ShareSpikeParams()
    min_increase: float | None = None
    """Retired (the fixed-window condition): rejected at load, see :data:`_RETIRED`."""

    hits_name: ClassVar[str] = "hits"
    """How the explanation names a hit ("negative")."""
    placeholders: ClassVar[frozenset[str]] = BrandRule.placeholders | {
        "mentions",
        "hits",
        "share",
        "expected",
        "minutes",
        "since",
        "evidence",
        "threshold",
        "explanation",
    }

    def hits(self, sums: WindowStats | Baseline) -> float:
        """The hits (negative or deficit mentions) among ``sums``."""
        raise NotImplementedError

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        for key, replacement in _RETIRED.items():
            if key in self.model_fields_set and (key != "min_volume" or self.min_volume):
                yield (key,), f"{key} is no longer used by {self.kind}: {replacement}"

    def baseline_memory(
        self, default: timedelta, slots: list[Baseline], mentions: int
    ) -> timedelta:
        """A flat baseline forgets by mentions (it remembers about ``params.baseline_mentions``:
        days for a quiet brand, never less than ``default``); hour-of-week slots keep the engine's
        memory (each already spans weeks)."""
        if len(slots) != 1:
            return default
        return reference_time_constant(
            mentions, base=default, min_mentions=self.params.baseline_mentions
        )

    def share_test(self, rs: RuleState) -> ShareSpikeTest:
        """The rule's test as ``rs`` remembers it."""
        return ShareSpikeTest.from_state(self.params, rs.detectors.get(STATE_KEY, {}))

    def evaluate(self, rs: RuleState, window: WindowView) -> Verdict:
        """The test steps on the last closed minute alone; the value a reader sees (alert, incident
        curve) is the share over the rule's ``window``, against the usual share."""
        end = window.end
        seasonality = self.baseline.seasonality
        base = rs.seasonal_baselines(seasonality)[slot_of(seasonality, end - MINUTE)]
        reference = Reference.from_sums(self.hits(base), base.count, base.weight)
        recent = window.sums(self.window_minutes)
        value = self.hits(recent) / recent.count if recent.count else reference.share
        if base.minutes * MINUTE < self.warmup or base.volume < self.warmup_volume:
            return Verdict(
                value,
                reference.share,
                condition=False,
                elevated=False,
                facts=lambda: self.facts(self.share_test(rs)),
            )
        minute = window.sums(1)
        test = _LIVE.get(rs, STATE_KEY, self.params)
        if test is None:
            test = self.share_test(rs)
        verdict = test.step(end, minute.count, int(self.hits(minute)), reference)
        _LIVE.put(rs, STATE_KEY, test)
        return Verdict(
            value,
            reference.share,
            verdict.condition,
            verdict.elevated,
            facts=lambda: self.facts(test),
        )

    def facts(self, test: ShareSpikeTest) -> dict[str, str]:
        """The evidence of the test's episode as annotation template values."""
        episode = test.describe()
        if episode is None:
            return {}
        since = episode.run_since
        return {
            "mentions": str(episode.run_mentions),
            "hits": str(episode.run_hits),
            "expected": f"{episode.expected_hits:.0f}",
            "minutes": str(episode.run_minutes),
            "since": "n/a" if since is None else f"{since:%H:%M} UTC",
            "evidence": f"{episode.peak_evidence:.1f}",
            "share": format_share(episode.run_share),
            "threshold": f"{episode.threshold:.1f}",
            "explanation": episode.explain(self.hits_name),
        }


class SentimentSpikeRule(ShareSpikeRule):
    """The negative share has risen above the brand's usual negative share."""

    kind: Literal["sentiment_spike"]
    min_negative_share: float | None = None
    """Retired: rejected at load."""
    hits_name: ClassVar[str] = "negative"

    def hits(self, sums: WindowStats | Baseline) -> float:
        return sums.negative


class EmpathyDeficitRule(ShareSpikeRule):
    """The share of mentions with empathy-deficit phrases has risen above the brand's usual."""

    kind: Literal["empathy_deficit"]
    min_share: float | None = None
    """Retired: rejected at load."""
    hits_name: ClassVar[str] = "complaining nobody listens"

    def hits(self, sums: WindowStats | Baseline) -> float:
        return sums.deficit
