"""The Alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.kafka_local import free_port
from services.notify.config import parse_routes
from services.notify.core import Notification
from services.notify.receivers import AlertmanagerSender, build_sender
from streams.records import Alert, AlertState, fingerprint
from tests.integration.harness import wait_for

pytestmark = pytest.mark.integration

BINARY = "prometheus-alertmanager"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which(BINARY) or shutil.which("alertmanager")
    if binary is None:
        message = f"{BINARY} is not installed (apt-get install -y prometheus-alertmanager)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: sink\nreceivers:\n  - name: sink\n")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}"
            )
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, what="alertmanager to be ready", patience_s=30, every_s=0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_alert_appears_in_alertmanager_with_its_labels(alertmanager: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    labels = {"alertname": "NegativeSentimentSpike", "brand": "acme", "severity": "critical"}
    alert = Alert(
        labels=labels,
        annotations={"summary": "Negative sentiment spike for acme", "link": "http://g.local/d"},
        state=AlertState.FIRING,
        value=0.62,
        baseline=0.18,
        starts_at=now - timedelta(minutes=5),
        fingerprint=fingerprint(labels),
    )
    receivers = f"receivers:\n  am: {{type: alertmanager, url: '{alertmanager}'}}\n"
    tree = parse_routes("route: {receiver: am}\n" + receivers)
    with httpx.Client(timeout=5) as client:
        sender = build_sender(tree.receivers["am"], client)
        assert isinstance(sender, AlertmanagerSender)
        sender.send(
            Notification(
                receiver="am",
                group_key="g",
                group_labels={},
                firing=(alert,),
                resolved=(),
                at=now,
            )
        )
        alerts = client.get(f"{alertmanager}/api/v2/alerts").json()
    [got] = alerts
    assert got["labels"] == labels
    assert got["annotations"]["summary"] == "Negative sentiment spike for acme"
    assert got["annotations"]["value"] == "0.62"
    assert got["generatorURL"] == "http://g.local/d"
    assert got["status"]["state"] == "active"
