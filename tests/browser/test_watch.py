"""The Watch view: this replica's numbers, the same as /metrics, refreshed while it is open;
parts that are not there say so instead of showing zeros."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from prometheus_client.parser import text_string_to_metric_families

from tests.browser.conftest import PROMETHEUS_URL, Watched, start_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _counts(server: str) -> dict[str, float]:
    """What /metrics says, summed as the Watch view's totals are."""
    out = {"requests": 0.0, "4xx": 0.0, "5xx": 0.0, "feedback": 0.0, "right": 0.0}
    for family in text_string_to_metric_families(httpx.get(f"{server}/metrics").text):
        for s in family.samples:
            if s.name == "http_requests_total" and s.labels["handler"] != "/live":
                out["requests"] += s.value
                out[f"{s.labels['status'][0]}xx"] = (
                    out.get(f"{s.labels['status'][0]}xx", 0) + s.value
                )
            elif s.name == "sentiment_predictions_total":
                key = f"predicted {s.labels['sentiment']}"
                out[key] = out.get(key, 0.0) + s.value
            elif s.name == "sentiment_feedback_total":
                out["feedback"] += s.value
                out["right"] += s.value if s.labels["correct"] == "true" else 0.0
    return out


def _cell(page: Page, name: str) -> str:
    return page.get_by_role("row", name=re.compile(f"^{name}\\b")).get_by_role("cell").inner_text()


def test_the_numbers_match_metrics(watched: Watched, server: str) -> None:
    page = watched.page
    for text in ["love it", "hate it", "it is tuesday"] * 4:
        assert httpx.post(f"{server}/predict", json={"text": text}).status_code == 200
    assert httpx.post(f"{server}/predict", json={"text": ""}).status_code == 422
    rid = httpx.post(f"{server}/predict", json={"text": "so good"}).json()["request_id"]
    httpx.post(f"{server}/feedback", json={"request_id": rid, "correct": True})

    page.get_by_role("link", name="Watch").click()
    expect(page.get_by_role("link", name="Watch")).to_have_attribute("aria-current", "page")
    counts = _counts(server)
    expect(page.get_by_role("row", name=re.compile(r"^Requests\b"))).to_contain_text(
        f"{counts['requests']:,.0f}"
    )
    assert _cell(page, "Requests") == f"{counts['requests']:,.0f}"
    assert _cell(page, "Answered with 4xx") == f"{counts['4xx']:,.0f}"
    assert _cell(page, "Answered with 5xx") == f"{counts['5xx']:,.0f}"
    for label in ("negative", "neutral", "positive"):
        assert _cell(page, f"Predicted {label}") == f"{counts[f'predicted {label}']:,.0f}"
    assert _cell(page, "Feedback") == f"{counts['feedback']:,.0f} ({counts['right']:,.0f} right)"
    agreement = 100 * counts["right"] / counts["feedback"]
    expect(page.locator("#now-feedback")).to_have_text(
        f"{agreement:.1f}% of {counts['feedback']:,.0f}"
    )

    expect(page.locator("#now-rps")).to_have_text(re.compile(r"^\d+\.\d\d$"))
    expect(page.locator("#now-p50")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    expect(page.locator("#now-rejected")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.get_by_role("row", name=re.compile(r"^Label mix\b"))).to_be_visible()
    expect(
        page.get_by_role(
            "img", name=re.compile(r"^Prediction latency, last \d+ (seconds|minutes); latest: p50 ")
        )
    ).to_be_visible()
    expect(page.get_by_role("link", name="Prometheus")).to_have_attribute("href", PROMETHEUS_URL)
    expect(page.get_by_text("Alertmanager: not set (SENTIMON_ALERTMANAGER_URL)")).to_be_visible()

    # It refreshes by itself: new traffic shows up without a reload.
    httpx.post(f"{server}/predict", json={"text": "best day ever"})
    expect(page.get_by_role("row", name=re.compile(r"^Predicted positive\b"))).to_contain_text(
        f"{counts['predicted positive'] + 1:,.0f}"
    )


def test_what_is_off_says_not_available(browser: Browser, tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--no-store", "--no-drift", "--live-interval-s", "1")
    try:
        page = browser.new_page()
        page.goto(f"{url}/ui/#watch")
        expect(page.locator("#now-feedback")).to_have_text(
            "not available: the store is off (SENTIMON_STORE=false)"
        )
        expect(page.locator("#now-drift")).to_have_text(
            "not available: drift is off (SENTIMON_DRIFT=false)"
        )
        expect(page.locator("#now-p50")).to_have_text("no predictions")
        expect(
            page.get_by_text("Not available: drift is off (SENTIMON_DRIFT=false).")
        ).to_be_visible()
        expect(page.get_by_role("row", name=re.compile(r"^Feedback\b"))).to_contain_text(
            "not available"
        )
        expect(page.get_by_text("Prometheus: not set (SENTIMON_PROMETHEUS_URL)")).to_be_visible()
        page.close()
    finally:
        stop(process)
