"""The per-request profile's reading of py-spy's raw output."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from bench.profile import parse_raw, render_markdown, summarize

_ENTRY = "thread (3864): MainThread;<module> (sentimon:6);Runner.run (asyncio/runners.py:118)"
RAW = f"""\
{_ENTRY};app (sentimon/app.py:10);route (sentimon/api/routes/predict.py:40) 30
{_ENTRY};app (sentimon/app.py:12) 10
thread (3864): MainThread;<module> (sentimon:6);Runner.run (asyncio/runners.py:120) 10
thread (3869): sentimon-infer_0;run (sentimon/batching/batcher.py:300) 5
thread (3876): sentimon-infer_1;run (sentimon/batching/batcher.py:300) 5
thread (3866): sentimon-store;write (sentimon/store/writer.py:80) 2
not a sample line
"""


def test_stacks_are_read_by_thread_with_workers_together_and_lines_dropped() -> None:
    stacks = parse_raw(RAW.splitlines())
    assert set(stacks) == {"MainThread", "sentimon-infer", "sentimon-store"}
    assert stacks["sentimon-infer"] == {("run (sentimon/batching/batcher.py)",): 10}
    assert (
        stacks["MainThread"][
            ("<module> (sentimon)", "Runner.run (asyncio/runners.py)", "app (sentimon/app.py)")
        ]
        == 10
    )


def test_time_per_request_comes_from_the_samples_and_leaves_out_the_entry() -> None:
    # At 100 Hz a sample is 10 ms of the run; over 10 requests, 1 ms of each.
    profile = summarize(parse_raw(RAW.splitlines()), seconds=1.0, requests=10, rate_hz=100)
    assert profile.main_us_per_request == pytest.approx(50_000)
    assert profile.threads == pytest.approx(
        {"MainThread": 0.5, "sentimon-infer": 0.1, "sentimon-store": 0.02}
    )
    # <module> and Runner.run are the process's entry: no inclusive cost of their own.
    assert [astuple(s) for s in profile.top_inclusive] == [
        ("app (sentimon/app.py)", 10_000, 40_000),
        ("route (sentimon/api/routes/predict.py)", 30_000, 30_000),
    ]
    assert astuple(profile.top_self[0]) == (
        "route (sentimon/api/routes/predict.py)",
        30_000,
        30_000,
    )
    markdown = render_markdown(profile, "AMD EPYC, 2 cores", "abc1234")
    assert "**Event loop: 50000 µs per request.**" in markdown
    assert "| `app (sentimon/app.py)` | 40000.0 |" in markdown
    assert "| MainThread | 50.0% |" in markdown
