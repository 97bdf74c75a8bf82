"""deploy/docker-compose.yml passes the Compose tool's own validation, and the Dockerfile is the one
image the file builds."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.deploy.tools import DEPLOY, REPO, require_binary

COMPOSE_FILE = DEPLOY / "docker-compose.yml"


def compose_command() -> list[str]:
    """``docker compose`` when the plugin works (no engine needed), else ``docker-compose``."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [docker, "compose"]
    return [require_binary("docker-compose", "docker-compose")]


def test_compose_config_is_valid() -> None:
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=DEPLOY,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_process_and_the_monitoring_stack() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    expected = {"kafka", "worker", "notifier", "api", "connectors"}
    expected |= {"prometheus", "alertmanager", "grafana"}
    assert expected <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "grafana/provisioning" in grafana_mounts and "grafana/dashboards" in grafana_mounts
    for path in [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]:
        if path.startswith("./"):
            assert (DEPLOY / path).exists(), f"compose mounts a missing path {path}"


def test_dockerfile_is_one_image_with_listenwell_as_entry_point() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "\nFROM python:3.11-slim\n" in dockerfile
    assert "pip install ." in dockerfile
    assert 'ENTRYPOINT ["listenwell"]' in dockerfile
