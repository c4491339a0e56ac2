"""The web page at /ui in real Chromium (Debian's), against a real server with the bundled
model: the server, the browser, a page that records every request and console error, and
the steps a person takes."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from tests.servers import start_server as serve

CHROMIUM = "/usr/bin/chromium"
# FACTS.md: Debian's chromium headless, without anything that would call home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"phone": (375, 812), "desktop": (1440, 900)}
PROMETHEUS_URL = "http://127.0.0.1:9090"


def start_server(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    server = serve(tmp, *args, ready="/healthz" if "--model" in args else "/readyz")
    return server.process, server.url


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(
        tmp_path_factory.mktemp("ui-server"),
        "--live-interval-s",
        "1",
        "--prometheus-url",
        PROMETHEUS_URL,
    )
    yield url
    stop(process)


# Module scope, not session: a running sync Playwright holds an asyncio loop on the main
# thread, and later tests' asyncio.run() would find it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with every request and console error it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
def watched(browser: Browser, server: str) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    seen = Watched(page)
    page.goto(f"{server}/ui/")
    expect(page.get_by_text(re.compile(r"sentimon-minilm-vader \(v1-"))).to_be_visible()
    yield seen
    context.close()
    assert all(url.startswith(f"{server}/") for url in seen.requests), seen.requests
    assert seen.console_errors == []


def analyze(page: Page, text: str) -> None:
    page.get_by_label("Text to analyze").fill(text)
    page.get_by_role("button", name="Analyze").click()


def answer(page: Page, text: str) -> str:
    """Analyze `text` and wait for its answer; the label shown."""
    analyze(page, text)
    expect(page.locator("#result")).to_be_visible()
    return page.locator("#result-label").inner_text()


def feedback_count(server: str, predicted: str, actual: str) -> float:
    metrics = httpx.get(f"{server}/metrics").text
    pattern = (
        rf'^sentiment_feedback_total\{{[^}}]*actual="{actual}"[^}}]*predicted="{predicted}"'
        r"[^}]*\} (\S+)$"
    )
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
