"""The incident room end to end: a real worker processes the crisis scenario on the real broker,
``listenwell api`` (a real process, its read model fed by Kafka) serves the pages, and a real
headless Chromium reads them. One worker run serves every check (module-scoped fixture).

Screenshots of each page go to ``bench/results/room/`` (``LISTENWELL_ROOM_SHOTS`` overrides).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from connectors.producer import MentionProducer
from connectors.simulate import generate
from services.api import sign
from services.demo import scrape, total
from services.kafka_local import free_port
from services.notify.core import Notification
from services.notify.render import slack_payload
from streams import topics
from streams.records import Alert, AlertState, CustomerHealth, CustomerTier, Incident
from streams.topic_reader import read_topic
from tests.integration.harness import REPO, Run, wait_for
from tests.services.room.browser import chromium, log_in, until

pytestmark = pytest.mark.integration

TOKEN = "room-integration-token-5f4e3d2c1b"
SECRET = "whsec-room-integration-9a8b7c6d"
SHOTS = Path(os.environ.get("LISTENWELL_ROOM_SHOTS", REPO / "bench" / "results" / "room"))
BRANDS = ("globex-bank", "initech-mobile", "northwind-air", "umbrella-foods")
HOSTILE = (
    '<script>document.title="pwned";window.pwned=1</script> the app ate my money',
    '<img src=x onerror="window.pwned=2"><b id="injected">terrible</b> support',
    "refund \u202eexe.txt please, worst bank",
    "zero\u200bwidth \u2066isolate\u2069 awful service",
)


@dataclass
class Crisis:
    run: Run
    base: str
    incident: Incident
    shown: str
    """What ``listenwell incidents show`` printed for the incident."""
    flagged: set[tuple[str, str]]


def _incidents(run: Run) -> dict[str, Incident]:
    found: dict[str, Incident] = {}
    for _, key, value in read_topic(run.bootstrap, run.topic(topics.INCIDENTS)):
        if value is not None:
            incident = Incident.from_json(value)
            found[incident.id] = incident
        elif key is not None:
            found.pop(key.decode(), None)
    return found


def _flagged(run: Run) -> set[tuple[str, str]]:
    latest: dict[bytes, CustomerHealth | None] = {}
    for _, key, value in read_topic(run.bootstrap, run.topic(topics.CUSTOMERS_HEALTH)):
        if key is not None:
            latest[key] = CustomerHealth.from_json(value) if value is not None else None
    return {
        (h.brand, h.customer_id)
        for h in latest.values()
        if h is not None and h.tier is not CustomerTier.HEALTHY
    }


def _metric(port: int, name: str) -> float:
    try:
        return total(scrape(port), name)
    except OSError:
        return -1.0


@pytest.fixture(scope="module")
def crisis(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crisis]:
    run = Run(kafka_bootstrap, "room", tmp_path_factory.mktemp("room"))
    try:
        worker = run.start_worker()
        mentions = list(generate("crisis", seed=7))
        with MentionProducer(run.bootstrap) as producer:
            for mention in mentions:
                producer.send(mention, topic=run.topic(topics.MENTIONS_RAW))
            # Bad input on a topic the room reads: skipped with a warning and counted.
            producer.send_raw(run.topic(topics.MENTIONS_SCORED), key=b"acme", value=b"{not json")
        wait_for(
            lambda: worker.metric("listenwell_mentions_ingested_total") >= len(mentions),
            what="the worker to consume the crisis",
            patience_s=600,
        )

        def recovered() -> list[Incident]:
            return [
                i
                for i in _incidents(run).values()
                if i.brand == "northwind-air"
                and i.alertname == "NegativeSentimentSpike"
                and i.recovered_at is not None
            ]

        (incident,) = wait_for(recovered, what="the recovered northwind-air incident")
        shown = subprocess.run(
            [sys.executable, "-m", "services.cli", "incidents", "show", incident.id],
            env=run.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        port = free_port()
        log = (run.workdir / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "api", "--port", str(port)],
            env=run.env(
                LISTENWELL_API_TOKEN=TOKEN,
                LISTENWELL_WEBHOOK_SECRET=SECRET,
                LISTENWELL_ROOM_ROUTES_FILE=str(REPO / "alert_rules" / "routes.yaml"),
            ),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        run.processes.append(api)
        wait_for(
            lambda: _metric(port, "listenwell_room_caught_up") == 1.0,
            what="the room's read model to catch up",
        )
        yield Crisis(run, f"http://127.0.0.1:{port}", incident, shown, _flagged(run))
    finally:
        run.stop_all()


@pytest.fixture(scope="module")
def browser(crisis: Crisis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium"), width=1280, height=1100) as driver:
        log_in(driver, crisis.base, TOKEN)
        yield driver


def shot(driver: Any, name: str) -> Path:
    """A screenshot of the whole page (up to 4,000 CSS pixels tall) for docs/incident-room.md."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    image = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(image["data"]))
    assert path.stat().st_size > 10_000
    return path


def test_the_brands_table_shows_the_four_brands(crisis: Crisis, browser: Any) -> None:
    browser.get(crisis.base + "/room/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#brands tbody tr")
    assert tuple(r.get_attribute("data-brand") for r in rows) == BRANDS
    shares = [
        float(r.find_element(By.CSS_SELECTOR, "td[data-label='Share of voice']").text.rstrip("%"))
        for r in rows
    ]
    assert 97 <= sum(shares) <= 103  # rounded percentages of one whole
    for row in rows:
        assert row.find_element(By.CSS_SELECTOR, ".volume").text.isdigit()
        assert row.find_elements(By.CSS_SELECTOR, "svg.spark polyline")
    links = browser.find_elements(By.CSS_SELECTOR, "#incidents a")
    assert any(crisis.incident.id in (a.get_attribute("href") or "") for a in links)
    shot(browser, "brands")


def _printed(shown: str, name: str) -> str:
    match = re.search(rf"\b{name}\s+(\d{{4}}-\d\d-\d\d \d\d:\d\d|\d+h\d\dm)", shown)
    assert match, f"{name} not in {shown!r}"
    return match.group(1)


def test_the_incident_page_shows_what_the_cli_shows(crisis: Crisis, browser: Any) -> None:
    browser.get(crisis.base + "/room/")
    browser.find_element(
        By.CSS_SELECTOR, f"#incidents a[href$='{crisis.incident.id.split(':')[1]}']"
    ).click()
    until(lambda: browser.find_elements(By.ID, "onset"), what="the incident page")
    assert browser.find_element(By.ID, "onset").text == _printed(crisis.shown, "onset")
    assert browser.find_element(By.ID, "recovered").text == _printed(crisis.shown, "recovered")
    assert browser.find_element(By.ID, "resolved").text == _printed(crisis.shown, "resolved")
    assert browser.find_element(By.ID, "ttr").text == _printed(crisis.shown, "recover")
    assert browser.find_element(By.ID, "status").text == "recovered"
    markers = {
        m.get_attribute("class")
        for m in browser.find_elements(By.CSS_SELECTOR, "#curve line.marker")
    }
    assert markers == {f"marker {k}" for k in ("onset", "firing", "peak", "resolved", "recovered")}
    points = browser.find_element(By.CSS_SELECTOR, "#curve polyline.value").get_attribute("points")
    assert len(points.split()) == len(crisis.incident.series)
    sent = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".status").text for r in sent] == [
        "firing",
        "resolved",
    ]
    assert "oncall-alertmanager (alertmanager)" in sent[0].text
    assert "marketing-slack (slack #brand-alerts)" in sent[0].text
    quotes = browser.find_elements(By.CSS_SELECTOR, "#representative .mention")
    assert 3 <= len(quotes) <= 5
    assert all("negative" in q.text for q in quotes)
    shot(browser, "incident")


def test_a_slack_alert_links_to_its_incident_page(crisis: Crisis, browser: Any) -> None:
    firing = next(
        a
        for a in (Alert.from_json(v) for v in crisis.run.read(topics.ALERTS))
        if a.fingerprint == crisis.incident.fingerprint and a.state is AlertState.FIRING
    )
    notification = Notification(
        receiver="slack",
        group_key="g",
        group_labels={"alertname": firing.alertname},
        firing=(firing,),
        resolved=(),
        at=firing.starts_at,
    )
    payload = json.dumps(slack_payload(notification, public_url=crisis.base))
    (link,) = re.findall(r"<(http://[^|>]+)\|Open the incident room>", payload)
    browser.get(link)
    until(
        lambda: browser.current_url.endswith(f"/room/incidents/{crisis.incident.id}"),
        what="the redirect to the incident",
    )


def test_the_at_risk_queue_lists_the_scenarios_customers(crisis: Crisis, browser: Any) -> None:
    assert len(crisis.flagged) >= 4
    browser.get(crisis.base + "/room/customers")
    cards = browser.find_elements(By.CSS_SELECTOR, "#queue .customer")
    listed = {
        (
            c.find_element(By.CSS_SELECTOR, ".brand-name").text,
            c.find_element(By.CSS_SELECTOR, ".customer-id").text,
        )
        for c in cards
    }
    assert listed == crisis.flagged
    risks = [float(c.find_element(By.CSS_SELECTOR, ".risk").text.split()[1]) for c in cards]
    tiers = [c.get_attribute("class").split()[1] for c in cards]
    at_risk = [r for r, t in zip(risks, tiers, strict=True) if t == "at_risk"]
    assert at_risk == sorted(at_risk, reverse=True)
    assert tiers == sorted(tiers, key=lambda t: t != "at_risk")
    assert all(c.find_elements(By.CSS_SELECTOR, ".reasons li") for c in cards)
    shot(browser, "customers")


def test_the_read_model_reports_its_lag_size_and_bad_records(crisis: Crisis) -> None:
    port = int(crisis.base.rsplit(":", 1)[1])
    lag = "listenwell_room_consumer_lag_messages"
    values = wait_for(
        lambda: (v := scrape(port)) and total(v, lag) == 0 and v, what="the room to have no lag"
    )
    assert total(values, "listenwell_room_records_total", outcome="invalid") == 1
    read = total(values, "listenwell_room_records_total", topic="mentions.scored")
    assert read >= 17_000
    assert total(values, "listenwell_room_items", kind="brand") == 4
    assert total(values, "listenwell_room_items", kind="incident") >= 1
    assert 0 < total(values, "listenwell_room_items", kind="minute") <= 4 * 24 * 60


def _post(base: str, body: dict[str, Any]) -> int:
    data = json.dumps(body).encode()
    stamp = int(time.time())
    request = urllib.request.Request(
        base + "/v1/events",
        data=data,
        headers={
            "Content-Type": "application/json",
            "X-Listenwell-Timestamp": str(stamp),
            "X-Listenwell-Signature": sign(SECRET, stamp, data),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        status: int = answer.status
        return status


def test_hostile_mentions_posted_to_the_api_arrive_live_and_stay_text(
    crisis: Crisis, browser: Any
) -> None:
    browser.set_window_size(1280, 1100)
    browser.get(crisis.base + "/room/")
    browser.execute_script("window.notReloaded = 7")
    end = datetime(2026, 1, 5, 23, 59, 50, tzinfo=UTC)
    for i, text in enumerate(HOSTILE):
        status = _post(
            crisis.base,
            {
                "event_id": f"hostile-{i}",
                "type": "review",
                "brand": "globex-bank",
                "text": text,
                "rating": 1,
                "created_at": end.isoformat(),
            },
        )
        assert status == 202

    def shown() -> list[str]:
        for d in browser.find_elements(By.CSS_SELECTOR, "details.recent"):
            if "globex-bank" in d.find_element(By.TAG_NAME, "summary").text:
                browser.execute_script("arguments[0].open = true", d)
                return [e.text for e in d.find_elements(By.CSS_SELECTOR, ".mention .text")]
        return []

    texts = until(
        lambda: (t := shown()) and all(h[:12] in " ".join(t) for h in HOSTILE[:2]) and t,
        what="the hostile mentions on the brands page",
        patience_s=120,
    )
    assert browser.execute_script("return window.notReloaded") == 7  # updated, not reloaded
    until(lambda: len([t for t in shown() if "[U+" in t]) >= 2, what="all four", patience_s=60)
    texts = shown()
    assert HOSTILE[0] in texts and HOSTILE[1] in texts
    assert "refund [U+202E]exe.txt please, worst bank" in texts
    assert "zero[U+200B]width [U+2066]isolate[U+2069] awful service" in texts
    assert browser.execute_script("return window.pwned === undefined")
    assert "pwned" not in browser.title
    assert browser.find_elements(By.ID, "injected") == []
    assert (
        browser.execute_script(
            "return document.querySelectorAll('main script, main img, main b').length"
        )
        == 0
    )
