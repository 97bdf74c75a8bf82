"""The rule-kind interface: every kind of alert rule is one class with the same few methods.

A rule kind is a frozen pydantic model (its YAML fields, validated) that also knows how to judge
itself, as Prometheus's ``Rule.Eval`` does. The engine (:mod:`streams.engine`) only loops: at each
closed minute it computes the window sums a brand rule sees and asks the rule for a
:class:`Verdict`; the state machine every brand rule shares (:mod:`streams.alert_lifecycle`) turns
verdicts into alerts and incidents. A brand-level kind implements

- :meth:`BrandRule.evaluate` — given the closed minutes it sees (a :class:`WindowView`: sums over
  any span, e.g. its ``window``), the value, its baseline, whether the condition holds, whether
  the value is outside the baseline band (for incident recovery);
- :meth:`BrandRule.format_value` — how ``{{ value }}`` and ``{{ baseline }}`` read in annotations;
- :meth:`BrandRule.worse` — the severity ordering, for an episode's and an incident's peak;
- :attr:`BrandRule.feeds_baseline` — whether minutes leaving the window feed the rule's seasonal
  baseline (kinds with a detector of their own keep their state in ``RuleState.detectors``);
- :meth:`BrandRule.pass_silence` — what a long silent stretch does to the kind's own state;
- :meth:`BrandRule.baseline_memory` — the time constant a minute is fed into the rule's baseline
  with (the engine's by default);
- :meth:`RuleBase.problems` — checks across fields, reported by the loader as ``file:line: reason``.

A verdict may carry ``facts``: the kind's evidence as annotation template values beyond
``brand``, ``value`` and ``baseline`` (e.g. ``{{ evidence }}`` of a volume surge: count against
expected, z-score, the same hour on the last days; ``{{ hits }} of {{ mentions }}`` of a share
spike), computed only when an alert is written; a kind lists the names in its ``placeholders``, so
rule files are checked at load.

A new kind is one subclass and its tests, plus one line in :data:`streams.rule_kinds.KINDS`.
Customer-level kinds (:class:`streams.rule_kinds.customer.CustomerAtRiskRule`) are judged by
:class:`streams.customers.CustomerTracker` on a customer's risk score.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from streams.records import Mention
from streams.state import RuleState
from streams.windows import Baseline, WindowView
from streams.yamlfile import Duration

__all__ = [
    "DEFAULT_SEVERITY",
    "LIVE_DETECTORS",
    "BaselineSpec",
    "BrandRule",
    "LiveDetectors",
    "RuleBase",
    "Segments",
    "Verdict",
    "format_share",
    "render_template",
]

DEFAULT_SEVERITY = "warning"

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace ``{{ name }}`` placeholders; names were checked at load time."""
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def template_variables(template: str) -> Iterator[str]:
    """The placeholder names a template uses, in order."""
    for match in _PLACEHOLDER_RE.finditer(template):
        yield match.group(1)


def format_share(value: float | None) -> str:
    """A share as a whole percentage (``n/a`` for none)."""
    return "n/a" if value is None else f"{value:.0%}"


Problem = tuple[tuple[object, ...], str]
"""A load-time problem: the path of the field it concerns (for its line) and the reason."""


LIVE_DETECTORS = 4096
"""Detectors kept alive (brand rule states x slots), least recently used dropped first."""


class LiveDetector(Protocol):
    """What :class:`LiveDetectors` keeps: a detector with parameters and a JSON state."""

    @property
    def params(self) -> object: ...

    def to_state(self) -> dict[str, Any]: ...


_Detector = TypeVar("_Detector", bound=LiveDetector)


class LiveDetectors(Generic[_Detector]):
    """Detectors kept alive between a brand's minutes, so the worker does not rebuild one from
    its JSON state (``RuleState.detectors``) every minute.

    An entry is the state a detector last wrote and the detector itself, keyed by the identity
    of the rule state and the detector's key in ``RuleState.detectors`` (a volume surge's baseline
    slot, a share kind's ``"share"``). It is used only while the rule state still holds that very
    state object (a state read back from the changelog, restored or copied holds another object,
    and the detector is rebuilt from it) and the parameters are the same, so the verdicts and the
    states written are exactly those of a detector rebuilt every minute.
    """

    def __init__(self, size: int = LIVE_DETECTORS) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, str], tuple[dict[str, Any], _Detector]]
        self._entries = OrderedDict()

    def get(self, rs: RuleState, key: str, params: object) -> _Detector | None:
        """The live detector under ``rs.detectors[key]`` if it is the one that wrote it."""
        place = (id(rs), key)
        entry = self._entries.get(place)
        if entry is None:
            return None
        state, detector = entry
        if rs.detectors.get(key) is not state or (
            detector.params is not params and detector.params != params
        ):
            del self._entries[place]
            return None
        self._entries.move_to_end(place)
        return detector

    def put(self, rs: RuleState, key: str, detector: _Detector) -> None:
        """Store ``detector``'s state in ``rs.detectors[key]`` and keep the detector alive
        with it."""
        state = detector.to_state()
        rs.detectors[key] = state
        place = (id(rs), key)
        self._entries[place] = (state, detector)
        self._entries.move_to_end(place)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class RuleBase(BaseModel):
    """What every rule has: its alert name, labels and annotation templates."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=100)
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}

    if TYPE_CHECKING:
        kind: str
        """Every kind declares it as a ``Literal`` of its YAML name."""

    placeholders: ClassVar[frozenset[str]] = frozenset()
    """Template variables its annotations may use."""

    def applies_to(self, brand: str) -> bool:
        """Whether the rule is evaluated for ``brand`` at all."""
        return True

    def problems(self) -> Iterator[Problem]:
        """Checks across fields, after validation; the loader reports the first one."""
        return iter(())


class Segments(BaseModel):
    """Segment scoping: a mention matches when each listed label is one of the given values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product: tuple[str, ...] | None = None
    region: tuple[str, ...] | None = None
    channel: tuple[str, ...] | None = None


class BaselineSpec(BaseModel):
    """How a rule's baseline follows time: ``flat`` or one slot per ``hour_of_week`` (168)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seasonality: Literal["flat", "hour_of_week"] = "flat"


def no_facts() -> dict[str, str]:
    """The facts of a kind that has none beyond value and baseline."""
    return {}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One brand rule's evaluation at one closed minute."""

    value: float
    baseline: float | None
    condition: bool
    """The rule's condition, with its kind's guards (volume, warm-up); ``for`` etc. come after."""
    elevated: bool
    """Outside the baseline band (for incident recovery), guards aside."""
    facts: Callable[[], dict[str, str]] = no_facts
    """The kind's evidence as annotation template values, computed only for an alert."""


class BrandRule(RuleBase):
    """Base of every brand-level kind: scoping, the guards every kind shares, the interface."""

    window: Duration = timedelta(minutes=15)
    min_volume: int = Field(default=0, ge=0)
    """Mentions the window must hold before the condition can be true."""
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    cooldown: Duration = timedelta(0)
    warmup: Duration = timedelta(hours=2)
    warmup_volume: int = Field(default=100, ge=0)
    recovery: Duration = timedelta(minutes=30)
    """An incident has recovered once the metric stayed inside its baseline band this long."""
    baseline: BaselineSpec = BaselineSpec()
    brands: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    segments: Segments | None = None
    placeholders: ClassVar[frozenset[str]] = frozenset({"brand", "value", "baseline"})

    feeds_baseline: ClassVar[bool] = True
    """Whether minutes leaving the window feed ``RuleState.baselines`` while the rule is
    inactive."""

    # --- the interface --------------------------------------------------------------------------

    def evaluate(self, rs: RuleState, window: WindowView) -> Verdict:
        """Judge the closed minutes ending at ``window.end``; ``window.sums(n)`` gives the sums of
        the last ``n`` of them (the rule's ``window_minutes`` for most kinds).

        May update the kind's own part of ``rs`` (baselines slots, detector state).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate")

    def format_value(self, value: float | None) -> str:
        """``{{ value }}`` / ``{{ baseline }}`` as a reader sees them (a share by default)."""
        return format_share(value)

    def worse(self, value: float, than: float) -> bool:
        """Whether ``value`` is a worse reading than ``than`` (higher, by default)."""
        return value > than

    def pass_silence(self, rs: RuleState, start: datetime, resume: datetime) -> None:
        """The minutes from ``start`` to ``resume`` held no mention at all and were skipped in
        one step: bring the kind's own state (a detector) up to ``resume``. Nothing by default."""

    @property
    def silence_may_fire(self) -> bool:
        """Whether minutes without any mention could make the condition true (a drop in volume):
        the engine then closes a silence minute by minute while a brand has customers on watch,
        as it did before it skipped such silences. False by default."""
        return False

    def baseline_memory(
        self, default: timedelta, slots: list[Baseline], mentions: int
    ) -> timedelta:
        """Time constant with which a minute holding ``mentions`` mentions of the rule's scope
        (0: silent, also for skipped silences) is fed into the rule's baseline ``slots``;
        ``default`` is the engine's ``baseline_time_constant``."""
        return default

    # --- shared by every brand kind -------------------------------------------------------------

    @property
    def window_minutes(self) -> int:
        return int(self.window.total_seconds() // 60)

    @property
    def scope_key(self) -> str:
        """Identity of the mentions this rule sees ("" when it sees every mention of a brand)."""
        if self.sources is None and self.segments is None:
            return ""
        return json.dumps(
            {
                "sources": self.sources,
                "segments": None if self.segments is None else self.segments.model_dump(),
            },
            sort_keys=True,
        )

    def scope_matcher(self) -> Callable[[Mention], bool]:
        """Whether a mention is in this rule's scope (sources and segments)."""
        sources = frozenset(self.sources) if self.sources is not None else None
        wanted: list[tuple[str, frozenset[str]]] = []
        if self.segments is not None:
            for name in ("product", "region", "channel"):
                values = getattr(self.segments, name)
                if values is not None:
                    wanted.append((name, frozenset(values)))

        def matches(mention: Mention) -> bool:
            if sources is not None and mention.source not in sources:
                return False
            segment = mention.segment
            return all(getattr(segment, name) in values for name, values in wanted)

        return matches

    def applies_to(self, brand: str) -> bool:
        return self.brands is None or brand in self.brands

    def alert_labels(self, brand: str) -> dict[str, str]:
        """The labels of this rule's alerts and incidents for ``brand`` (identity: fingerprint)."""
        return {
            "severity": DEFAULT_SEVERITY,
            **self.labels,
            "alertname": self.alert,
            "brand": brand,
        }

    def problems(self) -> Iterator[Problem]:
        if self.window < timedelta(minutes=1) or self.window.total_seconds() % 60:
            yield ("window",), "window must be a whole number of minutes"
        elif self.window > timedelta(hours=24):
            yield ("window",), "window longer than 24h"
