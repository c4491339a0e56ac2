"""`python -m bench` (or `make bench`): the whole benchmark in one run, results in bench/results/.

Writes results.json (every window's numbers), results.md (the tables and targets), results.png
(the chart) and the README's benchmark section. `--render` re-renders those from the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.overhead import (
    measure_connection_guard_cost,
    measure_middleware_cost,
    measure_scrape_cost,
)
from bench.peers import PEERS
from bench.report import render_chart, render_markdown, update_readme
from bench.run import MODELS, BenchConfig, run_benchmark
from sentimon.model.cpu import describe_cpu, detect_int8, read_cpuinfo
from sentimon.model.int8 import RECIPE

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    defaults = BenchConfig()
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: %(default)s")
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds")
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument(
        "--interleaved-repeats",
        type=int,
        default=defaults.interleaved_repeats,
        help="windows per server for sentimon-onnx and its -nostore/-nodrift/-padded variants, "
        "measured in turns",
    )
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s, help="seconds")
    parser.add_argument("--open-rate", type=float, default=defaults.open_rate, help="req/s")
    parser.add_argument("--open-duration", type=float, default=defaults.open_duration_s)
    parser.add_argument(
        "--goodput-step",
        type=float,
        default=defaults.goodput_step_s,
        help="seconds per rate tried in the goodput search (longer at low rates)",
    )
    parser.add_argument(
        "--goodput-max-step",
        type=float,
        default=defaults.goodput_max_step_s,
        help="seconds a low rate is tried at most, to see enough requests",
    )
    parser.add_argument(
        "--goodput-steps",
        type=int,
        default=defaults.goodput_steps,
        help="rates tried per server in the goodput search; 0 for none",
    )
    parser.add_argument(
        "--overload-duration",
        type=float,
        default=defaults.overload_s,
        help="seconds at 5x capacity on sentimon with admission on; 0 for none",
    )
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="comma-separated peer servers, each in its own virtualenv: %(default)s; '' for none",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--render", action="store_true", help="only re-render from results.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    out: Path = args.out
    if args.render:
        results = json.loads((out / "results.json").read_text())
    else:
        config = BenchConfig(
            models=[m.strip() for m in args.models.split(",") if m.strip()],
            clients=args.clients,
            duration_s=args.duration,
            repeats=args.repeats,
            interleaved_repeats=args.interleaved_repeats,
            warmup_s=args.warmup,
            open_rate=args.open_rate,
            open_duration_s=args.open_duration,
            goodput_step_s=args.goodput_step,
            goodput_max_step_s=args.goodput_max_step,
            goodput_steps=args.goodput_steps,
            overload_s=args.overload_duration,
            threads=args.threads,
            peers=[p.strip() for p in args.peers.split(",") if p.strip()],
            work_dir=ROOT / ".cache" / "bench",
        )
        results = {"machine": describe_machine(), **run_benchmark(config)}
        results["config"]["work_dir"] = ".cache/bench"
        results["middleware"] = measure_middleware_cost()
        results["connection_guard"] = measure_connection_guard_cost()
        results["scrape"] = measure_scrape_cost()
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render_markdown(results)
    (out / "results.md").write_text("# sentimon benchmark\n\n" + markdown)
    render_chart(results, out / "results.png")
    if not args.no_readme:
        update_readme(ROOT / "README.md", markdown)
    sys.stdout.write(markdown)


def describe_machine() -> dict[str, Any]:
    cpu = describe_cpu(read_cpuinfo()) or platform.processor() or "unknown CPU"
    int8 = detect_int8()
    recipe = RECIPE
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": cpu,
        "int8_recipe": {
            "recipe": recipe.id,
            "weight_bits": recipe.weight_bits,
            "cpu_class": int8.cpu_class,
            "kernel": int8.kernel,
        },
        "cores": os.cpu_count(),
        "memory_gib": mem_kib / 2**20,
        "os": platform.platform(),
        "python": f"Python {platform.python_version()}",
        "torch": version("torch"),
        "onnxruntime": version("onnxruntime"),
        "transformers": version("transformers"),
        "commit": _git_commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


if __name__ == "__main__":
    main()
