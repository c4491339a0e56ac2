from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import (
    README_END,
    README_START,
    readme_section,
    render_chart,
    render_markdown,
    targets,
    update_readme,
)

ROOT = Path(__file__).resolve().parents[3]


def window(throughput: float, *, errors: int = 0, health: float = 2.0) -> dict[str, Any]:
    return {
        "throughput": throughput,
        "requests": 100,
        "errors": errors,
        "p50_ms": 10.0,
        "p95_ms": 20.0,
        "p99_ms": 30.0,
        "cpu_cores": 1.5,
        "client_cpu_cores": 0.25,
        "useful_tokens_per_s": throughput * 30,
        "statuses": {"200": 100},
        "health_ms": [health, 1.0],
        "metrics_ms": [3.0],
    }


def step(rate: float, p95: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {
        "rate": rate,
        "requests": int(rate * 8),
        "errors": errors,
        "p95_ms": p95,
        "p99_ms": p99,
        "useful_tokens_per_s": rate * 30,
        "mean_ms": p95 / 2,
    }


def run(
    model: str,
    server: str,
    rps: list[float],
    open_p95: float = 15.0,
    goodput: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "model": model,
        "server": server,
        "label": f"what {server} is",
        "closed": [window(r) for r in rps],
        "open": {**window(15.0), "p95_ms": open_p95},
        "peak_rss_mb": 500.0,
        "goodput": goodput or [],
    }


def overload(**changes: Any) -> dict[str, Any]:
    """An overload row: RoBERTa-base at 5x 170 req/s."""
    return {
        "model": "roberta-base", "capacity_rps": 170.0, "rate": 850.0, "sent_rps": 840.0,
        "duration_s": 10.0, "statuses": {"200": 1700, "429": 6700}, "refused_p99_ms": 31.0,
        "refused_without_retry_after": 0, "admitted_p95_ms": 210.0, "admitted_p99_ms": 260.0,
        "health_p95_ms": 5.0, "health_p99_ms": 9.0, "metrics_p95_ms": 20.0,
        "metrics_p99_ms": 30.0, "rss_before_mb": 700.0, "rss_after_mb": 705.0,
        "idle_ms": 40.0, "recovered_ms": 41.0, **changes,
    }  # fmt: skip


def results(
    fast_rps: list[float], open_p95: float = 15.0, fast_goodput: float = 170.0
) -> dict[str, Any]:
    return {
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "memory_gib": 24.0,
            "python": "Python 3.11",
            "torch": "2.13.0",
            "onnxruntime": "1.x",
            "transformers": "5.x",
            "commit": "abc123",
            "date": "2026-11-23 12:00 UTC",
        },
        "config": {
            "clients": 16,
            "repeats": 3,
            "duration_s": 10.0,
            "warmup_s": 3.0,
            "open_rate": 15.0,
            "open_duration_s": 20.0,
            "corpus_size": 2000,
            "seed": 0,
            "goodput_step_s": 8.0,
        },
        # 1,000 GOP/s int8: 5,882 tokens/s at 0.17 GFLOP per token.
        "peaks": {"threads": 2, "gops": {"int8/torch": 1000.0, "int8/onnxruntime": 800.0}},
        "models": [
            {
                "name": "roberta-base",
                "path": "x",
                "layers": 12,
                "hidden": 768,
                "mean_tokens": 30.0,
                "min_tokens": 6,
                "max_tokens": 57,
                "flops_per_token": 0.17e9,
            }
        ],
        "runs": [
            run("roberta-base", "tutorial", [20.0, 19.0, 21.0], goodput=[step(20, 100, 150)]),
            run("roberta-base", "sentimon-torch", [30.0, 30.0, 30.0]),
            run(
                "roberta-base",
                "sentimon-onnx",
                fast_rps,
                open_p95,
                goodput=[step(fast_goodput, 150, 200), step(fast_goodput * 1.2, 250, 300)],
            ),
            run(
                "roberta-base",
                "bentoml",
                [25.0, 25.0, 25.0],
                goodput=[step(30, 150, 300, errors=1), step(25, 200, 500)],
            ),
        ],
        "skipped_peers": {"mlserver": "its environment could not be built (CalledProcessError)"},
    }


def test_targets_are_ratios_against_the_same_run() -> None:
    met = {t.what: (t.measured, t.met) for t in targets(results([170.0, 160.0, 180.0]))}
    assert met == {
        "RoBERTa-base goodput vs tutorial": ("8.5x", True),
        "RoBERTa-base goodput vs the best peer": ("6.8x", True),
        # 170 req/s * 30 tokens * 0.17 GFLOP / 1,000 GOP/s, and / ONNX Runtime's 800
        "RoBERTa-base useful tokens/s (closed loop) vs int8 peak": (
            "87% (108% of ONNX Runtime's own)",
            True,
        ),
        "RoBERTa-base p95 at 15 req/s open loop": ("15.0 ms", True),
        "roberta-base errors (sentimon-onnx)": ("0", True),
        "roberta-base slowest /healthz or /metrics while saturated": ("3.0 ms", True),
    }


def test_the_share_of_the_serving_engines_own_peak_needs_its_peak() -> None:
    run_results = results([170.0, 160.0, 180.0])
    del run_results["peaks"]["gops"]["int8/onnxruntime"]
    met = {t.what: (t.measured, t.met) for t in targets(run_results)}
    assert met["RoBERTa-base useful tokens/s (closed loop) vs int8 peak"] == ("87%", True)


def test_the_store_may_cost_5_percent_and_no_probe_latency() -> None:
    run_results = results([170.0, 160.0, 180.0])
    run_results["runs"].append(run("roberta-base", "sentimon-onnx-nostore", [180.0, 175.0]))
    met = {t.what: (t.goal, t.measured, t.met) for t in targets(run_results)}
    assert met["roberta-base throughput, store on vs off"] == (">= 95%", "95.8%", True)
    assert met["roberta-base slowest probe while saturated, store on vs off"] == (
        "no rise (within 5 ms)",
        "3.0 vs 3.0 ms",
        True,
    )
    run_results["runs"][-1] = run("roberta-base", "sentimon-onnx-nostore", [200.0])
    costly = {t.what: t.met for t in targets(run_results)}
    assert not costly["roberta-base throughput, store on vs off"]  # 85%


def test_missed_targets_say_so() -> None:
    slow = results([100.0, 100.0, 100.0], open_p95=80.0, fast_goodput=100.0)
    found = {t.what: t for t in targets(slow)}
    assert found["RoBERTa-base goodput vs tutorial"].measured == "5.0x"
    assert not found["RoBERTa-base goodput vs tutorial"].met
    assert not found["RoBERTa-base p95 at 15 req/s open loop"].met
    markdown = render_markdown(slow)
    assert "| RoBERTa-base goodput vs tutorial | >= 8x | 5.0x | **no** |" in markdown


def test_goodput_is_the_highest_rate_tried_that_met_the_service_level() -> None:
    markdown = render_markdown(results([170.0, 160.0, 180.0]))
    rows = [line for line in markdown.splitlines() if line.startswith("| bentoml") and "✓" in line]
    # 30 req/s had an error: not met, though faster; 25 met p95 <= 200 and p99 <= 500 exactly.
    assert rows == [
        "| bentoml | 25.0 | 1.2x | 750 | 13% | 2.5 | 30.0: 150/300 1 err ✗, 25.0: 200/500 ✓ |"
    ]
    assert "| roberta-base: server | goodput req/s | vs tutorial |" in markdown
    assert "found by search, 8 s per rate tried, latency from" in markdown


def test_goodput_legend_says_low_rates_run_longer() -> None:
    run_results = results([170.0, 160.0, 180.0])
    run_results["config"]["goodput_max_step_s"] = 30.0
    assert (
        "found by search, 8 s (at low rates long enough for 60 requests, up to 30 s) per rate "
        "tried, latency from" in render_markdown(run_results)
    )


def test_a_peer_that_met_the_level_at_no_rate_is_named_so() -> None:
    run_results = results([170.0, 160.0, 180.0])
    run_results["runs"][-1]["goodput"] = [step(5, 900, 1200), step(3, 950, 960)]
    found = {t.what: t for t in targets(run_results)}
    best_peer = found["RoBERTa-base goodput vs the best peer"]
    assert (best_peer.measured, best_peer.met) == ("170.0 req/s vs none met", True)


def test_overload_targets_hold_the_refusals_and_the_admitted_to_their_limits() -> None:
    run_results = results([170.0, 160.0, 180.0])
    run_results["overload"] = [overload()]
    found = {t.what: (t.measured, t.met) for t in targets(run_results)}
    m = "roberta-base at 5x capacity"
    assert found[f"{m}: 429 answered, p99"] == ("31.0 ms", True)
    assert found[f"{m}: admitted requests, p95"] == ("210 ms", False)
    assert found[f"{m}: /healthz and /metrics, p99"] == ("30.0 ms", True)
    assert found[f"{m}: memory growth"] == ("+5 MB", True)
    assert found[f"{m}: latency 2 s after"] == ("41.0 vs 40.0 ms", True)
    markdown = render_markdown(run_results)
    assert "| roberta-base | 170.0 | 850 / 840 | 1700 / 6700 / 0 | 31.0 | 210 / 260 |" in markdown


def test_the_shipped_defaults_goodput_is_a_row_of_its_own_with_429s_as_errors() -> None:
    run_results = results([170.0, 160.0, 180.0])
    run_results["overload"] = [
        overload(goodput=[step(136, 120, 180, errors=12), step(100, 90, 120)])
    ]
    markdown = render_markdown(run_results)
    rows = [line for line in markdown.splitlines() if line.startswith("| sentimon-onnx-admission")]
    assert rows == [
        "| sentimon-onnx-admission | 100.0 | 5.0x | 3,000 | 51% | 4.5 "
        "| 136.0: 120/180 12 err ✗, 100.0: 90/120 ✓ |"
    ]
    # The targets stay on the bound-off row, as the peers are measured.
    found = {t.what: t.measured for t in targets(run_results)}
    assert found["RoBERTa-base goodput vs tutorial"] == "8.5x"


def test_markdown_has_one_row_per_server_with_medians() -> None:
    markdown = render_markdown(results([170.0, 160.0, 180.0]))
    rows = [
        line
        for line in markdown.splitlines()
        if line.startswith("| sentimon-onnx") and "✓" not in line  # not the goodput table's
    ]
    assert rows == [
        "| sentimon-onnx | 170.0 | 8.5x | 10.0 | 20.0 | 30.0 | 1.50 | 0.25 | 5,100 | 87% | 15.0 | "
        "30.0 | 0 | 2.0 | 3.0 | 500 |"
    ]
    assert "| tutorial | 20.0 | 1.0x |" in markdown
    assert "| bentoml | 25.0 | 1.2x |" in markdown
    assert markdown.startswith("Machine: Test CPU, 2 cores, 24 GiB;")


def test_scrape_cost_is_a_ratio_against_the_library_in_the_same_run() -> None:
    run = results([170.0, 160.0, 180.0])
    assert "Scrape cost" not in render_markdown(run)  # runs from before it was measured
    run["scrape"] = {"with_us": 1_900.0, "without_us": 3_250.0, "cost_us": -1_350.0, "samples": 512}
    assert (
        "Scrape cost (a new app's registry, 512 samples, in process): 1,900 µs to render "
        "`/metrics` against 3,250 µs through prometheus_client's `generate_latest`: 0.58x."
    ) in render_markdown(run)


def test_machine_line_names_the_int8_recipe_in_use() -> None:
    run = results([170.0])
    run["machine"]["cpu"] = "AMD EPYC (family 25, model 1, AVX2, no VNNI)"
    run["machine"]["int8_recipe"] = {
        "recipe": "4-w7",
        "weight_bits": 7,
        "cpu_class": "no-vnni",
        "kernel": "avx2",
    }
    assert render_markdown(run).startswith(
        "Machine: AMD EPYC (family 25, model 1, AVX2, no VNNI), int8 recipe 4-w7 (7-bit "
        "weights, on int8 kernel avx2), 2 cores, 24 GiB;"
    )


def test_legend_names_every_server_once_and_the_peers_left_out() -> None:
    markdown = render_markdown(results([170.0, 160.0, 180.0]))
    legend = [line for line in markdown.splitlines() if line.startswith("- `")]
    assert legend == [
        "- `tutorial`: what tutorial is",
        "- `sentimon-torch`: what sentimon-torch is",
        "- `sentimon-onnx`: what sentimon-onnx is",
        "- `bentoml`: what bentoml is",
        "- `mlserver`: not measured in this run: its environment could not be built "
        "(CalledProcessError)",
    ]


def test_chart_is_written(tmp_path: Path) -> None:
    render_chart(results([170.0, 160.0, 180.0]), tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_readme_section_is_replaced_in_place(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    update_readme(readme, "| new |\n")
    assert (
        readme.read_text() == f"# x\n\nbefore\n\n{README_START}\n| new |\n{README_END}\n\nafter\n"
    )
    assert readme_section(readme) == "| new |\n"


def test_committed_results_and_readme_are_current() -> None:
    """bench/results/results.md and the README table are rendered from results.json."""
    committed = json.loads((ROOT / "bench" / "results" / "results.json").read_text())
    markdown = render_markdown(committed)
    assert (ROOT / "bench" / "results" / "results.md").read_text() == (
        "# sentimon benchmark\n\n" + markdown
    )
    assert readme_section(ROOT / "README.md") == markdown
