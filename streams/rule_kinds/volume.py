"""``volume_surge``: mention volume far above its baseline, judged by the volume-surge detector.

Each closed minute, the count of the rule's window goes through the detector of its baseline slot
(:mod:`streams.detectors`), whose verdict is the condition. The detector keeps its own state in
``RuleState.detectors``, so this kind does not feed the window baselines. The worker steps every
brand every minute, so the detectors themselves are kept alive between minutes
(:class:`LiveDetectors`) instead of being rebuilt from that state each time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from streams.detectors import Detection, VolumeSurgeDetector, VolumeSurgeParams
from streams.rule_kinds.base import LIVE_DETECTORS, BrandRule, LiveDetectors, Verdict
from streams.state import RuleState
from streams.windows import MINUTE, WindowView, slot_of
from streams.yamlfile import Duration

__all__ = ["LIVE_DETECTORS", "MAX_ZERO_STEPS", "LiveDetectors", "VolumeSurgeRule"]

MAX_ZERO_STEPS = 7 * 24 * 60
"""Silent minutes a volume detector is stepped through after a long gap (a week at most)."""


_LIVE: LiveDetectors[VolumeSurgeDetector] = LiveDetectors()


def evidence(detection: Detection) -> dict[str, str]:
    """A detection's evidence as annotation template values."""

    def count(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    ratio = detection.ratio
    return {
        "evidence": detection.reason,
        "expected": count(detection.expected),
        "ratio": f"{ratio:.1f}x" if math.isfinite(ratio) else "none expected",
        "z": f"{detection.z:.1f}",
        "same_hour": ", ".join(count(c) for c in detection.same_hour),
        "level_24h": count(detection.level_24h),
    }


class VolumeSurgeRule(BrandRule):
    """Mention volume far above its baseline: each closed minute's count goes through the
    volume-surge detector (``params``), whose verdict is the condition."""

    kind: Literal["volume_surge"]
    window: Duration = timedelta(minutes=1)
    params: VolumeSurgeParams = VolumeSurgeParams()

    feeds_baseline: ClassVar[bool] = False
    placeholders: ClassVar[frozenset[str]] = BrandRule.placeholders | {
        "evidence",
        "expected",
        "ratio",
        "z",
        "same_hour",
        "level_24h",
    }
    """Besides brand, value and baseline: the detector's evidence (``{{ evidence }}`` is one
    sentence with all of it, as ``listenwell detect --explain`` writes it)."""

    def detector(self, rs: RuleState, slot: int) -> VolumeSurgeDetector:
        """The detector of baseline slot ``slot`` as ``rs`` remembers it (new if never used)."""
        live = _LIVE.get(rs, str(slot), self.params)
        if live is not None:
            return live
        stored = rs.detectors.get(str(slot))
        if stored is None:
            return VolumeSurgeDetector(self.params)
        return VolumeSurgeDetector.from_state(self.params, stored)

    def judge(self, value: float, detection: Detection) -> Verdict:
        """The verdict on a count the detector judged."""
        return Verdict(
            value=value,
            baseline=detection.baseline,
            condition=detection.condition and value >= self.min_volume,
            elevated=detection.score >= 0.5,
            facts=lambda: evidence(detection),
        )

    def evaluate(self, rs: RuleState, window: WindowView) -> Verdict:
        stats, end = window.sums(self.window_minutes), window.end
        slot = slot_of(self.baseline.seasonality, end - MINUTE)
        detector = self.detector(rs, slot)
        detection = detector.step(end, float(stats.count))
        _LIVE.put(rs, str(slot), detector)
        return self.judge(float(stats.count), detection)

    def format_value(self, value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    @property
    def silence_may_fire(self) -> bool:
        """A detector watching for collapses may judge zero counts one."""
        return self.params.direction != "up"

    def pass_silence(self, rs: RuleState, start: datetime, resume: datetime) -> None:
        """Show the detectors the silent minutes they would have seen (a zero count each)."""
        minutes = min(int((resume - start) / MINUTE), MAX_ZERO_STEPS)
        first = resume - minutes * MINUTE
        detectors: dict[int, VolumeSurgeDetector] = {}
        for i in range(minutes):
            slot = slot_of(self.baseline.seasonality, first + i * MINUTE)
            detector = detectors.get(slot)
            if detector is None:
                detector = detectors[slot] = self.detector(rs, slot)
            detector.step(first + (i + 1) * MINUTE, 0.0)
        for slot, detector in detectors.items():
            _LIVE.put(rs, str(slot), detector)

    def detect(
        self, counts: Iterable[tuple[datetime, float]]
    ) -> Iterator[tuple[datetime, float, Detection, Verdict]]:
        """The detector's verdicts on a series of bucket counts, each from the rows before it
        (``listenwell detect``); one detector per baseline slot of the rows' timestamps."""
        detectors: dict[int, VolumeSurgeDetector] = {}
        for at, value in counts:
            slot = slot_of(self.baseline.seasonality, at)
            detector = detectors.get(slot)
            if detector is None:
                detector = detectors[slot] = VolumeSurgeDetector(self.params)
            detection = detector.step(at, value)
            yield at, value, detection, self.judge(value, detection)
