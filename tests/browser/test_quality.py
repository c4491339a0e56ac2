"""Every view: accessible (axe-core finds nothing serious), usable at phone and desktop width
in light and dark, and by keyboard alone. The screenshots in docs/screenshots/ (the README
shows them) are taken here."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from sentimon.traffic.tweets import load_tweets
from tests.browser.conftest import SCREENSHOTS, WIDTHS, analyze

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _check(page: Page, width: int, name: str) -> None:
    results = Axe().run(page)
    serious = [
        v["id"] for v in results.response["violations"] if v["impact"] in {"serious", "critical"}
    ]
    assert serious == [], results.generate_report()
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_view_is_accessible_and_fits_at_phone_and_desktop_width(
    browser: Browser, server: str, width: str
) -> None:
    w, h = WIDTHS[width]
    tweets = [text for text, _ in load_tweets()[:12]]
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{server}/ui/")
        expect(page.get_by_text(re.compile(r"sentimon-minilm-vader"))).to_be_visible()
        analyze(page, "I love the new update, everything is so much faster!")
        expect(page.locator("#result-label")).to_have_text("positive")
        page.get_by_role("button", name="Wrong").click()
        _check(page, w, f"analyze-{w}-{scheme}")

        page.get_by_role("link", name="Score a file").click()
        page.get_by_label("Texts, one per line").fill("\n".join(tweets))
        page.get_by_role("button", name="Score", exact=True).click()
        expect(page.get_by_role("status")).to_have_text(re.compile(r"^Done: 12 of 12 scored"))
        page.get_by_role("button", name="Wrong, row 2").click()
        _check(page, w, f"score-{w}-{scheme}")

        page.get_by_role("link", name="Watch").click()
        expect(page.locator("#now-rps")).to_have_text(re.compile(r"^\d+\.\d\d$"))
        expect(page.locator("#now-p95")).to_have_text(re.compile(r" ms$"))
        _check(page, w, f"watch-{w}-{scheme}")
        context.close()


def test_keyboard_only(browser: Browser, server: str) -> None:
    page = browser.new_page()
    page.goto(f"{server}/ui/")
    expect(page.get_by_text(re.compile(r"sentimon-minilm-vader"))).to_be_visible()
    for _ in range(4):  # the three views' links, then the text box
        page.keyboard.press("Tab")
    expect(page.get_by_label("Text to analyze")).to_be_focused()
    page.keyboard.type("this is terrible")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Analyze")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#result-label")).to_have_text("negative")

    page.goto(f"{server}/ui/")
    expect(page.get_by_text(re.compile(r"sentimon-minilm-vader"))).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Score a file")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Score a file")).to_be_visible()
    page.keyboard.press("Tab")  # the Watch link
    page.keyboard.press("Tab")
    expect(page.get_by_label("Texts, one per line")).to_be_focused()
    page.keyboard.type("what a lovely morning")
    page.keyboard.press("Enter")
    page.keyboard.type("my phone died again")
    page.keyboard.press("Tab")  # the file chooser
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Score", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Done: 2 of 2 scored"))
    # Show, Download CSV, the four sortable headers, then the first row's Right.
    for _ in range(7):
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Right, row 1")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("cell", name="Recorded: right (positive).")).to_be_visible()
    page.close()
