"""`python -m bench.soak` (or `make soak`): the bundled model served with sentimon's defaults
(prediction log on SQLite, drift, the admission bound) at half its goodput for 30 minutes.

It first finds the goodput on this machine (bench.goodput, on the same server), then sends
Poisson arrivals at half that rate in one-minute windows while /healthz and /metrics are asked
every 5 s, as a scraper would. Checked: no error, resident memory after warm-up growing by less
than 5%, and p99 stable (the last windows' median p99 within 25% of the first windows' after
warm-up, plus 5 ms). Then, as a control, a new server process on the same prediction log takes
the same rate for a few windows: a host's speed drifts over half an hour, so a rise in the last
windows that the control shares is the machine's, and one it does not share is the server's
(checked the same way: the last windows' median p99 within 25% of the control's, plus 5 ms).
Writes results/soak.json and results/soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.__main__ import describe_machine
from bench.goodput import P95_MS, P99_MS, Step, best, search
from bench.overload import admission_on
from bench.probes import probe
from bench.servers import HOST, Server, ServerSpec, sentimon_spec
from sentimon.traffic.corpus import generate_corpus
from sentimon.traffic.load import Request, closed_loop, open_loop, run

log = logging.getLogger("bench.soak")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MAX_RSS_GROWTH = 0.05
MAX_P99_DRIFT = 1.25
P99_SLACK_MS = 5.0


@dataclass(slots=True)
class SoakWindow:
    end_s: float
    """Seconds since the load began."""
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rss_mb: float
    cpu_cores: float
    health_max_ms: float
    metrics_max_ms: float
    statuses: dict[str, int]
    """Responses by HTTP status (FAILED / DROPPED as the load generator names them)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    errors: int
    rss_growth: float
    """After warm-up: (last RSS - RSS at the end of warm-up) / RSS at the end of warm-up."""
    p99_first_ms: float
    p99_last_ms: float
    """Median p99 of the first and of the last windows after warm-up (a third each)."""
    cpu_first: float
    cpu_last: float
    """Mean cores the server used in those windows."""
    p99_control_ms: float | None = None
    cpu_control: float | None = None
    """The same for the control (a new process on the same log, right after); None without."""

    @property
    def stable(self) -> bool:
        return _within(self.p99_last_ms, self.p99_first_ms)

    @property
    def unaged(self) -> bool:
        """The last windows against a new process at the same rate (true without a control)."""
        return self.p99_control_ms is None or _within(self.p99_last_ms, self.p99_control_ms)

    @property
    def met(self) -> bool:
        return self.errors == 0 and self.rss_growth < MAX_RSS_GROWTH and self.stable and self.unaged


def _within(p99_ms: float, reference_ms: float) -> bool:
    return p99_ms <= MAX_P99_DRIFT * reference_ms + P99_SLACK_MS


def judge(
    windows: list[SoakWindow], warmup_s: float, control: Sequence[SoakWindow] = ()
) -> Verdict:
    """The soak's verdict from its windows (at least one after warm-up and one before or at
    its end) and the control's (errors there count too)."""
    warm = [w for w in windows if w.end_s <= warmup_s]
    after = [w for w in windows if w.end_s > warmup_s]
    if not after:
        raise ValueError("no window after the warm-up")
    baseline = warm[-1].rss_mb if warm else after[0].rss_mb
    third = max(1, len(after) // 3)
    first, last = after[:third], after[-third:]
    return Verdict(
        errors=sum(w.errors for w in (*windows, *control)),
        rss_growth=(after[-1].rss_mb - baseline) / baseline,
        p99_first_ms=_median_p99(first),
        p99_last_ms=_median_p99(last),
        cpu_first=_mean_cpu(first),
        cpu_last=_mean_cpu(last),
        p99_control_ms=_median_p99(control) if control else None,
        cpu_control=_mean_cpu(control) if control else None,
    )


def _median_p99(windows: Sequence[SoakWindow]) -> float:
    return statistics.median(w.p99_ms for w in windows)


def _mean_cpu(windows: Sequence[SoakWindow]) -> float:
    return statistics.fmean(w.cpu_cores for w in windows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=1800, help="seconds of load")
    parser.add_argument("--window", type=float, default=60, help="seconds per window")
    parser.add_argument("--warmup", type=float, default=300, help="seconds not judged")
    parser.add_argument("--rate", type=float, help="req/s; default half the measured goodput")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--control", type=int, default=2, help="windows on a new process after (0: none)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    work = ROOT / ".cache" / "bench"
    data = work / "data" / "soak"
    shutil.rmtree(data, ignore_errors=True)
    spec = admission_on(
        sentimon_spec(
            "sentimon-onnx",
            "sentimon defaults: int8, micro-batching, prediction log on SQLite, drift, "
            "admission bound",
            "bundled",
            work / "sentimon-cache",
            args.threads,
            data_dir=data,
        )
    )
    texts = [item.text for item in generate_corpus(2000, seed=0)]
    requests = [Request("POST", spec.predict_path, spec.body(t)) for t in texts]
    server = Server(spec, work / "logs" / "soak", startup_timeout_s=600)
    try:
        run(closed_loop(HOST, server.port, requests, concurrency=8, duration_s=5))  # warm-up
        steps: list[Step] = []
        settle_s = 0.0
        rate = args.rate
        if rate is None:
            steps = _find_goodput(server, requests)
            found = best(steps)
            if found is None:
                sys.exit("no rate met the service level; nothing to soak at")
            rate = found.rate / 2
            settle_s = _settle(server)
            log.info("the server was idle %.0f s after the goodput search", settle_s)
        log.info("soaking at %.1f req/s for %.0f s", rate, args.duration)
        windows = _soak(server, requests, rate, args.duration, args.window)
    finally:
        server.stop()
    control: list[SoakWindow] = []
    if args.control > 0:
        log.info("control: a new process on the same prediction log, %d windows", args.control)
        control = _control(
            spec, work / "logs" / "soak-control", requests, rate, args.control, args.window
        )
    verdict = judge(windows, args.warmup, control)
    results: dict[str, Any] = {
        "machine": describe_machine(),
        "config": {
            "duration_s": args.duration,
            "window_s": args.window,
            "warmup_s": args.warmup,
            "threads": args.threads,
            "rate": rate,
            "settle_s": settle_s,
            "control_windows": args.control,
            "server": spec.label,
        },
        "goodput": [asdict(s) for s in steps],
        "windows": [asdict(w) for w in windows],
        "control": [asdict(w) for w in control],
        "verdict": {
            **asdict(verdict),
            "stable": verdict.stable,
            "unaged": verdict.unaged,
            "met": verdict.met,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (args.out / "soak.md").write_text(markdown)
    sys.stdout.write(markdown)
    if not verdict.met:
        sys.exit(1)


def _find_goodput(server: Server, requests: list[Request]) -> list[Step]:
    def try_rate(rate: float) -> Step:
        result = run(
            open_loop(
                HOST, server.port, requests, rate=rate, duration_s=8, poisson_seed=len(tried),
                timeout_s=5.0,
            )
        )  # fmt: skip
        summary = result.summary()
        step = Step(rate, summary.requests, summary.errors, summary.p95_s * 1000,
                    summary.p99_s * 1000, 0.0)  # fmt: skip
        tried.append(step)
        log.info("goodput step %.1f req/s: p95 %.0f ms, p99 %.0f ms, %d errors",
                 rate, step.p95_ms, step.p99_ms, step.errors)  # fmt: skip
        time.sleep(2)  # the admission bound keeps any backlog under 70 ms; this is ample
        return step

    tried: list[Step] = []
    hint = run(closed_loop(HOST, server.port, requests, concurrency=16, duration_s=5))
    return search(try_rate, 0.8 * hint.summary().throughput, max_steps=6)


def _control(
    spec: ServerSpec,
    log_dir: Path,
    requests: list[Request],
    rate: float,
    windows: int,
    window_s: float,
) -> list[SoakWindow]:
    """The soak's rate on a new server process over the same prediction log, warmed up and
    idle first: the same machine a minute later, without whatever the soaked process
    accumulated. Its windows take the arrival seeds of the soak's first windows."""
    server = Server(spec, log_dir, startup_timeout_s=600)
    try:
        run(closed_loop(HOST, server.port, requests, concurrency=8, duration_s=5))
        _settle(server)
        return _soak(server, requests, rate, windows * window_s, window_s)
    finally:
        server.stop()


def _settle(server: Server, timeout_s: float = 300, idle_cores: float = 0.05) -> float:
    """Wait until the server has caught up with the goodput search (its prediction log
    written, its drift sums folded): under `idle_cores` of CPU over 2 s. Seconds waited."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        before = server.cpu_seconds()
        time.sleep(2)
        if (server.cpu_seconds() - before) / 2 < idle_cores:
            break
    return time.perf_counter() - began


def _soak(
    server: Server, requests: list[Request], rate: float, duration_s: float, window_s: float
) -> list[SoakWindow]:
    windows: list[SoakWindow] = []
    began = time.perf_counter()
    for i in range(max(1, round(duration_s / window_s))):

        async def one(seed: int = i) -> tuple[Any, list[float], list[float]]:
            stop = asyncio.Event()
            prober = asyncio.create_task(probe(server, stop, interval_s=5))
            result = await open_loop(
                HOST, server.port, requests, rate=rate, duration_s=window_s, poisson_seed=seed,
                timeout_s=10.0,
            )  # fmt: skip
            stop.set()
            return result, *(await prober)

        cpu_before, start = server.cpu_seconds(), time.perf_counter()
        result, health, metrics = run(one())
        summary = result.summary()
        window = SoakWindow(
            end_s=time.perf_counter() - began,
            requests=summary.requests,
            errors=summary.errors,
            p50_ms=summary.p50_s * 1000,
            p95_ms=summary.p95_s * 1000,
            p99_ms=summary.p99_s * 1000,
            max_ms=summary.max_s * 1000,
            rss_mb=server.rss_bytes() / 2**20,
            cpu_cores=(server.cpu_seconds() - cpu_before) / (time.perf_counter() - start),
            health_max_ms=max(health, default=0.0),
            metrics_max_ms=max(metrics, default=0.0),
            statuses={str(k): v for k, v in summary.statuses.items()},
        )
        windows.append(window)
        log.info("window %d: %d requests, %d errors, p99 %.1f ms, RSS %.0f MB",
                 i + 1, window.requests, window.errors, window.p99_ms, window.rss_mb)  # fmt: skip
    return windows


def render(results: dict[str, Any]) -> str:
    cfg, machine, verdict = results["config"], results["machine"], results["verdict"]
    stable = _within(verdict["p99_last_ms"], verdict["p99_first_ms"])
    control = results.get("control", [])
    lines = [
        "# sentimon soak",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; commit {machine['commit']}, "
        f"{machine['date']}.",
        "",
        f"Server: {cfg['server']} ({cfg['threads']} threads), the bundled model. Load: Poisson "
        f"arrivals at {cfg['rate']:.1f} req/s for {cfg['duration_s']:g} s, one text each, in "
        f"windows of {cfg['window_s']:g} s; /healthz and /metrics every 5 s. The first "
        f"{cfg['warmup_s']:g} s are warm-up.",
    ]
    if results["goodput"]:
        found = best([Step(**s) for s in results["goodput"]])
        lines += [
            "",
            f"Goodput found first on the same server (p95 <= {P95_MS:g} ms, p99 <= "
            f"{P99_MS:g} ms, no errors): {found.rate if found else 0:.1f} req/s; rates tried: "
            + ", ".join(
                f"{s['rate']:.1f} ({s['p95_ms']:.0f}/{s['p99_ms']:.0f} ms)"
                for s in results["goodput"]
            )
            + f". The soak began once the server was idle again ({cfg.get('settle_s', 0):.0f} s"
            " later: its prediction log written, its drift sums folded).",
        ]
    if control:
        lines += [
            "",
            f"Control: after the soak, a new server process on the same prediction log took the "
            f"same rate for {len(control)} windows (warmed up and idle first). The host's speed "
            "drifts over half an hour; a rise the control shares is the machine's, one it does "
            "not share is the soaked server's.",
        ]
    lines += [
        "",
        "| check | goal | measured | met |",
        "| --- | --- | --- | --- |",
        f"| errors | 0 | {verdict['errors']} | {_yes(verdict['errors'] == 0)} |",
        f"| resident memory growth after warm-up | < {MAX_RSS_GROWTH:.0%} | "
        f"{verdict['rss_growth']:+.1%} | {_yes(verdict['rss_growth'] < MAX_RSS_GROWTH)} |",
        f"| p99, last third vs first third after warm-up (medians of windows) | <= "
        f"{MAX_P99_DRIFT:g}x + {P99_SLACK_MS:g} ms | {verdict['p99_last_ms']:.1f} vs "
        f"{verdict['p99_first_ms']:.1f} ms{_cpu(verdict, 'cpu_last', 'cpu_first')} | "
        f"{_yes(stable)} |",
    ]
    if control and verdict.get("p99_control_ms") is not None:
        unaged = _within(verdict["p99_last_ms"], verdict["p99_control_ms"])
        lines.append(
            f"| p99, last third vs the control (a new process, right after) | <= "
            f"{MAX_P99_DRIFT:g}x + {P99_SLACK_MS:g} ms | {verdict['p99_last_ms']:.1f} vs "
            f"{verdict['p99_control_ms']:.1f} ms{_cpu(verdict, 'cpu_last', 'cpu_control')} | "
            f"{_yes(unaged)} |"
        )
    lines += ["", *_windows_table(results["windows"])]
    if control:
        lines += ["", "Control windows (seconds from the control's start):", ""]
        lines += _windows_table(control)
    return "\n".join(lines) + "\n"


def _windows_table(windows: list[dict[str, Any]]) -> list[str]:
    return [
        "| window end s | requests | errors | p50 ms | p95 ms | p99 ms | max ms | RSS MB | CPU "
        "| max /healthz ms | max /metrics ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {w['end_s']:.0f} | {w['requests']} | {_errors(w)} | {w['p50_ms']:.1f} | "
            f"{w['p95_ms']:.1f} | {w['p99_ms']:.1f} | {w['max_ms']:.1f} | {w['rss_mb']:.0f} | "
            f"{w['cpu_cores']:.2f} | {w['health_max_ms']:.1f} | {w['metrics_max_ms']:.1f} |"
            for w in windows
        ),
    ]


def _cpu(verdict: dict[str, Any], ours: str, theirs: str) -> str:
    """`(CPU 0.98 vs 0.80 cores)`, where the verdict has both (runs before kept none)."""
    if verdict.get(ours) is None or verdict.get(theirs) is None:
        return ""
    return f" (CPU {verdict[ours]:.2f} vs {verdict[theirs]:.2f} cores)"


def _errors(window: dict[str, Any]) -> str:
    """The error count, and by status where there are any ("3 (429: 2, 0: 1)")."""
    if not window["errors"]:
        return "0"
    named = {0: "failed", -1: "dropped"}
    by_status = ", ".join(
        f"{named.get(int(k), k)}: {n}"
        for k, n in window.get("statuses", {}).items()
        if not 200 <= int(k) < 300
    )
    return f"{window['errors']} ({by_status})" if by_status else str(window["errors"])


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


if __name__ == "__main__":
    main()
