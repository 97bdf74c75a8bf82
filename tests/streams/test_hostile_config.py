"""Hostile rule, lexicon and route files (hypothesis, alias bombs, deep nesting, control chars):
only ``RuleFileError`` / ``RoutesFileError`` with ``file:line: reason``, never another exception."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config import ConfigError, parse_config
from services.notify.config import RoutesFileError, parse_routes
from streams.rules import RuleFileError, parse_lexicon, parse_rules
from streams.ruletests import load_test_file

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = (REPO / "alert_rules" / "default.yaml").read_text(encoding="utf-8")
PARSERS: list[tuple[Callable[[str, str], Any], type[Exception]]] = [
    (parse_rules, RuleFileError),
    (parse_lexicon, RuleFileError),
    (parse_routes, RoutesFileError),
    (parse_config, ConfigError),
]
LAUGHS = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    + "groups: *h\n"
)
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=15),
    lambda i: st.lists(i, max_size=3) | st.dictionaries(st.text(max_size=8), i, max_size=3),
    max_leaves=10,
)


def only_documented(text: str) -> None:
    for parse, error in PARSERS:
        try:
            parse(text, "f.yaml")
        except error as exc:
            assert re.match(r"^f\.yaml:\d+: ", str(exc)), str(exc)


@pytest.mark.parametrize(
    "text",
    [
        LAUGHS,
        "groups: " + "[" * 20_000,
        "groups: " + "{a: " * 5_000,
        "\t\x00\x07",
        "groups:\n  - \udcff",
        "a: !!python/object/apply:os.system ['true']",
        "groups: []\n#" + "x" * 1_000_000,
    ],
    ids=["alias-bomb", "deep-lists", "deep-maps", "control", "surrogate", "python-tag", "1mb"],
)
def test_hostile_files_give_a_located_error(text: str, tmp_path: Path) -> None:
    only_documented(text)
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(RuleFileError, match=r"f\.yaml:\d+: "):
        load_test_file(path)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(YAML_VALUES)
def test_generated_yaml_documents(doc: Any) -> None:
    only_documented(yaml.safe_dump(doc))
    only_documented(yaml.safe_dump({"groups": [doc]}))
    only_documented(yaml.safe_dump({"route": doc, "receivers": [doc]}))


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(st.integers(0, len(DEFAULT_RULES) - 1), st.text(max_size=12))
def test_mutated_default_rules(at: int, insert: str) -> None:
    only_documented(DEFAULT_RULES[:at] + insert + DEFAULT_RULES[at + 1 :])


def test_files_that_are_not_utf8_give_a_located_error(tmp_path: Path) -> None:
    from connectors.config import load_config
    from services.notify.config import load_routes
    from streams.rules import load_rules

    path = tmp_path / "f.yaml"
    path.write_bytes(b"groups: []\n\xff\xfe")
    for load, error in [
        (load_rules, RuleFileError),
        (load_routes, RoutesFileError),
        (load_config, ConfigError),
        (load_test_file, RuleFileError),
    ]:
        with pytest.raises(error, match=r"f\.yaml:1: not UTF-8 text"):
            load(path)
