"""`sentimon traffic --feedback-share` against a fake API: what is sent and what is reported."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from sentimon.cli.main import app
from sentimon.traffic.feedback import SOURCE
from sentimon.traffic.scenarios import ScenarioOptions, build_requests
from tests.unit.traffic.fake_api import FakeApi, serving

runner = CliRunner()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with serving(FakeApi()) as running:
        yield running


def rows(output: str) -> dict[str, str]:
    """The summary table's rows: measure -> value."""
    return {
        name.strip(): value.strip()
        for name, value in re.findall(r"^│ (.+?) │ (.+?) │$", output, flags=re.MULTILINE)
    }


def traffic(api: FakeApi, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["traffic", "--url", api.url, "--rate", "50", "--duration", "1", "--seed", "3", *args],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def test_feedback_share_sends_the_corpus_labels_and_reports_each_outcome(api: FakeApi) -> None:
    # The n-th feedback received: ..., 7th of ten a duplicate, 8th a conflict, 9th a 503.
    api.feedback_status = lambda n: {7: 200, 8: 409, 9: 503}.get(n % 10, 201)
    code, output = traffic(api, "--feedback-share", "0.5")
    assert code == 0, output
    sent = build_requests("normal", ScenarioOptions(seed=3, feedback_share=0.5))[:50]
    n = sum(label is not None for r in sent for label in r.feedback)
    assert n > 10 and len(api.feedback) == n
    assert {f["source"] for f in api.feedback} == {SOURCE}
    created = sum(1 for i in range(n) if i % 10 < 7)
    duplicate, conflict, failed = (sum(1 for i in range(n) if i % 10 == k) for k in (7, 8, 9))

    def share(k: int) -> str:
        return f"{k} ({k / n:.0%})"

    assert "open loop, 50 req/s, feedback on 50% of answered texts, up to 1 s" in output
    table = rows(output)
    assert table["HTTP 200"] == "50 (100%)"  # predictions only
    assert table["feedback sent"] == str(n)
    assert table["feedback created (201)"] == share(created)
    assert table["feedback duplicate (200)"] == share(duplicate)
    assert table["feedback conflict (409)"] == share(conflict)
    assert table["feedback errors (HTTP 503: " + str(failed) + ")"] == share(failed)
    assert not any(name.startswith(("feedback skipped", "feedback dropped")) for name in table)


def test_labels_the_model_lacks_are_skipped(api: FakeApi) -> None:
    api.probabilities = {"LABEL_0": 0.5, "LABEL_1": 0.5}
    code, output = traffic(api, "--feedback-share", "1")
    assert code == 0, output
    sent = build_requests("normal", ScenarioOptions(seed=3, feedback_share=1))[:50]
    n = sum(len(r.feedback) for r in sent)
    assert api.feedback == []
    table = rows(output)
    assert table["feedback sent"] == "0"
    assert table["feedback created (201)"] == "0"
    assert table["feedback skipped (label not the model's)"] == str(n)


def test_without_a_share_nothing_changes(api: FakeApi) -> None:
    code, output = traffic(api)
    assert code == 0, output
    assert "/feedback" not in api.paths and "feedback" not in output
    assert list(rows(output)) == [
        "successful (2xx) per second",
        "latency p50",
        "latency p95",
        "latency p99",
        "HTTP 200",
    ]


def test_the_share_must_be_between_0_and_1() -> None:
    result = runner.invoke(app, ["traffic", "--feedback-share", "1.5"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--feedback-share': Input should be less than or equal to 1" in (
        result.output
    )
