"""The Grafana dashboards parse, are provisioned, and every panel queries Prometheus."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY

GRAFANA = DEPLOY / "grafana"


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def test_three_dashboards_with_unique_uids_and_titles() -> None:
    found = dashboards()
    titles = {d["title"] for d in found.values()}
    assert {"listenwell · Brand health", "listenwell · Pipeline health"} <= titles
    assert "listenwell · Alerts and incidents" in titles
    uids = [d["uid"] for d in found.values()]
    assert len(uids) == len(set(uids)) == len(found) >= 3


def test_every_panel_has_prometheus_targets_and_unique_ids() -> None:
    for name, dashboard in dashboards().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["targets"], f"{name}: {panel['title']} has no targets"
            for target in panel["targets"]:
                assert target["expr"].strip(), f"{name}: {panel['title']}"
                assert target["datasource"]["uid"] == "listenwell-prometheus"


def test_brand_and_source_variables() -> None:
    for name, dashboard in dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert {"brand", "source"} <= set(variables), name
        for variable in variables.values():
            assert variable["query"]["query"].startswith("label_values(listenwell_")


def test_provisioning_points_at_the_dashboards_and_the_datasource() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/listenwell.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert [s["uid"] for s in sources["datasources"]] == ["listenwell-prometheus"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
