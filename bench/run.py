"""Run every server under the same load and collect the numbers (see bench/README.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.goodput import Step, search, step_seconds
from bench.overload import OverloadRun, admission_on, measure_overload
from bench.peak import Peaks, measure_peaks
from bench.peers import PEERS, ensure_env, peer_spec
from bench.probes import probe
from bench.roberta import build_roberta_base, matmul_flops_per_token
from bench.servers import HOST, Server, ServerSpec, baseline_spec, sentimon_spec
from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.traffic.corpus import generate_corpus
from sentimon.traffic.http import Connection, HttpError
from sentimon.traffic.load import LoadResult, Request, closed_loop, open_loop, run

log = logging.getLogger("bench")
MODELS = ("bundled", "roberta-base")
INTERLEAVED = (
    "sentimon-onnx",
    "sentimon-onnx-nostore",
    "sentimon-onnx-nodrift",
    "sentimon-onnx-padded",
)
"""Measured together in turns (`_run_interleaved`): the defaults and each part off."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    models: Sequence[str] = MODELS
    clients: int = 16
    duration_s: float = 10.0
    repeats: int = 3
    interleaved_repeats: int = 5
    """Windows per server for the servers measured in turns (`INTERLEAVED`)."""
    warmup_s: float = 3.0
    open_rate: float = 15.0
    open_duration_s: float = 20.0
    goodput_step_s: float = 8.0
    """Seconds of Poisson arrivals per rate tried in the goodput search; longer at low rates,
    for `goodput.MIN_STEP_REQUESTS` requests, up to `goodput_max_step_s`."""
    goodput_max_step_s: float = 30.0
    goodput_steps: int = 6
    """Rates tried per server at most (0: no goodput search)."""
    overload_s: float = 10.0
    """Seconds of arrivals at 5x capacity on sentimon with admission on (0: none)."""
    corpus_size: int = 2000
    seed: int = 0
    threads: int = 2
    peers: Sequence[str] = PEERS
    """Peer servers to run too, each from its own virtualenv (created on first use)."""
    work_dir: Path = Path(".cache/bench")
    startup_timeout_s: float = 600.0


@dataclass(slots=True)
class Window:
    """One measured load window on one server."""

    throughput: float
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_cores: float
    client_cpu_cores: float
    """CPU of the benchmark's own process (the load generator) in the same window."""
    useful_tokens_per_s: float
    statuses: dict[int, int]
    health_ms: list[float] = field(default_factory=list)
    metrics_ms: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ServerRun:
    model: str
    server: str
    label: str
    closed: list[Window]
    open: Window
    peak_rss_mb: float
    goodput: list[Step] = field(default_factory=list)
    """The goodput search's steps, in the order tried."""


@dataclass(slots=True)
class ModelInfo:
    name: str
    path: str
    layers: int
    hidden: int
    mean_tokens: float
    min_tokens: int
    max_tokens: int
    flops_per_token: float


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Everything in one go: the peaks, then each model on each server."""
    corpus = generate_corpus(config.corpus_size, seed=config.seed)
    texts = [item.text for item in corpus]
    peers, skipped = _prepare_peers(config)
    log.info("measuring matrix-multiply peaks (%d threads)", config.threads)
    peaks = measure_peaks(config.threads)
    models: list[ModelInfo] = []
    runs: list[ServerRun] = []
    overloads: list[OverloadRun] = []
    for name in config.models:
        path = _model_path(name, config.work_dir)
        tokens = _token_counts(path, texts)
        models.append(_model_info(name, path, tokens))
        specs = _servers(name, path, config)
        specs += [peer_spec(peer, path, config.threads, config.work_dir) for peer in peers]
        group = [spec for spec in specs if spec.name in INTERLEAVED]
        for spec in specs:
            if spec in group[1:]:
                continue  # measured with the group's first
            if spec in group:
                runs += _run_interleaved(group, name, texts, tokens, config)
                continue
            log.info("%s / %s: starting", name, spec.name)
            requests = [Request("POST", spec.predict_path, spec.body(t)) for t in texts]
            runs.append(_run_server(spec, name, requests, tokens, config))
        fast = next((r for r in runs if r.model == name and r.server == INTERLEAVED[0]), None)
        if config.overload_s > 0 and fast is not None:
            capacity = statistics.median(w.throughput for w in fast.closed)
            overloads.append(run_overload(group[0], name, texts, tokens, capacity, config))
    return {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "peaks": {"threads": peaks.threads, "gops": peaks.gops},
        "models": [asdict(m) for m in models],
        "runs": [asdict(r) for r in runs],
        "overload": [asdict(o) for o in overloads],
        "skipped_peers": skipped,
    }


def _prepare_peers(config: BenchConfig) -> tuple[list[str], dict[str, str]]:
    """Create the peers' virtualenvs before anything is measured; a peer whose environment
    cannot be built (no registry, say) is left out of the run and reported, not fatal."""
    ready, skipped = [], {}
    for peer in config.peers:
        try:
            ensure_env(peer, config.work_dir)
        except Exception as exc:
            log.warning("%s: left out, its environment could not be built: %s", peer, exc)
            skipped[peer] = f"its environment could not be built ({type(exc).__name__})"
        else:
            ready.append(peer)
    return ready, skipped


def _model_path(name: str, work_dir: Path) -> Path:
    if name == "bundled":
        return BUNDLED_MODEL_DIR
    if name == "roberta-base":
        return build_roberta_base(work_dir / "roberta-base-shaped")
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _token_counts(path: Path, texts: Sequence[str]) -> list[int]:
    from transformers import AutoTokenizer

    from sentimon.model.encoding import TextEncoder

    encoder = TextEncoder(AutoTokenizer.from_pretrained(str(path)), max_tokens=512)
    return [len(ids) for ids in encoder.tokenize(list(texts))]


def _model_info(name: str, path: Path, tokens: Sequence[int]) -> ModelInfo:
    config = json.loads((path / "config.json").read_text())
    mean = statistics.fmean(tokens)
    return ModelInfo(
        name=name,
        path=str(path),
        layers=config["num_hidden_layers"],
        hidden=config["hidden_size"],
        mean_tokens=mean,
        min_tokens=min(tokens),
        max_tokens=max(tokens),
        flops_per_token=matmul_flops_per_token(config, mean),
    )


def _servers(name: str, path: Path, config: BenchConfig) -> list[ServerSpec]:
    """The tutorial and sentimon's configurations. Its defaults log every prediction to a
    SQLite file (a fresh one per server run) and measure drift against the model's reference
    profile (the bundled model has one); `-nostore`, `-nodrift` and `-padded` are the same with
    one of them (or sequence packing) off, so each one's cost on the hot path is measured in
    the same run."""
    model = "bundled" if name == "bundled" else str(path)
    cache = config.work_dir / "sentimon-cache"

    def data(server: str) -> Path:
        return config.work_dir / "data" / f"{name}-{server}"

    nodrift = sentimon_spec(
        "sentimon-onnx-nodrift",
        "the same with drift off (no drift or estimated-accuracy metrics)",
        model,
        cache,
        config.threads,
        "--no-drift",
        data_dir=data("sentimon-onnx-nodrift"),
    )
    servers = [
        baseline_spec(str(path), config.threads),
        sentimon_spec(
            "sentimon-torch",
            "sentimon, PyTorch backend, no batching, store off",
            model,
            cache,
            config.threads,
            "--backend",
            "transformers",
            "--max-batch-size",
            "1",
            "--no-store",
        ),
        sentimon_spec(
            "sentimon-onnx",
            "sentimon, ONNX Runtime int8 + micro-batching, prediction log on SQLite, drift "
            "where the model has a reference profile (defaults)",
            model,
            cache,
            config.threads,
            "--backend",
            "onnx",
            "--onnx-precision",
            "int8",
            data_dir=data("sentimon-onnx"),
        ),
        sentimon_spec(
            "sentimon-onnx-nostore",
            "the same with the store off (no prediction log, no feedback)",
            model,
            cache,
            config.threads,
            "--no-store",
        ),
        sentimon_spec(
            "sentimon-onnx-padded",
            "the same with sequence packing off (each batch sorted and cut into padded calls)",
            model,
            cache,
            config.threads,
            "--no-sequence-packing",
            data_dir=data("sentimon-onnx-padded"),
        ),
        sentimon_spec(
            "sentimon-onnx-1w",
            "sentimon defaults with 1 inference worker (the defaults run 2 on 2 cores or more)",
            model,
            cache,
            config.threads,
            "--inference-workers",
            "1",
            data_dir=data("sentimon-onnx-1w"),
        ),
    ]
    if name == "bundled":  # the only model here with a reference profile: drift runs on it
        servers.insert(-1, nodrift)
    return servers


def _run_server(
    spec: ServerSpec,
    model: str,
    requests: Sequence[Request],
    tokens: Sequence[int],
    config: BenchConfig,
) -> ServerRun:
    data_dir = spec.env.get("SENTIMON_DATA_DIR")
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)  # each run starts with an empty log
    server = Server(spec, config.work_dir / "logs" / model, config.startup_timeout_s)
    try:
        run(
            closed_loop(
                HOST, server.port, requests, concurrency=config.clients, duration_s=config.warmup_s
            )
        )
        closed = []
        for i in range(config.repeats):
            closed.append(_measure(server, requests, tokens, config, closed=True))
            log.info(
                "%s / %s: closed loop %d/%d: %.1f req/s",
                model,
                spec.name,
                i + 1,
                config.repeats,
                closed[-1].throughput,
            )
        opened = _measure(server, requests, tokens, config, closed=False)
        log.info(
            "%s / %s: open loop %.0f req/s: p95 %.1f ms",
            model,
            spec.name,
            config.open_rate,
            opened.p95_ms,
        )
        hint = statistics.median(w.throughput for w in closed)
        goodput = _search_goodput(server, model, requests, tokens, config, hint)
        return ServerRun(
            model=model,
            server=spec.name,
            label=spec.label,
            closed=closed,
            open=opened,
            peak_rss_mb=server.peak_rss_bytes() / 2**20,
            goodput=goodput,
        )
    finally:
        server.stop()


def run_overload(
    spec: ServerSpec,
    model: str,
    texts: Sequence[str],
    tokens: Sequence[int],
    capacity: float,
    config: BenchConfig,
) -> OverloadRun:
    """sentimon's defaults with the admission bound on, as shipped: first its goodput (the
    search from `capacity`, the throughput the closed loop measured with the bound off), then
    5x `capacity` (bench.overload)."""
    spec = admission_on(spec)
    data_dir = spec.env.get("SENTIMON_DATA_DIR")
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    log.info("%s / %s: starting", model, spec.name)
    server = Server(spec, config.work_dir / "logs" / model, config.startup_timeout_s)
    try:
        requests = [Request("POST", spec.predict_path, spec.body(t)) for t in texts]
        goodput = _search_goodput(server, model, requests, tokens, config, capacity)
        result = measure_overload(server, model, requests, capacity, config.overload_s, config.seed)
        result.goodput = goodput
        log.info(
            "%s / %s: %.0f req/s asked, %.0f sent: %s; 429 p99 %.1f ms, admitted p95 %.0f ms",
            model,
            spec.name,
            result.rate,
            result.sent_rps,
            result.statuses,
            result.refused_p99_ms,
            result.admitted_p95_ms,
        )
        return result
    finally:
        server.stop()


def _run_interleaved(
    specs: Sequence[ServerSpec],
    model: str,
    texts: Sequence[str],
    tokens: Sequence[int],
    config: BenchConfig,
) -> list[ServerRun]:
    """sentimon's defaults and the same with one part off, all running at once and measured
    in turns (the order rotating each round, `interleaved_repeats` rounds): a part's cost is a
    few percent, less than what a 10 s window on a shared 2-core machine moves from one
    minute to the next, so measuring them one after the other compares the minutes, not
    the servers. An idle server here costs nothing (no spinning threads, no scrapes)."""
    servers: list[Server] = []
    try:
        for spec in specs:
            data_dir = spec.env.get("SENTIMON_DATA_DIR")
            if data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
            log.info("%s / %s: starting (interleaved)", model, spec.name)
            servers.append(Server(spec, config.work_dir / "logs" / model, config.startup_timeout_s))
        requests = [Request("POST", specs[0].predict_path, specs[0].body(t)) for t in texts]
        for server in servers:
            run(
                closed_loop(
                    HOST,
                    server.port,
                    requests,
                    concurrency=config.clients,
                    duration_s=config.warmup_s,
                )
            )
        closed: dict[str, list[Window]] = {spec.name: [] for spec in specs}
        repeats = config.interleaved_repeats
        for i in range(repeats):
            turn = servers[i % len(servers) :] + servers[: i % len(servers)]
            for server in turn:
                window = _measure(server, requests, tokens, config, closed=True)
                closed[server.spec.name].append(window)
                log.info(
                    "%s / %s: closed loop %d/%d: %.1f req/s",
                    model,
                    server.spec.name,
                    i + 1,
                    repeats,
                    window.throughput,
                )
        runs = []
        for server in servers:
            opened = _measure(server, requests, tokens, config, closed=False)
            log.info(
                "%s / %s: open loop %.0f req/s: p95 %.1f ms",
                model,
                server.spec.name,
                config.open_rate,
                opened.p95_ms,
            )
            windows = closed[server.spec.name]
            # The variants differ from the defaults by a few percent, which the closed loop
            # measures in turns; the goodput search is for the defaults.
            hint = statistics.median(w.throughput for w in windows)
            goodput = (
                _search_goodput(server, model, requests, tokens, config, hint)
                if server is servers[0]
                else []
            )
            runs.append(
                ServerRun(
                    model=model,
                    server=server.spec.name,
                    label=server.spec.label,
                    closed=windows,
                    open=opened,
                    peak_rss_mb=server.peak_rss_bytes() / 2**20,
                    goodput=goodput,
                )
            )
        return runs
    finally:
        for server in servers:
            server.stop()


def _measure(
    server: Server,
    requests: Sequence[Request],
    tokens: Sequence[int],
    config: BenchConfig,
    *,
    closed: bool,
) -> Window:
    async def go() -> tuple[LoadResult, list[float], list[float]]:
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(server, stop)) if closed else None
        if closed:
            result = await closed_loop(
                HOST,
                server.port,
                requests,
                concurrency=config.clients,
                duration_s=config.duration_s,
            )
        else:
            result = await open_loop(
                HOST,
                server.port,
                requests,
                rate=config.open_rate,
                duration_s=config.open_duration_s,
            )
        stop.set()
        health, metrics = await prober if prober is not None else ([], [])
        return result, health, metrics

    cpu_before, began = server.cpu_seconds(), time.perf_counter()
    client_before = time.process_time()
    result, health, metrics = run(go())
    elapsed = time.perf_counter() - began
    cpu_cores = (server.cpu_seconds() - cpu_before) / elapsed
    client_cores = (time.process_time() - client_before) / elapsed
    summary = result.summary()
    useful = sum(tokens[s.index % len(tokens)] for s in result.samples if 200 <= s.status < 300)
    return Window(
        throughput=summary.throughput,
        requests=summary.requests,
        errors=summary.errors,
        p50_ms=summary.p50_s * 1000,
        p95_ms=summary.p95_s * 1000,
        p99_ms=summary.p99_s * 1000,
        cpu_cores=cpu_cores,
        client_cpu_cores=client_cores,
        useful_tokens_per_s=useful / result.duration_s,
        statuses=summary.statuses,
        health_ms=health,
        metrics_ms=metrics,
    )


def _search_goodput(
    server: Server,
    model: str,
    requests: Sequence[Request],
    tokens: Sequence[int],
    config: BenchConfig,
    closed_rps: float,
) -> list[Step]:
    """The highest Poisson rate this server answers within the service level (bench.goodput),
    searched from 0.8x its closed-loop throughput (`closed_rps`). A request unanswered after
    5 s counts as an error (the level is p99 <= 500 ms); after each step the server works off
    its backlog before the next."""
    if config.goodput_steps < 1:
        return []

    def try_rate(rate: float) -> Step:
        result = run(
            open_loop(
                HOST,
                server.port,
                requests,
                rate=rate,
                duration_s=step_seconds(rate, config.goodput_step_s, config.goodput_max_step_s),
                poisson_seed=config.seed + len(tried),
                timeout_s=5.0,
            )
        )
        run(_settle(server, requests[0]))
        summary = result.summary()
        useful = sum(tokens[s.index % len(tokens)] for s in result.samples if 200 <= s.status < 300)
        step = Step(
            rate=rate,
            requests=summary.requests,
            errors=summary.errors,
            p95_ms=summary.p95_s * 1000,
            p99_ms=summary.p99_s * 1000,
            useful_tokens_per_s=useful / result.duration_s,
            mean_ms=statistics.fmean(s.latency_s for s in result.samples) * 1000,
        )
        tried.append(step)
        log.info(
            "%s / %s: goodput step %.1f req/s: p95 %.0f ms, p99 %.0f ms, %d errors: %s",
            model,
            server.spec.name,
            rate,
            step.p95_ms,
            step.p99_ms,
            step.errors,
            "met" if step.met else "missed",
        )
        return step

    tried: list[Step] = []
    return search(try_rate, max(0.8 * closed_rps, 0.5), config.goodput_steps)


async def _settle(server: Server, request: Request) -> None:
    """Wait for the server to work off what a step left queued: a request sent now is
    answered once the queue ahead of it is gone (a minute at most)."""
    connection = Connection(HOST, server.port, timeout_s=60)
    try:
        await connection.request(
            request.method, request.path, request.body, content_type=request.content_type
        )
    except HttpError:
        log.warning("%s: still busy a minute after a goodput step", server.spec.name)
    finally:
        await connection.close()


def peaks_from(results: dict[str, Any]) -> Peaks:
    return Peaks(results["peaks"]["threads"], results["peaks"]["gops"])
