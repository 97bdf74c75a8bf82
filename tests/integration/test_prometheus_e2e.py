"""A real Prometheus scrapes a running pipeline; every dashboard and rule expression is evaluated.

The worker, the notifier, the API and the connector runner run as real processes on the shared
broker, fed a replay of the simulated crisis day (all of the crisis brand, a quarter of the
others) plus a slow live source that keeps the connector runner up. Debian's ``prometheus``
binary scrapes them every second and evaluates ``deploy/prometheus/rules`` every second. Then
every expression of every Grafana panel and every recording rule must return data; alerting
rules (and annotation queries, which are events) may rightly be quiet, so for them the query
must parse and every metric it names must exist among the scraped series — a typo in a metric
name fails the test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.simulate import generate
from services.kafka_local import free_port
from tests.deploy.tools import DEPLOY, REPO, require_binary
from tests.integration.harness import Run, wait_for

pytestmark = pytest.mark.integration

RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
BRAND = "northwind-air"
SOURCE = "reddit"
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$brand": BRAND,
    "$source": SOURCE,
}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def panel_expressions() -> list[tuple[str, str]]:
    """(where, expr) for every panel target of every dashboard."""
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def annotation_expressions() -> list[tuple[str, str]]:
    """(where, expr) of annotation queries: events, rightly empty between events."""
    return [
        (f"{path.name}: annotation {annotation['name']}", annotation["expr"])
        for path in DASHBOARDS
        for annotation in json.loads(path.read_text())["annotations"]["list"]
        if "expr" in annotation
    ]


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Names of series an expression reads: ours (listenwell_*, recording rules) and ``up``."""
    names = set()
    for token in NAME.findall(re.sub(r'"[^"]*"', '""', expr)):
        if token.startswith("listenwell_") or ":" in token or token == "up":
            names.add(token)
    return names


class Prometheus:
    """Debian's Prometheus on a free port, stopped by its pid."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in targets.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.process = subprocess.Popen(
            [
                require_binary("prometheus", "prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        return body

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)

    def result(self, expr: str) -> list[Any]:
        answer = self.query(expr)
        if answer.get("status") != "success":
            return []
        result: list[Any] = answer["data"]["result"]
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(run: Run, name: str, args: list[str], **env: str) -> None:
    log = (run.workdir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        env=run.env(**env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    run.processes.append(process)


@pytest.fixture(scope="module")
def prometheus_over_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    require_binary("prometheus", "prometheus")
    run = Run(kafka_bootstrap, "prometheus", tmp_path_factory.mktemp("prometheus-e2e"))
    worker = run.start_worker()
    notifier_port, connectors_port, api_port = free_port(), free_port(), free_port()
    start(
        run,
        "api",
        ["api", "--port", str(api_port)],
        LISTENWELL_WEBHOOK_SECRET="e2e-webhook-secret-0123456789",
    )
    start(
        run,
        "notifier",
        ["notifier", "--delivery-log", str(run.workdir / "delivered.log")],
        LISTENWELL_NOTIFIER_METRICS_PORT=str(notifier_port),
    )
    prometheus = Prometheus(
        run.workdir,
        {
            "listenwell-worker": worker.metrics_port,
            "listenwell-notifier": notifier_port,
            "listenwell-connectors": connectors_port,
            "listenwell-api": api_port,
        },
    )
    try:
        # The crisis day: every mention of the crisis brand (its incident opens and recovers) and
        # a quarter of the others (share of voice), replayed as fast as the broker takes them.
        crisis = generate("crisis", seed=7)
        kept = [m for i, m in enumerate(crisis) if m.brand == BRAND or i % 4 == 0]
        replay = run.workdir / "crisis.jsonl"
        replay.write_bytes(b"".join(m.to_json() + b"\n" for m in kept))
        config = {
            "instances": [
                {
                    "name": "crisis-replay",
                    "source": "replay",
                    "brand": BRAND,
                    "settings": {"path": str(replay)},
                },
                {
                    # Real-time pace: still running when the queries are made.
                    "name": "sim-live",
                    "source": "simulate",
                    "brand": "globex-bank",
                    "speedup": 1,
                    "settings": {"scenario": "calm", "seed": 3},
                },
            ]
        }
        config_path = run.workdir / "connectors.yaml"
        config_path.write_text(yaml.safe_dump(config))
        start(
            run,
            "connectors",
            ["connect", "--config", str(config_path)],
            LISTENWELL_CONNECTOR_METRICS_PORT=str(connectors_port),
        )
        wait_for(
            lambda: worker.metric("listenwell_incident_time_to_recover_seconds_count") > 0,
            what="the crisis incident to recover (see the worker log in the run's workdir)",
        )
        wait_for(
            lambda: len(prometheus.result('up{job=~"listenwell-.*"} == 1')) == 4,
            what=f"Prometheus to scrape all four processes (log: {prometheus.log})",
            patience_s=60,
        )
        yield prometheus
    finally:
        prometheus.stop()
        run.stop_all()


def test_every_dashboard_and_rule_expression_returns_data(
    prometheus_over_pipeline: Prometheus,
) -> None:
    prometheus = prometheus_over_pipeline
    expressions = panel_expressions()
    expressions += [(f"record {r['record']}", r["expr"]) for r in rules() if "record" in r]
    assert len(expressions) > 20
    empty: list[str] = []
    for where, expr in expressions:
        query = substitute(expr)
        answer = prometheus.query(query)
        assert answer.get("status") == "success", f"{where}: {query}: {answer.get('error')}"
        try:
            wait_for(lambda q=query: prometheus.result(q), what=where, patience_s=20)
        except AssertionError:
            empty.append(f"{where}: {query}")
    assert empty == [], "expressions without data:\n" + "\n".join(empty)


def test_alerting_rules_and_annotations_parse_and_read_only_scraped_metrics(
    prometheus_over_pipeline: Prometheus,
) -> None:
    prometheus = prometheus_over_pipeline
    scraped: set[str] = set(prometheus.api("label/__name__/values")["data"])
    alerting = [r for r in rules() if "alert" in r]
    assert len(alerting) >= 6
    checks = [(r["alert"], r["expr"]) for r in alerting] + annotation_expressions()
    for where, expr in checks:
        answer = prometheus.query(substitute(expr))
        assert answer.get("status") == "success", f"{where}: {answer.get('error')}"
        missing = metric_names(expr) - scraped
        if missing:  # a gauge set by a timer may appear a few scrapes later
            scraped |= wait_for(
                lambda m=missing: (
                    m & set(prometheus.api("label/__name__/values")["data"]) == m and m
                ),
                what=f"{where} reads metrics nobody exposes: {missing}",
                patience_s=20,
            )
    loaded = prometheus.api("rules")["data"]["groups"]
    loaded_alerts = {r["name"] for g in loaded for r in g["rules"] if r["type"] == "alerting"}
    assert loaded_alerts == {r["alert"] for r in alerting}
