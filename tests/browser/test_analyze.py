"""The Analyze view: one text, its label, and feedback on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Watched, analyze, answer, feedback_count, start_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.browser]


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


def test_feedback_is_recorded_and_counted_in_metrics(watched: Watched, server: str) -> None:
    page = watched.page
    before_right = feedback_count(server, "positive", "positive")
    analyze(page, "what a great game, so happy we won")
    expect(page.locator("#result-label")).to_have_text("positive")
    page.get_by_role("button", name="Right").click()
    expect(page.get_by_role("status")).to_have_text("Recorded: right (positive).")
    expect(page.get_by_role("button", name="Right")).to_be_disabled()
    assert feedback_count(server, "positive", "positive") == before_right + 1

    before_wrong = feedback_count(server, "positive", "negative")
    label = answer(page, "oh great, another delay, just what I needed")
    page.get_by_role("button", name="Wrong").click()
    other = "neutral" if label == "negative" else "negative"
    page.get_by_label("Right label").select_option(other)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text(f"Recorded: wrong; right label {other}.")
    if label == "positive" and other == "negative":
        assert feedback_count(server, "positive", "negative") == before_wrong + 1


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
        stop(process)  # and once the server is gone altogether
        page.get_by_role("button", name="Analyze").click()
        expect(page.get_by_role("alert")).to_have_text("The service cannot be reached.")
        page.close()
    finally:
        stop(process)


def test_an_overloaded_service_says_when_to_try_again(watched: Watched, server: str) -> None:
    page = watched.page
    # What the batcher answers when its queue is full, without having to fill it.
    page.route(
        f"{server}/predict",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "2", "content-type": "application/json"},
            body=json.dumps(
                {
                    "error": "server busy: 256 texts queued, limit 256; retry shortly",
                    "error_type": "overloaded",
                }
            ),
        ),
    )
    analyze(page, "is anyone there")
    expect(page.get_by_role("alert")).to_have_text(
        "The service is busy: server busy: 256 texts queued, limit 256; retry shortly. "
        "Try again in 2 s."
    )
    expect(page.locator("#result")).to_be_hidden()
    watched.console_errors.clear()  # Chromium's own line for the 429
