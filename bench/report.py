"""Turn a results dict (bench/results/results.json) into the Markdown report and the chart."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.goodput import MIN_STEP_REQUESTS, P95_MS, P99_MS, Step
from bench.overload import RECOVERY_WAIT_S as RECOVERY_S

BASELINE = "tutorial"
FAST = "sentimon-onnx"
NO_STORE = "sentimon-onnx-nostore"
NO_DRIFT = "sentimon-onnx-nodrift"
SERVING_ENGINE = "onnxruntime"
"""The engine sentimon-onnx serves with: its own int8 peak is reported beside the faster one."""
PADDED = "sentimon-onnx-padded"
MIN_THROUGHPUT_WITH = 0.95
"""The prediction log, and drift, may each cost at most 5% of the throughput without it."""
PROBE_NOISE_MS = 5.0
"""A rise of the slowest probe smaller than this is noise between two runs."""
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
PROBE_LIMIT_MS = 50.0
PEERS = ("bentoml", "mlserver")


@dataclass(frozen=True, slots=True)
class Target:
    what: str
    goal: str
    measured: str
    met: bool


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def closed_median(run: dict[str, Any], key: str) -> float:
    return median([w[key] for w in run["closed"]])


def probe_max(run: dict[str, Any], key: str) -> float:
    values = [v for w in run["closed"] for v in w[key]]
    return float(max(values)) if values else math.nan


ADMISSION_ROW = "sentimon-onnx-admission"
"""The goodput table's row for the defaults with the admission bound on (the overload run's
server, searched before the overload)."""


def runs_for(results: dict[str, Any], model: str) -> dict[str, dict[str, Any]]:
    return {r["server"]: r for r in results["runs"] if r["model"] == model}


def goodput_steps(run: dict[str, Any]) -> list[Step]:
    return [Step(**step) for step in run.get("goodput", [])]


def goodput(run: dict[str, Any]) -> Step | None:
    """The highest rate that met the service level; None when none did or none was tried."""
    return max((s for s in goodput_steps(run) if s.met), key=lambda s: s.rate, default=None)


def goodput_rate(run: dict[str, Any]) -> float:
    """Requests/s at the service level: 0 when no rate met it, NaN when none was tried."""
    if not run.get("goodput"):
        return math.nan
    best = goodput(run)
    return best.rate if best is not None else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf if a > 0 else math.nan


def int8_peak(results: dict[str, Any]) -> float:
    return float(max(v for k, v in results["peaks"]["gops"].items() if k.startswith("int8/")))


def peak_share(
    results: dict[str, Any], model: dict[str, Any], tokens_per_s: float, engine: str | None = None
) -> float:
    """The matrix-multiply work of `tokens_per_s` over the int8 peak: the faster engine's, or
    `engine`'s own (e.g. "onnxruntime", the one sentimon serves with)."""
    gops = (
        int8_peak(results) if engine is None else float(results["peaks"]["gops"][f"int8/{engine}"])
    )
    return tokens_per_s * float(model["flops_per_token"]) / (gops * 1e9)


def targets(results: dict[str, Any]) -> list[Target]:
    """The issue's targets, as ratios measured in this run."""
    out = []
    cfg = results["config"]
    for model in results["models"]:
        runs = runs_for(results, model["name"])
        if BASELINE not in runs or FAST not in runs:
            continue
        fast, base = runs[FAST], runs[BASELINE]
        ratio = _ratio(goodput_rate(fast), goodput_rate(base))
        if model["name"] == "roberta-base":
            tokens = closed_median(fast, "useful_tokens_per_s")
            share = peak_share(results, model, tokens)
            measured = f"{share:.0%}"
            if f"int8/{SERVING_ENGINE}" in results["peaks"]["gops"]:
                own = peak_share(results, model, tokens, SERVING_ENGINE)
                measured += f" ({own:.0%} of ONNX Runtime's own)"
            p95 = fast["open"]["p95_ms"]
            out.append(
                Target("RoBERTa-base goodput vs tutorial", ">= 8x", f"{ratio:.1f}x", ratio >= 8)
            )
            peers = [goodput_rate(runs[p]) for p in PEERS if p in runs]
            if peers:
                ours, theirs = goodput_rate(fast), max(peers)
                vs_peer = _ratio(ours, theirs)
                out.append(
                    Target(
                        "RoBERTa-base goodput vs the best peer",
                        ">= 6x",
                        f"{vs_peer:.1f}x" if theirs > 0 else f"{ours:.1f} req/s vs none met",
                        vs_peer >= 6,
                    )
                )
            out += [
                Target(
                    "RoBERTa-base useful tokens/s (closed loop) vs int8 peak",
                    ">= 60%",
                    measured,
                    share >= 0.6,
                ),
                Target(
                    f"RoBERTa-base p95 at {cfg['open_rate']:g} req/s open loop",
                    "< 50 ms",
                    f"{p95:.1f} ms",
                    p95 < 50,
                ),
            ]
        else:
            out.append(
                Target(f"{model['name']} goodput vs tutorial", ">= 6x", f"{ratio:.1f}x", ratio >= 6)
            )
        errors = sum(w["errors"] for w in fast["closed"]) + fast["open"]["errors"]
        out.append(Target(f"{model['name']} errors (sentimon-onnx)", "0", str(errors), errors == 0))
        worst = _slowest_probe(fast)
        out.append(
            Target(
                f"{model['name']} slowest /healthz or /metrics while saturated",
                f"< {PROBE_LIMIT_MS:g} ms",
                f"{worst:.1f} ms",
                worst < PROBE_LIMIT_MS,
            )
        )
        for overload in results.get("overload", []):
            if overload["model"] == model["name"]:
                out += _overload_targets(overload)
        if NO_STORE in runs:
            out += _cost("store", model["name"], fast, runs[NO_STORE])
        if NO_DRIFT in runs:
            out += _cost("drift", model["name"], fast, runs[NO_DRIFT])
        if PADDED in runs:
            out += _cost("sequence packing", model["name"], fast, runs[PADDED])
    return out


def _overload_targets(o: dict[str, Any]) -> list[Target]:
    m = f"{o['model']} at {o['rate'] / o['capacity_rps']:g}x capacity"
    others = sum(n for status, n in o["statuses"].items() if int(status) not in (200, 429))
    probes = max(o["health_p99_ms"], o["metrics_p99_ms"])
    growth = o["rss_after_mb"] - o["rss_before_mb"]
    back = o["recovered_ms"] <= 1.25 * o["idle_ms"] + 2
    return [
        Target(f"{m}: 429 answered, p99", "< 50 ms", f"{o['refused_p99_ms']:.1f} ms",
               o["refused_p99_ms"] < 50),
        Target(f"{m}: admitted requests, p95", f"<= {P95_MS:g} ms",
               f"{o['admitted_p95_ms']:.0f} ms", o["admitted_p95_ms"] <= P95_MS),
        Target(f"{m}: answers other than 2xx and 429 (with Retry-After)", "0",
               str(others + o["refused_without_retry_after"]),
               others + o["refused_without_retry_after"] == 0),
        Target(f"{m}: /healthz and /metrics, p99", "< 50 ms", f"{probes:.1f} ms", probes < 50),
        Target(f"{m}: memory growth", "< 50 MB", f"{growth:+.0f} MB", growth < 50),
        Target(f"{m}: latency {RECOVERY_S:g} s after", "idle level (+25%)",
               f"{o['recovered_ms']:.1f} vs {o['idle_ms']:.1f} ms", back),
    ]  # fmt: skip


def _overload_table(results: dict[str, Any]) -> list[str]:
    if not results.get("overload"):
        return []
    lines = [
        "",
        "**Overload** (`sentimon-onnx` with the admission bound on, at its default "
        "`SENTIMON_MAX_QUEUE_WAIT_MS`): Poisson arrivals at five times the closed-loop "
        "throughput above; the client shares the cores with the server, so the rate it sent "
        "is shown too.",
        "",
        "| model | capacity req/s | asked / sent req/s | 2xx / 429 / other | 429 p99 ms "
        "| admitted p95 / p99 ms | /healthz p95 / p99 ms | /metrics p95 / p99 ms | RSS MB "
        "before / after | idle / 2 s after ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in results["overload"]:
        statuses = {int(k): v for k, v in o["statuses"].items()}
        ok = sum(n for k, n in statuses.items() if 200 <= k < 300)
        other = sum(statuses.values()) - ok - statuses.get(429, 0)
        lines.append(
            f"| {o['model']} | {o['capacity_rps']:.1f} | {o['rate']:.0f} / {o['sent_rps']:.0f} "
            f"| {ok} / {statuses.get(429, 0)} / {other} | {o['refused_p99_ms']:.1f} | "
            f"{o['admitted_p95_ms']:.0f} / {o['admitted_p99_ms']:.0f} | "
            f"{o['health_p95_ms']:.1f} / {o['health_p99_ms']:.1f} | "
            f"{o['metrics_p95_ms']:.1f} / {o['metrics_p99_ms']:.1f} | "
            f"{o['rss_before_mb']:.0f} / {o['rss_after_mb']:.0f} | "
            f"{o['idle_ms']:.1f} / {o['recovered_ms']:.1f} |"
        )
    return lines


def _slowest_probe(run: dict[str, Any]) -> float:
    return max(probe_max(run, "health_ms"), probe_max(run, "metrics_ms"))


def _cost(what: str, model: str, on: dict[str, Any], off: dict[str, Any]) -> list[Target]:
    """The price of `what` (the prediction log, drift, packing): throughput and the slowest
    probe, on vs off."""
    share = closed_median(on, "throughput") / closed_median(off, "throughput")
    slow_on, slow_off = _slowest_probe(on), _slowest_probe(off)
    return [
        Target(
            f"{model} throughput, {what} on vs off",
            f">= {MIN_THROUGHPUT_WITH:.0%}",
            f"{share:.1%}",
            share >= MIN_THROUGHPUT_WITH,
        ),
        Target(
            f"{model} slowest probe while saturated, {what} on vs off",
            f"no rise (within {PROBE_NOISE_MS:g} ms)",
            f"{slow_on:.1f} vs {slow_off:.1f} ms",
            slow_on <= slow_off + PROBE_NOISE_MS,
        ),
    ]


def _recipe_words(machine: dict[str, Any]) -> str:
    """`, int8 recipe 5 (7-bit weights, on int8 kernel avx2)`; nothing for runs from
    before the recipe depended on the CPU."""
    int8 = machine.get("int8_recipe")
    if not int8:
        return ""
    return (
        f", int8 recipe {int8['recipe']} ({int8['weight_bits']}-bit weights, on int8 kernel "
        f"{int8['kernel']})"
    )


def render_markdown(results: dict[str, Any]) -> str:
    """The report: machine, one table per model, the targets. Deterministic for given results."""
    cfg, machine = results["config"], results["machine"]
    peaks = results["peaks"]["gops"]
    lines = [
        f"Machine: {machine['cpu']}{_recipe_words(machine)}, {machine['cores']} cores, "
        f"{machine['memory_gib']:.0f} GiB; "
        f"{machine['python']}, torch {machine['torch']}, onnxruntime {machine['onnxruntime']}, "
        f"transformers {machine['transformers']}; commit {machine['commit']}, {machine['date']}.",
        "",
        f"Matrix-multiply peak ({results['peaks']['threads']} threads, GOP/s): "
        + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(peaks.items()))
        + ".",
        "",
        f"Closed loop: {cfg['clients']} clients, median of {cfg['repeats']} windows of "
        f"{cfg['duration_s']:g} s after {cfg['warmup_s']:g} s of warm-up. Open loop: "
        f"{cfg['open_rate']:g} req/s for {cfg['open_duration_s']:g} s, latency from the "
        f"scheduled send time. Corpus: {cfg['corpus_size']} generated tweet-like texts "
        f"(seed {cfg['seed']}). CPU is the server process tree's, in cores; client CPU is the "
        "load generator's, on the same cores. `sentimon-onnx` and its `-nostore` and "
        f"`-nodrift` variants run side by side and are measured in turns "
        f"({cfg.get('interleaved_repeats', cfg['repeats'])} windows each), so their ratios "
        "compare the servers, not the minutes they ran in.",
        "",
        *_legend(results),
    ]
    lines += _goodput_tables(results)
    for model in results["models"]:
        runs = runs_for(results, model["name"])
        base = runs.get(BASELINE)
        base_rps = closed_median(base, "throughput") if base else math.nan
        lines += [
            "",
            f"**{model['name']}** ({model['layers']} layers, hidden {model['hidden']}; "
            f"{model['min_tokens']}-{model['max_tokens']} tokens per text, "
            f"mean {model['mean_tokens']:.1f})",
            "",
            "| server | req/s | vs tutorial | p50 ms | p95 ms | p99 ms | CPU | client CPU | "
            "useful tokens/s | % int8 peak | open p95 ms | open p99 ms | errors | "
            "max /healthz ms | max /metrics ms | peak RSS MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
            "---: | ---: | ---: | ---: |",
        ]
        for name, run in runs.items():
            rps = closed_median(run, "throughput")
            tokens = closed_median(run, "useful_tokens_per_s")
            errors = sum(w["errors"] for w in run["closed"]) + run["open"]["errors"]
            lines.append(
                f"| {name} | {rps:.1f} | {rps / base_rps:.1f}x | "
                f"{closed_median(run, 'p50_ms'):.1f} | {closed_median(run, 'p95_ms'):.1f} | "
                f"{closed_median(run, 'p99_ms'):.1f} | {closed_median(run, 'cpu_cores'):.2f} | "
                f"{closed_median(run, 'client_cpu_cores'):.2f} | "
                f"{tokens:,.0f} | {peak_share(results, model, tokens):.0%} | "
                f"{run['open']['p95_ms']:.1f} | {run['open']['p99_ms']:.1f} | {errors} | "
                f"{_ms(probe_max(run, 'health_ms'))} | {_ms(probe_max(run, 'metrics_ms'))} | "
                f"{run['peak_rss_mb']:.0f} |"
            )
    lines += _overload_table(results)
    lines += ["", "| target | goal | measured | met |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {t.what} | {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |"
        for t in targets(results)
    ]
    if "middleware" in results:
        m = results["middleware"]
        lines += [
            "",
            f"Middleware cost (bundled app, in process, GET /healthz): {m['with_us']:.0f} µs per "
            f"request through the full stack (HTTP metrics, request id, body limit) against "
            f"{m['without_us']:.0f} µs through the router alone: {m['cost_us']:.0f} µs.",
        ]
    if "connection_guard" in results:
        g = results["connection_guard"]
        lines += [
            "",
            f"Connection guard cost (in process, keep-alive GET on one connection, trivial app): "
            f"{g['with_us']:.1f} µs per request through the guarded protocol against "
            f"{g['without_us']:.1f} µs through uvicorn's plain httptools protocol: "
            f"{g['cost_us']:.1f} µs.",
        ]
    if "scrape" in results:
        s = results["scrape"]
        lines += [
            "",
            f"Scrape cost (a new app's registry, {s['samples']:.0f} samples, in process): "
            f"{s['with_us']:,.0f} µs to render `/metrics` against {s['without_us']:,.0f} µs "
            f"through prometheus_client's `generate_latest`: "
            f"{s['with_us'] / s['without_us']:.2f}x.",
        ]
    return "\n".join(lines) + "\n"


def _step_time(cfg: dict[str, Any]) -> str:
    longest = cfg.get("goodput_max_step_s")
    if longest is None:  # runs before low rates were tried for longer
        return f"{cfg['goodput_step_s']:g} s"
    return (
        f"{cfg['goodput_step_s']:g} s (at low rates long enough for {MIN_STEP_REQUESTS} "
        f"requests, up to {longest:g} s)"
    )


def _goodput_tables(results: dict[str, Any]) -> list[str]:
    """Goodput first: per model, each server's highest Poisson rate within the service level,
    and the steps that found it."""
    cfg = results["config"]
    if not any(r.get("goodput") for r in results["runs"]):
        return []
    lines = [
        "",
        f"**Goodput at the seeds' service level** (p95 <= {P95_MS:g} ms, p99 <= {P99_MS:g} ms, "
        f"no errors): the highest rate of Poisson arrivals a server met it at, found by search, "
        f"{_step_time(cfg)} per rate tried, latency from the scheduled send time. "
        "In flight: requests held at once on average at that rate (rate x mean latency).",
    ]
    if any(o.get("goodput") for o in results.get("overload", [])):
        lines[-1] += (
            f" `{ADMISSION_ROW}`: `sentimon-onnx` as shipped, with the admission bound on (the "
            "other sentimon rows run with it off, as the peers have none); a 429 counts as an "
            "error."
        )
    for model in results["models"]:
        runs = {n: r for n, r in runs_for(results, model["name"]).items() if r.get("goodput")}
        for overload in results.get("overload", []):
            if overload["model"] == model["name"] and overload.get("goodput"):
                runs[ADMISSION_ROW] = overload
        if not runs:
            continue
        base = goodput_rate(runs[BASELINE]) if BASELINE in runs else math.nan
        lines += [
            "",
            f"| {model['name']}: server | goodput req/s | vs tutorial | useful tokens/s "
            "| % int8 peak | in flight | rates tried (req/s: p95/p99 ms, met or not) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, run in runs.items():
            best, rate = goodput(run), goodput_rate(run)
            tokens = best.useful_tokens_per_s if best is not None else 0.0
            tried = ", ".join(
                f"{s.rate:.1f}: {s.p95_ms:.0f}/{s.p99_ms:.0f}"
                + ("" if s.errors == 0 else f" {s.errors} err")
                + (" ✓" if s.met else " ✗")
                for s in goodput_steps(run)
            )
            in_flight = best.rate * best.mean_ms / 1000 if best is not None else math.nan
            lines.append(
                f"| {name} | {rate:.1f} | {_times(_ratio(rate, base))} | {tokens:,.0f} | "
                f"{peak_share(results, model, tokens):.0%} | {_ms(in_flight)} | {tried} |"
            )
    return lines


def _times(ratio: float) -> str:
    return "-" if math.isnan(ratio) else f"{ratio:.1f}x"


def _legend(results: dict[str, Any]) -> list[str]:
    """Each server once, in run order, with what it is; then the peers left out and why."""
    labels = {r["server"]: r["label"] for r in results["runs"]}
    lines = [f"- `{name}`: {label}" for name, label in labels.items()]
    lines += [
        f"- `{peer}`: not measured in this run: {why}"
        for peer, why in results.get("skipped_peers", {}).items()
    ]
    return lines


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def update_readme(readme: Path, markdown: str) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END)
    readme.write_text(
        text[: start + len(README_START)] + "\n" + markdown + text[end:], encoding="utf-8"
    )


def readme_section(readme: Path) -> str:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END)
    return text[start + len(README_START) + 1 : end]


def render_chart(results: dict[str, Any], path: Path) -> None:
    """Goodput, throughput (closed loop) and open-loop p95 per server, one column per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m["name"] for m in results["models"]]
    width = max(5, len(runs_for(results, models[0])) if models else 5)
    fig, axes = plt.subplots(3, len(models), figsize=(width * len(models), 10), squeeze=False)

    def color(name: str) -> str:
        if name == BASELINE:
            return "#9e9e9e"
        return "#1f77b4" if name.startswith("sentimon") else "#ff7f0e"

    for col, model in enumerate(models):
        runs = runs_for(results, model)
        searched = [n for n in runs if runs[n].get("goodput")]
        rates = [goodput_rate(runs[n]) for n in searched]
        ax = axes[0][col]
        bars = ax.bar(searched, rates, color=[color(n) for n in searched])
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in rates])
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"{model}: goodput, p95 <= {P95_MS:g} ms and p99 <= {P99_MS:g} ms")
        ax.set_ylabel("requests/s (Poisson)")
        names = list(runs)
        colors = [color(n) for n in names]
        rps = [closed_median(runs[n], "throughput") for n in names]
        ax = axes[1][col]
        bars = ax.bar(names, rps, color=colors)
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in rps])
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"{model}: throughput, {results['config']['clients']} clients")
        ax.set_ylabel("requests/s")
        p95 = [runs[n]["open"]["p95_ms"] for n in names]
        ax = axes[2][col]
        bars = ax.bar(names, p95, color=colors)
        ax.bar_label(bars, labels=[f"{v:.0f}" for v in p95])
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_yscale("log")
        ax.set_title(f"{model}: p95 at {results['config']['open_rate']:g} req/s")
        ax.set_ylabel("ms (log)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
