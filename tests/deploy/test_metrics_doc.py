"""The metrics table of docs/operations.md and the metrics the code registers stay in step.

Every process declares its metrics in one class taking a registry; each is instantiated here with a
fresh ``CollectorRegistry`` and its metric names, types and label names are compared with the
table in the "Metrics" section of docs/operations.md. Label names must come from a bounded
allow-list.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from tests.deploy.tools import REPO

METRIC_CLASSES = (
    ("streams.metrics", "WorkerMetrics"),
    ("services.notify.metrics", "NotifierMetrics"),
    ("connectors.runner", "ConnectorMetrics"),
    ("services.api", "ApiMetrics"),
    ("services.room.metrics", "RoomMetrics"),
)
ALLOWED_LABELS = {
    "brand",
    "source",
    "label",
    "reason",
    "alertname",
    "state",
    "severity",
    "receiver",
    "outcome",
    "instance",
    "topic",
    "rule",
    "kind",
}
"""Bounded label names; never author, customer or mention id."""


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: frozenset[str]


def registered() -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for module_name, class_name in METRIC_CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"metrics class {module_name}.{class_name} is gone: {exc}")
        registry = CollectorRegistry()
        cls(registry)
        for collector in registry._collector_to_names:
            if isinstance(collector, MetricWrapperBase):
                kind = collector._type
                name = collector._name + ("_total" if kind == "counter" else "")
                found[name] = Metric(name, kind, frozenset(collector._labelnames))
            else:
                for family in collector.collect():
                    kind = family.type
                    name = family.name + ("_total" if kind == "counter" else "")
                    labels = frozenset(k for s in family.samples for k in s.labels)
                    found[name] = Metric(name, kind, labels)
    return found


def documented() -> dict[str, Metric]:
    readme = (REPO / "docs" / "operations.md").read_text()
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, Metric] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`(listenwell_\w+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
        if match:
            name, kind, labels = match.groups()
            assert name not in found, f"docs/operations.md lists {name} twice"
            names = frozenset(x.strip() for x in labels.split(",") if x.strip())
            found[name] = Metric(name, kind, names)
    return found


def test_documented_metrics_table_matches_the_code() -> None:
    code, docs = registered(), documented()
    assert len(code) > 20
    assert sorted(set(docs) - set(code)) == [], "in docs/operations.md but registered by no code"
    assert sorted(set(code) - set(docs)) == [], "registered by code but not in docs/operations.md"
    for name, metric in code.items():
        assert docs[name] == metric, f"docs/operations.md row for {name} differs from the code"


def test_metric_names_follow_the_house_rules() -> None:
    for name, metric in registered().items():
        assert name.startswith("listenwell_"), name
        assert (metric.type == "counter") == name.endswith("_total"), name
        assert metric.labels <= ALLOWED_LABELS, f"{name}: unbounded label {metric.labels}"


def test_dead_letter_reasons_exported_are_the_pipelines_reasons() -> None:
    from streams.metrics import DEAD_LETTER_REASONS
    from streams.pipeline import DeadLetterReason

    reasons = {v for k, v in vars(DeadLetterReason).items() if k.isupper()}
    assert set(DEAD_LETTER_REASONS) == reasons
