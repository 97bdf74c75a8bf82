"""A real headless Chromium (Debian's ``chromium`` and ``chromedriver``) driven by Selenium, and a
real aiohttp server in a thread, for the room's browser tests.

Chromium starts with a fresh profile and no background networking; when the block ends the
driver quits and any process it started that is still there is killed by its pid.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from aiohttp import web

from services.kafka_local import free_port

CHROMIUM = Path(os.environ.get("LISTENWELL_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("LISTENWELL_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


@contextmanager
def chromium(workdir: Path, *, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Selenium ``WebDriver`` on a fresh headless Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        f"the browser tests need {CHROMIUM} and {CHROMEDRIVER} "
        "(apt-get install chromium chromium-driver; .ci/run installs them)"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={workdir / 'profile'}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(workdir / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    driver_pid = service.process.pid
    try:
        yield driver
    finally:
        started = [driver_pid, *_descendants(driver_pid)]
        try:
            driver.quit()
        finally:
            for pid in started:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free local port from a thread; yields its base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=2)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def log_in(driver: Any, base: str, token: str, path: str = "/room/") -> None:
    """Open ``path``, get sent to the login form, type the token, and come back."""
    from selenium.webdriver.common.by import By

    driver.get(base + path)
    assert "/room/login" in driver.current_url, driver.current_url
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "login").click()
    until(lambda: "/room/login" not in driver.current_url, what="the login to finish")


def until(condition: Callable[[], Any], *, what: str, patience_s: float = 60.0) -> Any:
    """Poll ``condition`` until truthy (a liveness bound, not a speed check)."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # an element replaced while we looked at it: look again
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
