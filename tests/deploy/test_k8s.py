"""deploy/k8s/base renders and every document is valid against the Kubernetes JSON schemas
(offline, ``kubernetes-validate``); secrets are referenced, never inlined."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import DEPLOY

BASE = DEPLOY / "k8s" / "base"
PROCESSES = ("worker", "notifier", "api", "connectors")


def render() -> list[dict[str, Any]]:
    """``kubectl kustomize`` when installed, else the kustomization's resources list."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        result = subprocess.run(
            [kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        text = result.stdout
    else:
        kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
        text = "\n---\n".join((BASE / r).read_text() for r in kustomization["resources"])
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return render()


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_every_document_is_valid_against_the_kubernetes_schema(
    documents: list[dict[str, Any]],
) -> None:
    version = kubernetes_validate.latest_version()
    assert len(documents) >= 9
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{document['kind']}/{document['metadata']['name']}"
            pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def workloads(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Deployments and StatefulSets by name."""
    return {**by_kind(documents, "Deployment"), **by_kind(documents, "StatefulSet")}


def test_workloads_have_probes_and_resource_requests(documents: list[dict[str, Any]]) -> None:
    processes = workloads(documents)
    assert {f"listenwell-{p}" for p in PROCESSES} <= set(processes)
    for name, workload in processes.items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name


def test_workers_keep_their_data_dir_on_a_volume_of_their_own(
    documents: list[dict[str, Any]],
) -> None:
    """A worker's RocksDB tables live in LISTENWELL_DATA_DIR: on a volume claimed per worker they
    survive a restart or a reschedule (seconds to serve again), on an emptyDir they do not."""
    worker = by_kind(documents, "StatefulSet")["listenwell-worker"]
    data_dir = by_kind(documents, "ConfigMap")["listenwell-env"]["data"]["LISTENWELL_DATA_DIR"]
    claims = {c["metadata"]["name"] for c in worker["spec"]["volumeClaimTemplates"]}
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounted.get(data_dir) in claims
    service = by_kind(documents, "Service")[worker["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"


def test_api_has_a_service_and_config_maps_hold_rules_and_routes(
    documents: list[dict[str, Any]],
) -> None:
    service = by_kind(documents, "Service")["listenwell-api"]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "listenwell-api"}
    config_maps = by_kind(documents, "ConfigMap")
    assert {"listenwell-rules", "listenwell-routes"} <= set(config_maps)


def test_rules_and_routes_in_config_maps_load(
    documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    from services.notify.config import load_routes
    from streams.rules import load_rules

    config_maps = by_kind(documents, "ConfigMap")
    rules = tmp_path / "default.yaml"
    rules.write_text(config_maps["listenwell-rules"]["data"]["default.yaml"])
    load_rules(rules)
    routes = tmp_path / "routes.yaml"
    routes.write_text(config_maps["listenwell-routes"]["data"]["routes.yaml"])
    load_routes(routes)


def test_secrets_are_referenced_never_inlined(documents: list[dict[str, Any]]) -> None:
    for secret in by_kind(documents, "Secret").values():
        assert not secret.get("data") and not secret.get("stringData"), secret["metadata"]
    referenced = set()
    for workload in workloads(documents).values():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                assert "value" not in env or "SECRET" not in env["name"], env["name"]
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
    assert referenced == {"listenwell-secrets"}
