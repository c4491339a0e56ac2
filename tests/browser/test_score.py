"""The Score view: a file or pasted lines through /predict/batch, into a table that sorts,
filters, takes feedback per row and downloads as CSV; bounded, cancellable, never frozen."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, Route, expect

from sentimon.traffic.tweets import load_tweets
from tests.browser.conftest import Watched, feedback_count

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LABELS = ("negative", "neutral", "positive")


def _open(page: Page) -> None:
    page.get_by_role("link", name="Score a file").click()
    expect(page.get_by_role("heading", name="Score a file")).to_be_visible()


def _score(page: Page) -> None:
    page.get_by_role("button", name="Score", exact=True).click()


def _txt(name: str, lines: list[str]) -> FilePayload:
    return FilePayload(name=name, mimeType="text/plain", buffer="\n".join(lines).encode())


def _labels_shown(page: Page) -> list[str]:
    return page.locator("#rows td.label").all_inner_texts()


def test_score_a_500_line_csv_sort_filter_correct_and_download(
    watched: Watched, server: str, tmp_path: Path
) -> None:
    page = watched.page
    texts = [text for text, _ in load_tweets()[:499]]
    texts.append('she said "no", then\nleft, twice')  # quotes, comma and newline in a field
    path = tmp_path / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "lang"])
        writer.writerows([i, text, "en"] for i, text in enumerate(texts))

    _open(page)
    page.get_by_label("File", exact=True).set_input_files(path)
    expect(page.locator("#file-info")).to_have_text("tweets.csv: 500 texts in column “text”.")
    expect(page.get_by_label("Text column")).to_have_value("1")
    _score(page)
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^Done: 500 of 500 scored in \d+\.\d s\.$"), timeout=60_000
    )
    expect(page.locator("#page-info")).to_have_text("Rows 1–50 of 500")

    with page.expect_download() as waiting:
        page.get_by_role("button", name="Download CSV").click()
    download = waiting.value
    assert download.suggested_filename == "tweets-sentiment.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["text"] for r in rows] == texts
    assert [int(r["row"]) for r in rows[:3]] == [2, 3, 4]  # the file's line numbers
    assert list(rows[0]) == [
        "row", "text", "label", "score", "p_negative", "p_neutral", "p_positive",
        "request_id", "error", "feedback",
    ]  # fmt: skip
    for r in rows:
        probabilities = [float(r[f"p_{label}"]) for label in LABELS]
        assert r["label"] == LABELS[probabilities.index(max(probabilities))]
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
        assert r["error"] == r["feedback"] == ""
    # What the table and the file hold is what the server answered and stored.
    for r in rows[::50]:
        stored = httpx.get(f"{server}/feedback/{r['request_id']}").json()["prediction"]
        assert (stored["label"], stored["score"]) == (r["label"], pytest.approx(float(r["score"])))

    negatives = sum(r["label"] == "negative" for r in rows)
    page.get_by_label("Show").select_option("negative")
    expect(page.locator("#page-info")).to_have_text(f"Rows 1–{min(50, negatives)} of {negatives}")
    assert set(_labels_shown(page)) == {"negative"}

    page.get_by_role("button", name="Confidence").click()
    header = page.get_by_role("columnheader", name="Confidence")
    expect(header).to_have_attribute("aria-sort", "ascending")
    shown = [
        float(v.rstrip("%")) for v in page.locator("#rows td.num:nth-child(4)").all_inner_texts()
    ]
    assert shown == sorted(shown)
    page.get_by_role("button", name="Confidence").click()
    expect(header).to_have_attribute("aria-sort", "descending")

    first = page.locator("#rows tr").first.locator("td").first.inner_text()
    before = feedback_count(server, "negative", "positive")
    page.get_by_role("button", name=f"Wrong, row {first}", exact=True).click()
    page.get_by_label(f"Right label, row {first}", exact=True).select_option("positive")
    page.get_by_role("button", name=f"Send, row {first}", exact=True).click()
    expect(page.get_by_role("cell", name="Recorded: wrong; right label positive.")).to_be_visible()
    assert feedback_count(server, "negative", "positive") == before + 1

    with page.expect_download() as waiting:
        page.get_by_role("button", name="Download CSV").click()
    again = list(csv.DictReader(io.StringIO(Path(waiting.value.path()).read_text("utf-8"))))
    assert again[int(first) - 1]["feedback"] == "Recorded: wrong; right label positive."


def test_a_file_over_the_limit_is_refused_with_what_to_do(watched: Watched) -> None:
    page = watched.page
    _open(page)
    big = FilePayload(name="big.txt", mimeType="text/plain", buffer=b"hello\n" * 1_835_000)
    page.get_by_label("File", exact=True).set_input_files(big)
    expect(page.get_by_role("alert")).to_have_text(
        "big.txt is 10.5 MB; the page takes files up to 10 MB. Split it, or use the command "
        "line: sentimon predict --file big.txt --output results.csv"
    )


def test_jsonl_with_a_broken_line_and_a_text_too_long(watched: Watched) -> None:
    page = watched.page
    _open(page)
    lines = [
        json.dumps({"id": 1, "tweet": "best concert of my life"}),
        json.dumps({"id": 2, "tweet": "x" * 2001}),
        "{not json",
        json.dumps({"id": 3, "tweet": "the train is late again"}),
    ]
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "posts.jsonl", "mimeType": "application/json", "buffer": "\n".join(lines).encode()}
    )
    expect(page.locator("#file-info")).to_have_text(
        "posts.jsonl: 3 texts in field “tweet”. "
        "1 line is not a JSON object (first: line 3) and was skipped."
    )
    _score(page)
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^Done: 2 of 3 scored in \d+\.\d s\. 1 not scored \(see the table\)\.$")
    )
    page.get_by_label("Show").select_option("(not scored)")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows td.error")).to_have_text(
        "Too long: 2,001 characters; the limit is 2,000."
    )


def test_ten_thousand_lines_finish_without_freezing_the_page(watched: Watched) -> None:
    page = watched.page
    _open(page)
    # Short lines: the page's work per row is the same, the model's is less.
    words = ("great game", "awful traffic", "meeting at", "love this", "so tired", "new phone")
    lines = [f"{words[i % len(words)]} {i}" for i in range(10_000)]
    page.get_by_label("File", exact=True).set_input_files(_txt("many.txt", lines))
    expect(page.locator("#file-info")).to_have_text("many.txt: 10,000 texts.")
    page.evaluate(
        "window.longTasks = [];"
        "new PerformanceObserver((list) => list.getEntries()"
        ".forEach((e) => window.longTasks.push(e.duration))).observe({type: 'longtask'});"
    )
    _score(page)
    expect(page.get_by_role("status")).to_have_text(
        re.compile(r"^Done: 10,000 of 10,000 scored"), timeout=180_000
    )
    longest = page.evaluate("Math.max(0, ...window.longTasks)")
    assert longest < 200, f"the page was unresponsive for {longest:.0f} ms"
    expect(page.locator("#page-info")).to_have_text("Rows 1–50 of 10,000")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#page-info")).to_have_text("Rows 51–100 of 10,000")


def test_cancel_stops_and_keeps_what_was_scored(watched: Watched) -> None:
    page = watched.page
    _open(page)
    tweets = [text for text, _ in load_tweets()]
    lines = [tweets[i % len(tweets)].replace("\n", " ") for i in range(5_000)]
    page.get_by_label("File", exact=True).set_input_files(_txt("some.txt", lines))
    _score(page)
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Scored [1-9][\d,]* of 5,000…$"))
    page.get_by_role("button", name="Cancel").click()
    status = page.get_by_role("status")
    expect(status).to_have_text(re.compile(r"^Cancelled: [\d,]+ of 5,000 scored\.$"))
    scored = int(re.findall(r"[\d,]+", status.inner_text())[0].replace(",", ""))
    assert 0 < scored < 5_000
    expect(page.get_by_role("button", name="Score", exact=True)).to_be_enabled()
    page.get_by_label("Show").select_option("(not scored)")
    expect(page.locator("#page-info")).to_have_text(f"Rows 1–50 of {5_000 - scored:,}")
    expect(page.locator("#rows td.error").first).to_have_text("Cancelled before it was sent.")


# An answer whose head has arrived and whose body is still on its way; fetch() hands it over
# at the head, and `call` then reads the body.
_ARRIVING = """async ([cancel, chunk]) => {
  const { call } = await import('./api.js');
  const realFetch = window.fetch;
  window.fetch = async (url, options) => {
    const body = new ReadableStream({
      start(stream) {
        stream.enqueue(new TextEncoder().encode(chunk));
        if (!cancel) stream.close();
        options.signal?.addEventListener('abort', () =>
          stream.error(new DOMException('The user aborted a request.', 'AbortError')));
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const controller = new AbortController();
  try {
    const got = call('predict/batch', { method: 'POST', body: '{}', signal: controller.signal });
    if (cancel) setTimeout(() => controller.abort(), 20);
    return await got;
  } finally {
    window.fetch = realFetch;
  }
}"""


def test_a_cancel_while_an_answer_arrives_is_a_cancel(watched: Watched) -> None:
    # CI once cancelled between an answer's head and its body: the call said ok with no body,
    # the page threw reading its predictions and stayed at "Scored 64 of 5,000…".
    got = watched.page.evaluate(_ARRIVING, [True, '{"predictions": ['])
    assert got == {"ok": False, "status": 0, "aborted": True, "message": "Cancelled."}


def test_an_answer_that_is_not_json_is_an_error_not_a_result(watched: Watched) -> None:
    got = watched.page.evaluate(_ARRIVING, [False, '{"predictions": ['])
    assert got == {
        "ok": False,
        "status": 200,
        "body": None,
        "message": "The service's answer could not be read (HTTP 200).",
        "retryAfter": None,
    }


@pytest.mark.parametrize(
    ("csv_text", "rows"),
    [
        ("a,b\r\n1,2\r\n", [["a", "b"], ["1", "2"]]),
        ('text\n"one, two"\n"say ""hi"""\n', [["text"], ["one, two"], ['say "hi"']]),
        ('text,n\n"line\nbreak",3', [["text", "n"], ["line\nbreak", "3"]]),
        ("\ufefftext\nx\n", [["text"], ["x"]]),
        ("text,n\n,1\nlast", [["text", "n"], ["", "1"], ["last"]]),
    ],
)
def test_the_csv_reader_follows_rfc_4180(
    watched: Watched, csv_text: str, rows: list[list[str]]
) -> None:
    parsed = watched.page.evaluate(
        "async (text) => (await import('./parse.js')).parseCsv(text)", csv_text
    )
    assert parsed == rows


def test_a_busy_service_is_retried_after_its_retry_after(watched: Watched, server: str) -> None:
    page = watched.page
    refused: list[str] = []

    def once_busy(route: Route) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        route.fulfill(
            status=429,
            headers={"Retry-After": "1", "content-type": "application/json"},
            body=json.dumps({"error": "server busy", "error_type": "overloaded"}),
        )

    page.route(f"{server}/predict/batch", once_busy)
    _open(page)
    page.get_by_label("Texts, one per line").fill("sunny again\nlost my keys")
    _score(page)
    expect(page.get_by_role("status")).to_have_text(
        "The service is busy: server busy. Retrying in 1 s…"
    )
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Done: 2 of 2 scored"))
    assert len(refused) == 1
    watched.console_errors.clear()  # Chromium's own line for the 429
