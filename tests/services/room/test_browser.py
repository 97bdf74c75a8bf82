"""The room in a real headless Chromium: hostile mention text stays text in the rendered DOM,
pages update without reloading, and a phone-sized window gets a readable layout.

The read model is fed in memory here (the Kafka path is ``tests/integration/test_room.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By

from services.api import ApiSettings, make_api
from services.room.model import TopicKind
from services.room.pages import Room, RoomSettings
from streams.clock import SYSTEM_CLOCK
from streams.records import CustomerTier, SentimentLabel
from tests.services.room.browser import chromium, log_in, serve, until
from tests.services.room.records import health, incident, scored
from tests.services.room.test_pages import TOKEN, NoSink, room_with

RLO = "\u202e"
HOSTILE_TEXTS = (
    '<script>document.title="pwned";window.pwned=1</script>',
    '<img src=x onerror="window.pwned=2"><b id="injected">bold</b>',
    '"><svg onload="window.pwned=3"><a href="javascript:window.pwned=4">click</a>',
    f"refund please {RLO}exe.txt and call me",
    "pay\u200bpal sup\u200dport \u2066isolated\u2069 \ufeffbom",
    "</bdi></p></li></ul><style>body{display:none}</style>",
)
HOSTILE_CUSTOMER = '<i id="cust-injected">cust</i>\u202e-99'


def hostile_room() -> Room:
    inc = incident("northwind-air", minutes=120)
    records: list[Any] = [inc]
    for i, text in enumerate(HOSTILE_TEXTS):
        records.append(
            scored(
                i,
                brand="northwind-air",
                at=inc.onset + timedelta(minutes=i),
                label=SentimentLabel.NEGATIVE,
                text=text,
                url="javascript:window.pwned=5" if i % 2 else "https://example.com/post/1",
            )
        )
    records.append(
        health(
            HOSTILE_CUSTOMER,
            CustomerTier.AT_RISK,
            91,
            brand="northwind-air",
            mentions=tuple((f"test:northwind-air-{i}", t) for i, t in enumerate(HOSTILE_TEXTS)),
        )
    )
    return replace(
        room_with(records), clock=SYSTEM_CLOCK, settings=RoomSettings(sse_every_s=0.2, sse_max_s=60)
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Room]]:
    room = hostile_room()
    app = make_api(
        ApiSettings(), NoSink(), secret=SecretStr("s" * 16), token=SecretStr(TOKEN), room=room
    )
    with serve(app) as base:
        yield base, room


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, site: tuple[str, Room]) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium")) as d:
        log_in(d, site[0], TOKEN)
        yield d


def untouched(driver: Any) -> None:
    """No injected script ran and no injected element exists."""
    assert driver.execute_script("return window.pwned === undefined")
    assert "pwned" not in driver.title
    assert driver.find_elements(By.ID, "injected") == []
    assert driver.find_elements(By.ID, "cust-injected") == []
    assert (
        driver.execute_script(
            "return document.querySelectorAll("
            "'main script, main img, main style, main svg a, main i, main b').length"
        )
        == 0
    )
    scripts = driver.execute_script("return Array.from(document.scripts).map(s => s.src)")
    assert [s.rsplit("/", 2)[-2:] for s in scripts] == [["static", "room.js"]]
    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))"
    )
    assert not [h for h in hrefs if h.lower().startswith("javascript")]
    assert driver.execute_script("return getComputedStyle(document.body).display") != "none"


def test_hostile_mentions_on_the_brands_page_stay_text(driver: Any, site: tuple[str, Room]) -> None:
    driver.get(site[0] + "/room/")
    driver.find_element(By.CSS_SELECTOR, "details.recent summary").click()
    texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "details.recent .mention .text")]
    assert HOSTILE_TEXTS[0] in texts
    assert HOSTILE_TEXTS[1] in texts
    assert "refund please [U+202E]exe.txt and call me" in texts
    assert "pay[U+200B]pal sup[U+200D]port [U+2066]isolated[U+2069] [U+FEFF]bom" in texts
    assert not any(RLO in t or "\u200b" in t for t in texts)
    # Each text is isolated: its direction cannot run into the text after it.
    isolated = driver.execute_script(
        "return Array.from(document.querySelectorAll('.mention .text bdi'))"
        ".every(b => getComputedStyle(b).unicodeBidi === 'isolate')"
    )
    assert isolated
    untouched(driver)


def test_hostile_text_on_the_incident_and_customer_pages_stays_text(
    driver: Any, site: tuple[str, Room]
) -> None:
    base, room = site
    inc_id = next(iter(room.feed.model.incidents))
    driver.get(f"{base}/room/incidents/{inc_id}")
    shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#representative .text")]
    assert shown and all("<" in t or "[U+" in t or "refund" in t for t in shown)
    untouched(driver)
    driver.get(f"{base}/room/customers")
    who = driver.find_element(By.CSS_SELECTOR, "#queue .customer-id").text
    assert who == '<i id="cust-injected">cust</i>[U+202E]-99'
    untouched(driver)


def test_a_page_updates_without_reloading(driver: Any, site: tuple[str, Room]) -> None:
    base, room = site
    driver.get(f"{base}/room/customers")
    until(lambda: driver.find_element(By.ID, "live-state").text == "live", what="the stream")
    driver.execute_script("window.notReloaded = 42")
    assert "cust-new-1" not in driver.find_element(By.ID, "queue").text
    new = health("cust-new-1", CustomerTier.AT_RISK, 99, brand="globex-bank")
    room.feed.apply(TopicKind.CUSTOMERS, b"globex-bank/cust-new-1", new.to_json())
    until(
        lambda: "cust-new-1" in driver.find_element(By.ID, "queue").text,
        what="the new customer to appear",
    )
    assert driver.execute_script("return window.notReloaded") == 42
    first = driver.find_element(By.CSS_SELECTOR, "#queue .customer-id").text
    assert first == "cust-new-1"  # the highest risk comes first


def test_a_phone_gets_one_column_without_sideways_scrolling(
    tmp_path: Path, site: tuple[str, Room]
) -> None:
    base, _ = site
    with chromium(tmp_path / "phone", width=390, height=844) as phone:
        log_in(phone, base, TOKEN)
        for path in ("/room/", "/room/customers"):
            phone.get(base + path)
            overflow = phone.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, path
        phone.get(base + "/room/")
        assert (
            phone.execute_script(
                "return getComputedStyle(document.querySelector('#brands thead')).display"
            )
            == "none"
        )
