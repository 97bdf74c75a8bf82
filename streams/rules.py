"""Alert rule files: Prometheus-style YAML groups, validated into rule-kind objects.

A rule file looks like::

    groups:
      - name: brand-health
        rules:
          - alert: NegativeSentimentSpike
            kind: sentiment_spike
            window: 15m
            ...

Each rule is validated by the class its ``kind`` names (:data:`streams.rule_kinds.KINDS`; the
kinds and what they mean are in :mod:`streams.rule_kinds`). Every problem is reported as
``RuleFileError("file:line: reason")`` with the 1-based line of the offending rule or field, so a
reviewer can jump straight to it. Brand lexicon overrides (``lexicon.yaml``) load here too.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError

from streams.rule_kinds import KINDS, RuleBase
from streams.rule_kinds.base import template_variables
from streams.yamlfile import LineMap, load_located, read_text, validation_reason

__all__ = [
    "RuleFileError",
    "RuleGroup",
    "RuleSet",
    "lexicon_path",
    "load_lexicon",
    "load_rule_paths",
    "load_rules",
    "parse_lexicon",
    "parse_rules",
    "rule_files",
]


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message is ``file:line: reason``."""


class RuleGroup(BaseModel):
    """A named group of rules, as in Prometheus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rules: tuple[SerializeAsAny[RuleBase], ...]


class RuleSet(BaseModel):
    """Every rule of a rule file, in file order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[RuleGroup, ...]
    source: str = "<string>"

    @property
    def rules(self) -> tuple[RuleBase, ...]:
        return tuple(rule for group in self.groups for rule in group.rules)


# --- line-aware loading -------------------------------------------------------------------------


def _check_templates(rule: RuleBase, loc: LineMap, file: str) -> None:
    for name, template in rule.annotations.items():
        for var in template_variables(template):
            if var not in rule.placeholders:
                known = ", ".join(sorted(rule.placeholders))
                line = loc.line_of(("annotations", name))
                raise RuleFileError(
                    f"{file}:{line}: unknown template variable {{{{ {var} }}}} in annotation "
                    f"{name!r} of {rule.alert} (known for {rule.kind}: {known})"
                )


def _parse_rule(raw: object, loc: LineMap, file: str) -> RuleBase:
    if not isinstance(raw, dict):
        raise RuleFileError(f"{file}:{loc.line}: a rule must be a mapping")
    if "alert" not in raw:
        raise RuleFileError(f"{file}:{loc.line}: rule has no 'alert' name")
    kind = raw.get("kind")
    if kind is None:
        raise RuleFileError(f"{file}:{loc.line}: rule {raw['alert']!r} has no 'kind'")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(KINDS))
        raise RuleFileError(
            f"{file}:{loc.line_of(('kind',))}: unknown rule kind {kind!r} (known: {known})"
        )
    try:
        rule = model.model_validate(raw)
    except ValidationError as exc:
        path, reason = validation_reason(exc)
        raise RuleFileError(f"{file}:{loc.line_of(path)}: {reason}") from None
    problem = next(rule.problems(), None)
    if problem is not None:
        path, reason = problem
        raise RuleFileError(f"{file}:{loc.line_of(path)}: {reason}")
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
        rules: list[RuleBase] = []
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
    return parse_rules(read_text(path, RuleFileError, "rule file"), str(path))


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
    return parse_lexicon(read_text(path, RuleFileError, "lexicon"), str(path))


def lexicon_path(rules_path: Path) -> Path:
    """The ``lexicon.yaml`` beside a rule file (or inside a rule folder)."""
    return (rules_path if rules_path.is_dir() else rules_path.parent) / "lexicon.yaml"
