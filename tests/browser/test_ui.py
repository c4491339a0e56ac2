"""The web page at /ui in real Chromium (Debian's), against a real server with the bundled
model, driven by role and label as a person would. Screenshots of each view at 375 px and
1440 px go to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from bench.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

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


def start_server(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        SENTIMON_CACHE_DIR=str(tmp / "cache"),
        SENTIMON_DATA_DIR=str(tmp / "data"),
    )
    with (tmp / "server.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "sentimon", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and (
                "--model" in args or httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            ):
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail("server not ready in 120 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_server(tmp_path_factory.mktemp("ui-server"), "--num-threads", "1")
    yield url
    stop(process)


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


def test_analyze_a_text_and_see_its_label_probabilities_and_id(watched: Watched) -> None:
    page = watched.page
    analyze(page, "I love this so much, best day ever!")
    expect(page.locator("#result-label")).to_have_text("positive")
    meters = page.get_by_role("meter")
    expect(meters).to_have_count(3)
    expect(page.get_by_role("meter", name="positive")).to_have_attribute(
        "aria-valuenow", re.compile(r"^(9\d|100)\.\d$")
    )
    expect(page.locator("#result-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    expect(page.locator("#result-latency")).to_have_text(re.compile(r"^\d+ ms$"))
    expect(page.locator("#result-model")).to_have_text(re.compile(r"^sentimon-minilm-vader"))


def test_ctrl_enter_analyzes(watched: Watched) -> None:
    page = watched.page
    page.get_by_label("Text to analyze").fill("my flight got cancelled again, worst airline")
    page.get_by_label("Text to analyze").press("Control+Enter")
    expect(page.locator("#result-label")).to_have_text("negative")


def _feedback_count(server: str, predicted: str, actual: str) -> float:
    metrics = httpx.get(f"{server}/metrics").text
    pattern = (
        rf'^sentiment_feedback_total\{{[^}}]*actual="{actual}"[^}}]*predicted="{predicted}"'
        r"[^}]*\} (\S+)$"
    )
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_feedback_is_recorded_and_counted_in_metrics(watched: Watched, server: str) -> None:
    page = watched.page
    before_right = _feedback_count(server, "positive", "positive")
    analyze(page, "what a great game, so happy we won")
    expect(page.locator("#result-label")).to_have_text("positive")
    page.get_by_role("button", name="Right").click()
    expect(page.get_by_role("status")).to_have_text("Recorded: right (positive).")
    expect(page.get_by_role("button", name="Right")).to_be_disabled()
    assert _feedback_count(server, "positive", "positive") == before_right + 1

    before_wrong = _feedback_count(server, "positive", "negative")
    label = answer(page, "oh great, another delay, just what I needed")
    page.get_by_role("button", name="Wrong").click()
    other = "neutral" if label == "negative" else "negative"
    page.get_by_label("Right label").select_option(other)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text(f"Recorded: wrong; right label {other}.")
    if label == "positive" and other == "negative":
        assert _feedback_count(server, "positive", "negative") == before_wrong + 1


def test_a_repeated_answer_is_shown_as_a_duplicate(watched: Watched, server: str) -> None:
    page = watched.page
    answer(page, "the meeting moved to friday")
    request_id = page.locator("#result-id").inner_text()
    sent = httpx.post(f"{server}/feedback", json={"request_id": request_id, "correct": True})
    assert sent.status_code == 201, sent.text
    page.get_by_role("button", name="Right").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Already recorded: right"))


def test_errors_are_readable_next_to_the_input(watched: Watched) -> None:
    page = watched.page
    page.get_by_role("button", name="Analyze").click()
    expect(page.get_by_role("alert")).to_have_text("Type a text to analyze first.")
    analyze(page, "x" * 2001)
    expect(page.get_by_role("alert")).to_have_text(
        "The text was not accepted: text has 2001 characters; the limit is 2000."
    )
    analyze(page, "fine now")
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#result")).to_be_visible()
    # Chromium logs every refused request itself; the page logged nothing.
    assert watched.console_errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]
    watched.console_errors.clear()


def test_a_model_that_is_not_ready_says_so(browser: Browser, tmp_path: Path) -> None:
    process, url = start_server(
        tmp_path, "--model", str(tmp_path / "no-such-model"), "--no-fail-on-model-error"
    )
    try:
        page = browser.new_page()
        page.goto(f"{url}/ui/")
        analyze(page, "hello")
        expect(page.get_by_role("alert")).to_have_text(
            re.compile(r"^The model is not ready: model not ready: .+\. Try again in 5 s\.$")
        )
        page.close()
    finally:
        stop(process)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_accessible_and_usable_at_phone_and_desktop_width(
    browser: Browser, server: str, width: str
) -> None:
    w, h = WIDTHS[width]
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{server}/ui/")
        expect(page.get_by_text(re.compile(r"sentimon-minilm-vader"))).to_be_visible()
        analyze(page, "I love the new update, everything is so much faster!")
        expect(page.locator("#result-label")).to_have_text("positive")
        page.get_by_role("button", name="Wrong").click()
        results = Axe().run(page)
        serious = [
            v["id"]
            for v in results.response["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert serious == [], results.generate_report()
        assert page.evaluate("document.documentElement.scrollWidth") <= w
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"analyze-{w}-{scheme}.png", full_page=True)
        context.close()


def test_keyboard_only(browser: Browser, server: str) -> None:
    page = browser.new_page()
    page.goto(f"{server}/ui/")
    expect(page.get_by_text(re.compile(r"sentimon-minilm-vader"))).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Text to analyze")).to_be_focused()
    page.keyboard.type("this is terrible")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Analyze")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#result-label")).to_have_text("negative")
    page.close()
