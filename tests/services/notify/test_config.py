"""routes.yaml loading: inheritance, and broken files rejected with file:line: reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.notify.config import RoutesFileError, load_routes, parse_routes

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
route:
  receiver: slack
  group_wait: 10s
  routes:
    - matchers: [brand=acme]
      receiver: mail
      repeat_interval: 1h
receivers:
  slack: {type: slack, webhook_url: {env: X}}
  mail: {type: email, host: h, from: a@b.c, to: [d@e.f]}
"""


def test_children_inherit_timing_and_grouping() -> None:
    tree = parse_routes(GOOD)
    [child] = tree.root.routes
    assert child.group_wait == timedelta(seconds=10)  # inherited
    assert child.repeat_interval == timedelta(hours=1)
    assert child.group_by == ("alertname",)
    assert tree.root.group_interval == timedelta(minutes=5)  # default


def test_shipped_routes_file_is_valid() -> None:
    tree = load_routes(REPO / "alert_rules" / "routes.yaml")
    assert {"marketing-slack", "care-email", "oncall-alertmanager"} <= set(tree.receivers)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD.replace("receiver: mail", "receiver: nope"), 6, "unknown receiver 'nope'"),
        (GOOD.replace("repeat_interval: 1h", "repeat_interval: 1 hour"), 7, "invalid duration"),
        (GOOD.replace("[brand=acme]", "[brand acme]"), 5, "invalid matcher"),
        (GOOD.replace("[brand=acme]", '[brand=~"("]'), 5, "invalid regex"),
        (GOOD.replace("group_wait: 10s", "group_wiat: 10s"), 3, "unknown route field 'group_wiat'"),
        (GOOD.replace("type: slack", "type: pager"), 9, "unknown receiver type 'pager'"),
        (GOOD.replace("webhook_url: {env: X}", "webhook_url: https://x"), 9, "webhook_url"),
        (GOOD.replace("{env: X}", "{env: X, file: y}"), 9, "exactly one of"),
        (GOOD.replace("to: [d@e.f]", "to: []"), 10, "to"),
        (
            GOOD.replace("      receiver: mail\n", "      receiver: mail\n      continue: 1\n"),
            7,
            "continue",
        ),
        (GOOD + "extra: 1\n", 11, "unknown top-level field 'extra'"),
        ("route: [\n", 2, "invalid YAML"),
    ],
)
def test_broken_files_fail_with_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(RoutesFileError) as info:
        parse_routes(text, "routes.yaml")
    message = str(info.value)
    assert message.startswith(f"routes.yaml:{line}: "), message
    assert reason in message
