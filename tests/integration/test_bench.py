"""The benchmark command end to end, shortened: real servers, real load, real report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_bench_runs_every_server_and_writes_its_report(tmp_path: Path) -> None:
    readme_before = (ROOT / "README.md").read_text()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--models",
            "bundled",
            "--duration",
            "1",
            "--repeats",
            "1",
            "--interleaved-repeats",
            "1",
            "--warmup",
            "0.5",
            "--open-rate",
            "10",
            "--open-duration",
            "1",
            "--goodput-step",
            "1",
            "--goodput-steps",
            "2",
            "--overload-duration",
            "1",
            "--out",
            str(tmp_path),
            "--no-readme",
            # The peers' virtualenvs take minutes and GBs to build; test_peers.py covers how
            # they are started, and bench/results/ holds a real run with them.
            "--peers",
            "",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["model"], r["server"]) for r in results["runs"]] == [
        ("bundled", "tutorial"),
        ("bundled", "sentimon-torch"),
        ("bundled", "sentimon-onnx"),
        ("bundled", "sentimon-onnx-nostore"),
        ("bundled", "sentimon-onnx-padded"),
        ("bundled", "sentimon-onnx-nodrift"),
        ("bundled", "sentimon-onnx-1w"),
    ]
    assert results["skipped_peers"] == {}
    for run in results["runs"]:
        [window] = run["closed"]
        assert window["requests"] > 0 and window["errors"] == 0, run["server"]
        assert window["cpu_cores"] > 0
        assert run["open"]["requests"] == 10
        assert window["health_ms"], run["server"]
        # Two rates tried on each server but the variants measured in turns with the defaults.
        variant = run["server"] in (
            "sentimon-onnx-nostore",
            "sentimon-onnx-padded",
            "sentimon-onnx-nodrift",
        )
        assert len(run["goodput"]) == (0 if variant else 2), run["server"]
        for step in run["goodput"]:
            assert step["requests"] > 0 and step["p95_ms"] > 0, run["server"]
    [overload] = results["overload"]
    assert overload["model"] == "bundled" and overload["rate"] == 5 * overload["capacity_rps"]
    assert sum(overload["statuses"].values()) > 0 and overload["idle_ms"] > 0
    assert {"int8/torch", "fp32/torch", "int8/onnxruntime", "fp32/onnxruntime"} == set(
        results["peaks"]["gops"]
    )
    markdown = (tmp_path / "results.md").read_text()
    assert "| sentimon-onnx |" in markdown and "| target | goal | measured | met |" in markdown
    assert "**Goodput at the seeds' service level** (p95 <= 200 ms, p99 <= 500 ms" in markdown
    assert "| bundled: server | goodput req/s | vs tutorial |" in markdown
    assert "| bundled goodput vs tutorial | >= 6x |" in markdown
    assert "**Overload** (`sentimon-onnx` with the admission bound on" in markdown
    assert "| bundled at 5x capacity: 429 answered, p99 | < 50 ms |" in markdown
    assert "| bundled throughput, store on vs off | >= 95% |" in markdown
    assert "| bundled throughput, drift on vs off | >= 95% |" in markdown
    assert "| bundled throughput, sequence packing on vs off | >= 95% |" in markdown
    # The store-on servers logged their predictions, each in a fresh SQLite file.
    work = ROOT / ".cache" / "bench" / "data"
    for server in ("sentimon-onnx", "sentimon-onnx-padded", "sentimon-onnx-1w"):
        assert (work / f"bundled-{server}" / "sentimon.db").stat().st_size > 0
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ROOT / "README.md").read_text() == readme_before


def test_soak_runs_and_writes_its_verdict(tmp_path: Path) -> None:
    """`make soak` shortened to a few seconds at a fixed rate (the goodput search is the
    bench's, tested above)."""
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench.soak", "--rate", "20", "--duration", "6",
            "--window", "2", "--warmup", "2", "--control", "1", "--out", str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    results = json.loads((tmp_path / "soak.json").read_text())
    assert [round(w["end_s"]) for w in results["windows"]] == [2, 4, 6], completed.stderr[-3000:]
    # The control: one window on a new process over the same prediction log.
    assert [round(w["end_s"]) for w in results["control"]] == [2], completed.stderr[-3000:]
    for window in results["windows"] + results["control"]:
        assert 20 <= window["requests"] <= 60 and window["rss_mb"] > 100
        assert window["health_max_ms"] > 0 and window["metrics_max_ms"] > 0
    verdict = results["verdict"]
    assert verdict["errors"] == 0
    assert verdict["p99_control_ms"] == results["control"][0]["p99_ms"]
    # The exit status is the verdict (a few seconds are too short to promise it is met).
    assert completed.returncode == (0 if verdict["met"] else 1), completed.stderr[-3000:]
    markdown = (tmp_path / "soak.md").read_text()
    assert "| errors | 0 | 0 | yes |" in markdown
    assert "Poisson arrivals at 20.0 req/s for 6 s" in markdown
    assert "| p99, last third vs the control (a new process, right after) |" in markdown
