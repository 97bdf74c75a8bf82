"""Alert rules: Prometheus-style YAML groups, validated into typed, frozen rule models.

A rule file looks like::

    groups:
      - name: brand-health
        rules:
          - alert: NegativeSentimentSpike
            kind: sentiment_spike
            window: 15m
            ...

Every problem is reported as ``RuleFileError("file:line: reason")`` with the 1-based line of the
offending rule or field, so a reviewer can jump straight to it.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from streams.detectors import VolumeSurgeParams
from streams.yamlfile import LineMap, load_located

__all__ = [
    "BrandRule",
    "CustomerAtRiskRule",
    "EmpathyDeficitRule",
    "Rule",
    "RuleFileError",
    "RuleGroup",
    "RuleSet",
    "SentimentSpikeRule",
    "ThresholdRule",
    "VolumeSurgeRule",
    "lexicon_path",
    "load_lexicon",
    "load_rule_paths",
    "load_rules",
    "parse_duration",
    "parse_lexicon",
    "parse_rules",
    "render_template",
    "rule_files",
]


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message is ``file:line: reason``."""


_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``/``15m``/``2h``/``7d`` (or an existing ``timedelta``) into a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"duration must be a string like 30s, 15m, 2h or 7d, got {value!r}")
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(f"invalid duration {value!r} (use a number and s, m, h or d, e.g. 15m)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace ``{{ name }}`` placeholders; names were checked at load time."""
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=100)
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}

    placeholders: ClassVar[frozenset[str]] = frozenset()
    """Template variables its annotations may use."""


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


class _BrandRuleBase(_RuleBase):
    """Scoping and the guards every brand-level kind shares."""

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

    def applies_to(self, brand: str) -> bool:
        return self.brands is None or brand in self.brands


class SentimentSpikeRule(_BrandRuleBase):
    """Negative share over a sliding window of closed minutes, against the brand's own baseline.

    True at a closed minute when the window holds at least ``min_volume`` mentions, its negative
    share is at least ``min_negative_share`` and exceeds the baseline share by ``min_increase``
    (absolute), and the baseline is warm (``warmup`` of minutes and ``warmup_volume`` mentions).
    """

    kind: Literal["sentiment_spike"]
    window: Duration
    min_volume: int = Field(ge=1)
    min_negative_share: float = Field(ge=0.0, le=1.0)
    min_increase: float = Field(ge=0.0, le=1.0)


class EmpathyDeficitRule(_BrandRuleBase):
    """Share of mentions with empathy-deficit phrases ("nobody answers", "no one cares", ...).

    True when the window's deficit share is at least ``min_share`` and exceeds the baseline share
    by ``min_increase`` (absolute), with the common guards.
    """

    kind: Literal["empathy_deficit"]
    min_share: float = Field(ge=0.0, le=1.0)
    min_increase: float = Field(ge=0.0, le=1.0)


class VolumeSurgeRule(_BrandRuleBase):
    """Mention volume far above its baseline: each closed minute's count goes through the
    volume-surge detector (``params``), whose verdict is the condition."""

    kind: Literal["volume_surge"]
    window: Duration = timedelta(minutes=1)
    params: VolumeSurgeParams = VolumeSurgeParams()


Metric = Literal["count", "negative_share", "mean_compound", "deficit_share", "churn_share"]


class ThresholdRule(_BrandRuleBase):
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


class CustomerAtRiskRule(_RuleBase):
    """A customer whose risk score (0-100) reaches ``fire_at``; resolves below ``resolve_below``."""

    kind: Literal["customer_at_risk"]
    lookback: Duration = timedelta(days=7)
    fire_at: float = Field(ge=0.0, le=100.0)
    resolve_below: float = Field(ge=0.0, le=100.0)
    min_mentions: int = Field(default=1, ge=1)
    """The minimum volume: mentions of the customer within ``lookback``."""
    for_: Duration = Field(default=timedelta(0), alias="for")
    """The score stays at or above ``fire_at`` this long before firing (re-checked when the
    customer is re-scored: at each mention and every 15 minutes while watched)."""
    keep_firing_for: Duration = timedelta(0)
    cooldown: Duration = timedelta(0)
    brands: tuple[str, ...] | None = None
    placeholders: ClassVar[frozenset[str]] = frozenset({"brand", "customer", "value"})

    def applies_to(self, brand: str) -> bool:
        return self.brands is None or brand in self.brands


BrandRule = SentimentSpikeRule | EmpathyDeficitRule | VolumeSurgeRule | ThresholdRule
Rule = (
    SentimentSpikeRule | EmpathyDeficitRule | VolumeSurgeRule | ThresholdRule | CustomerAtRiskRule
)
_KINDS: dict[str, type[Rule]] = {
    "sentiment_spike": SentimentSpikeRule,
    "empathy_deficit": EmpathyDeficitRule,
    "volume_surge": VolumeSurgeRule,
    "threshold": ThresholdRule,
    "customer_at_risk": CustomerAtRiskRule,
}


class RuleGroup(BaseModel):
    """A named group of rules, as in Prometheus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rules: tuple[Rule, ...]


class RuleSet(BaseModel):
    """Every rule of a rule file, in file order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[RuleGroup, ...]
    source: str = "<string>"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for group in self.groups for rule in group.rules)

    @property
    def spike_rules(self) -> tuple[SentimentSpikeRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, SentimentSpikeRule))

    @property
    def brand_rules(self) -> tuple[BrandRule, ...]:
        return tuple(r for r in self.rules if not isinstance(r, CustomerAtRiskRule))

    @property
    def customer_rules(self) -> tuple[CustomerAtRiskRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, CustomerAtRiskRule))


# --- line-aware loading -------------------------------------------------------------------------


def _validation_reason(exc: ValidationError) -> tuple[tuple[object, ...], str]:
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc)
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return loc, f"{where}: {message}" if where else message


def _check_templates(rule: Rule, loc: LineMap, file: str) -> None:
    for name, template in rule.annotations.items():
        for match in _PLACEHOLDER_RE.finditer(template):
            var = match.group(1)
            if var not in rule.placeholders:
                known = ", ".join(sorted(rule.placeholders))
                line = loc.line_of(("annotations", name))
                raise RuleFileError(
                    f"{file}:{line}: unknown template variable {{{{ {var} }}}} in annotation "
                    f"{name!r} of {rule.alert} (known for {rule.kind}: {known})"
                )


def _parse_rule(raw: object, loc: LineMap, file: str) -> Rule:
    if not isinstance(raw, dict):
        raise RuleFileError(f"{file}:{loc.line}: a rule must be a mapping")
    if "alert" not in raw:
        raise RuleFileError(f"{file}:{loc.line}: rule has no 'alert' name")
    kind = raw.get("kind")
    if kind is None:
        raise RuleFileError(f"{file}:{loc.line}: rule {raw['alert']!r} has no 'kind'")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(_KINDS))
        raise RuleFileError(
            f"{file}:{loc.line_of(('kind',))}: unknown rule kind {kind!r} (known: {known})"
        )
    try:
        rule = model.model_validate(raw)
    except ValidationError as exc:
        path, reason = _validation_reason(exc)
        raise RuleFileError(f"{file}:{loc.line_of(path)}: {reason}") from None
    if not isinstance(rule, CustomerAtRiskRule):
        if rule.window < timedelta(minutes=1) or rule.window.total_seconds() % 60:
            line = loc.line_of(("window",))
            raise RuleFileError(f"{file}:{line}: window must be a whole number of minutes")
        if rule.window > timedelta(hours=24):
            raise RuleFileError(f"{file}:{loc.line_of(('window',))}: window longer than 24h")
    if isinstance(rule, CustomerAtRiskRule) and rule.resolve_below > rule.fire_at:
        line = loc.line_of(("resolve_below",))
        raise RuleFileError(f"{file}:{line}: resolve_below must not exceed fire_at")
    _check_templates(rule, loc, file)
    return rule


def parse_rules(text: str, file: str = "<string>") -> RuleSet:
    """Parse and validate rule YAML; raises ``RuleFileError`` with ``file:line: reason``."""
    data, root_loc = load_located(
        text, file, RuleFileError, empty="empty rule file (expected 'groups:')"
    )

    if not isinstance(data, dict) or set(data) != {"groups"}:
        raise RuleFileError(f"{file}:{root_loc.line}: expected a mapping with only 'groups'")
    groups_loc = root_loc.children["groups"]
    if not isinstance(data["groups"], list):
        raise RuleFileError(f"{file}:{groups_loc.line}: 'groups' must be a list")
    groups: list[RuleGroup] = []
    seen: dict[str, int] = {}
    for gi, raw_group in enumerate(data["groups"]):
        group_loc = groups_loc.children[gi]
        if not isinstance(raw_group, dict):
            raise RuleFileError(f"{file}:{group_loc.line}: a group must be a mapping")
        unknown = set(raw_group) - {"name", "rules"}
        if unknown:
            key = sorted(map(str, unknown))[0]
            raise RuleFileError(f"{file}:{group_loc.line_of((key,))}: unknown group field {key!r}")
        name = raw_group.get("name")
        if not isinstance(name, str) or not name:
            raise RuleFileError(f"{file}:{group_loc.line}: group has no 'name'")
        raw_rules = raw_group.get("rules")
        if not isinstance(raw_rules, list):
            line = group_loc.line_of(("rules",))
            raise RuleFileError(f"{file}:{line}: group {name!r} needs a 'rules' list")
        rules: list[Rule] = []
        for ri, raw_rule in enumerate(raw_rules):
            rule_loc = group_loc.children["rules"].children[ri]
            rule = _parse_rule(raw_rule, rule_loc, file)
            if rule.alert in seen:
                raise RuleFileError(
                    f"{file}:{rule_loc.line}: duplicate alert {rule.alert!r} "
                    f"(first defined on line {seen[rule.alert]})"
                )
            seen[rule.alert] = rule_loc.line
            rules.append(rule)
        groups.append(RuleGroup(name=name, rules=tuple(rules)))
    return RuleSet(groups=tuple(groups), source=file)


def load_rules(path: Path) -> RuleSet:
    """Load a rule file; raises ``RuleFileError`` (``file:line: reason``) if it is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"{path}:1: cannot read rule file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{path}:1: not UTF-8 text: {exc.reason}") from None
    return parse_rules(text, str(path))


NON_RULE_FILES = frozenset({"lexicon.yaml", "routes.yaml"})
"""YAML files beside the rules that are not rule files."""


def rule_files(path: Path) -> list[Path]:
    """The rule files at ``path``: the file itself, or a folder's ``*.yaml`` (without tests,
    ``lexicon.yaml`` and ``routes.yaml``), sorted."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.glob("*.yaml")
        if p.name not in NON_RULE_FILES and not p.name.endswith(".test.yaml")
    )


def load_rule_paths(path: Path) -> RuleSet:
    """Load a rule file or every rule file of a folder into one ``RuleSet``.

    Alert names must be unique across the files; raises ``RuleFileError``.
    """
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    files = rule_files(path)
    for file in files:
        ruleset = load_rules(file)
        for rule in ruleset.rules:
            if rule.alert in seen:
                raise RuleFileError(
                    f"{file}:1: alert {rule.alert!r} is also defined in {seen[rule.alert]}"
                )
            seen[rule.alert] = str(file)
        groups.extend(ruleset.groups)
    return RuleSet(groups=tuple(groups), source=str(path))


MAX_VALENCE = 4.0


def parse_lexicon(text: str, file: str = "<string>") -> dict[str, dict[str, float]]:
    """Parse brand phrase overrides: ``brand: {phrase: valence}``, valence on VADER's -4..+4.

    Raises ``RuleFileError`` (``file:line: reason``) for anything else.
    """
    data, root = load_located(text, file, RuleFileError, empty=None)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RuleFileError(f"{file}:{root.line}: expected a mapping of brand → phrase → valence")
    lexicon: dict[str, dict[str, float]] = {}
    for brand, phrases in data.items():
        line = root.line_of((brand,))
        if not isinstance(brand, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", brand):
            raise RuleFileError(f"{file}:{line}: invalid brand {brand!r}")
        if not isinstance(phrases, dict) or not phrases:
            raise RuleFileError(f"{file}:{line}: brand {brand!r} needs a mapping phrase → valence")
        entries: dict[str, float] = {}
        for phrase, valence in phrases.items():
            pline = root.line_of((brand, phrase))
            if not isinstance(phrase, str) or not phrase.strip():
                raise RuleFileError(f"{file}:{pline}: phrase must be non-empty text")
            if isinstance(valence, bool) or not isinstance(valence, int | float):
                raise RuleFileError(
                    f"{file}:{pline}: valence of {phrase!r} must be a number, got {valence!r}"
                )
            if not -MAX_VALENCE <= valence <= MAX_VALENCE:
                raise RuleFileError(
                    f"{file}:{pline}: valence of {phrase!r} must be within -4..4, got {valence}"
                )
            entries[phrase] = float(valence)
        lexicon[brand] = entries
    return lexicon


def load_lexicon(path: Path) -> dict[str, dict[str, float]]:
    """Load ``lexicon.yaml`` (brand phrase overrides); a missing file means no overrides."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(f"{path}:1: cannot read lexicon: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"{path}:1: not UTF-8 text: {exc.reason}") from None
    return parse_lexicon(text, str(path))


def lexicon_path(rules_path: Path) -> Path:
    """The ``lexicon.yaml`` beside a rule file (or inside a rule folder)."""
    return (rules_path if rules_path.is_dir() else rules_path.parent) / "lexicon.yaml"
