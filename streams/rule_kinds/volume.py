"""``volume_surge``: mention volume far above its baseline, judged by the volume-surge detector.

Each closed minute, the count of the rule's window goes through the detector of its baseline slot
(:mod:`streams.detectors`), whose verdict is the condition. The detector keeps its own state in
``RuleState.detectors``, so this kind does not feed the window baselines. The worker steps every
brand every minute, so the detectors themselves are kept alive between minutes
(:class:`LiveDetectors`) instead of being rebuilt from that state each time.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from streams.detectors import Detection, VolumeSurgeDetector, VolumeSurgeParams
from streams.rule_kinds.base import BrandRule, Verdict
from streams.state import RuleState
from streams.windows import MINUTE, WindowView, slot_of
from streams.yamlfile import Duration

__all__ = ["LIVE_DETECTORS", "MAX_ZERO_STEPS", "LiveDetectors", "VolumeSurgeRule"]

MAX_ZERO_STEPS = 7 * 24 * 60
"""Silent minutes a volume detector is stepped through after a long gap (a week at most)."""
LIVE_DETECTORS = 4096
"""Detectors kept alive (brand rule states x slots), least recently used dropped first."""


class LiveDetectors:
    """Detectors kept alive between a brand's minutes, so the worker does not rebuild one from
    its JSON state (``RuleState.detectors``) every minute.

    An entry is the state a detector last wrote and the detector itself, keyed by the identity
    of the rule state and the slot. It is used only while the rule state still holds that very
    state object (a state read back from the changelog, restored or copied holds another object,
    and the detector is rebuilt from it) and the parameters are the same, so the verdicts and the
    states written are exactly those of a detector rebuilt every minute.
    """

    def __init__(self, size: int = LIVE_DETECTORS) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, int], tuple[dict[str, Any], VolumeSurgeDetector]]
        self._entries = OrderedDict()

    def get(
        self, rs: RuleState, slot: int, params: VolumeSurgeParams
    ) -> VolumeSurgeDetector | None:
        """The live detector of ``rs``'s ``slot`` if it is the one that wrote its state."""
        key = (id(rs), slot)
        entry = self._entries.get(key)
        if entry is None:
            return None
        state, detector = entry
        if rs.detectors.get(str(slot)) is not state or (
            detector.params is not params and detector.params != params
        ):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return detector

    def put(self, rs: RuleState, slot: int, detector: VolumeSurgeDetector) -> None:
        """Store ``detector``'s state in ``rs`` and keep the detector alive with it."""
        state = detector.to_state()
        rs.detectors[str(slot)] = state
        key = (id(rs), slot)
        self._entries[key] = (state, detector)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


_LIVE = LiveDetectors()


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
        live = _LIVE.get(rs, slot, self.params)
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
        _LIVE.put(rs, slot, detector)
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
            _LIVE.put(rs, slot, detector)

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
