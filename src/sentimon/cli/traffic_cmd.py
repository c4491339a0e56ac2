"""`sentimon traffic`: send a scenario's requests to a running API, then print what came back."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sentimon.traffic.feedback import SOURCE, FeedbackCounts, FeedbackSender
from sentimon.traffic.load import (
    DROPPED,
    FAILED,
    LoadResult,
    Request,
    Sample,
    closed_loop,
    open_loop,
    run,
)
from sentimon.traffic.scenarios import ScenarioOptions, build_requests
from sentimon.traffic.target import Target, TargetError, parse_target

MAX_DURATION_S = 24 * 3600
MAX_RATE = 5000.0
MAX_CONCURRENCY = 1024
DEFAULT_RATE = 10.0
BURST_CONCURRENCY = 32


class Scenario(StrEnum):
    normal = "normal"
    bad_input = "bad-input"
    drift = "drift"
    burst = "burst"


def traffic(
    scenario: Annotated[
        Scenario, typer.Option("--scenario", "-s", help="What to send.")
    ] = Scenario.normal,
    url: Annotated[str, typer.Option(help="The API's base URL.")] = "http://127.0.0.1:8000",
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            max=MAX_RATE,
            help=f"Open loop: requests started per second, whatever the answers "
            f"(default {DEFAULT_RATE:g}; burst: closed loop instead).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_CONCURRENCY,
            help=f"Closed loop: clients that each send their next request when the last "
            f"answered (burst default {BURST_CONCURRENCY}).",
        ),
    ] = None,
    duration: Annotated[
        float, typer.Option(min=0.1, max=MAX_DURATION_S, help="Seconds to run.")
    ] = 60.0,
    max_requests: Annotated[
        int, typer.Option(min=1, help="Stop after this many requests.")
    ] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed for texts and request order.")] = 0,
    bad_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="bad-input: share of malformed requests.")
    ] = 0.7,
    max_text_chars: Annotated[
        int, typer.Option(min=1, help="bad-input: the server's text limit, to exceed it.")
    ] = 2000,
    feedback_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help=f"Share of answered texts whose known label (the sentiment the corpus wrote "
            f"it with) is sent back to POST /feedback as source {SOURCE!r}; chosen from the "
            "seed. Not counted in the latency figures.",
        ),
    ] = 0.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before a request fails.")] = 10.0,
    allow_remote: Annotated[
        bool, typer.Option(help="Allow a target that is not a loopback address.")
    ] = False,
) -> None:
    """Generate load against a running sentimon API and report status codes and latency."""
    console = Console()
    if rate is not None and concurrency is not None:
        console.print("[red]error:[/red] choose --rate (open loop) or --concurrency, not both")
        raise typer.Exit(2)
    try:
        target = parse_target(url, allow_remote=allow_remote)
    except TargetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    options = ScenarioOptions(
        seed=seed,
        bad_share=bad_share,
        max_text_chars=max_text_chars,
        feedback_share=feedback_share,
    )
    requests = [
        dataclasses.replace(r, path=target.prefix + r.path)
        for r in build_requests(scenario.value, options)
    ]
    if rate is None and concurrency is None:
        if scenario is Scenario.burst:
            concurrency = BURST_CONCURRENCY
        else:
            rate = DEFAULT_RATE
    if rate is not None:
        duration = min(duration, max_requests / rate)
        mode = f"open loop, {rate:g} req/s"
    else:
        mode = f"closed loop, {concurrency} clients"
    if feedback_share > 0:
        mode += f", feedback on {feedback_share * 100:g}% of answered texts"
    console.print(
        f"sentimon traffic: [bold]{scenario.value}[/bold] to {target.url}, {mode}, "
        f"up to {duration:g} s (seed {seed})"
    )
    result, feedback = run(
        _run(
            target,
            requests,
            rate,
            concurrency,
            duration,
            max_requests,
            timeout,
            console,
            feedback=feedback_share > 0,
        )
    )
    console.print(_summary_table(result, scenario.value, feedback))
    if result.samples and all(s.status == FAILED for s in result.samples):
        console.print(f"[red]error:[/red] no request reached {target.url}; is the API running?")
        raise typer.Exit(1)


async def _run(
    target: Target,
    requests: list[Request],
    rate: float | None,
    concurrency: int | None,
    duration: float,
    max_requests: int,
    timeout: float,
    console: Console,
    *,
    feedback: bool = False,
) -> tuple[LoadResult, FeedbackCounts | None]:
    counts: Counter[str] = Counter()

    def on_sample(sample: Sample) -> None:
        counts[_status_class(sample.status)] += 1

    def on_feedback(_status: int) -> None:
        counts["feedback"] += 1

    sender = None
    if feedback:
        sender = FeedbackSender(
            target.host,
            target.port,
            target.prefix + "/feedback",
            timeout_s=timeout,
            on_status=on_feedback,
        )

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("starting", total=duration)
    began = time.monotonic()

    async def tick() -> None:
        while True:
            progress.update(
                task,
                completed=min(duration, time.monotonic() - began),
                description=" ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "sent 0",
            )
            await asyncio.sleep(0.2)

    with progress:
        ticker = asyncio.create_task(tick())
        on_response = None
        if sender is not None:
            sender.start()
            on_response = sender.submit
        try:
            if rate is not None:
                result = await open_loop(
                    target.host,
                    target.port,
                    requests,
                    rate=rate,
                    duration_s=duration,
                    timeout_s=timeout,
                    on_sample=on_sample,
                    on_response=on_response,
                )
            else:
                assert concurrency is not None
                result = await closed_loop(
                    target.host,
                    target.port,
                    requests,
                    concurrency=concurrency,
                    duration_s=duration,
                    max_requests=max_requests,
                    timeout_s=timeout,
                    on_sample=on_sample,
                    on_response=on_response,
                )
            # The feedback still queued gets one request timeout to go out.
            return result, None if sender is None else await sender.close(grace_s=timeout)
        finally:
            if sender is not None:
                await sender.close(grace_s=0)
            ticker.cancel()
            progress.update(
                task,
                completed=duration,
                description=" ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            )


def _status_class(status: int) -> str:
    if status == FAILED:
        return "failed"
    if status == DROPPED:
        return "dropped"
    return f"{status // 100}xx"


def _summary_table(
    result: LoadResult, scenario: str, feedback: FeedbackCounts | None = None
) -> Table:
    summary = result.summary()
    table = Table(title=f"{scenario}: {summary.requests} requests in {result.duration_s:.1f} s")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("successful (2xx) per second", f"{summary.throughput:.1f}")
    for name, q in (("p50", summary.p50_s), ("p95", summary.p95_s), ("p99", summary.p99_s)):
        table.add_row(f"latency {name}", "-" if q != q else f"{q * 1000:.1f} ms")
    for status, count in summary.statuses.items():
        name = {FAILED: "connection failed", DROPPED: "not sent (too many in flight)"}.get(
            status, f"HTTP {status}"
        )
        table.add_row(name, f"{count} ({count / summary.requests:.0%})")
    if feedback is not None:
        _feedback_rows(table, feedback)
    return table


def _feedback_rows(table: Table, feedback: FeedbackCounts) -> None:
    sent = feedback.sent

    def share(count: int) -> str:
        return f"{count} ({count / sent:.0%})" if sent else str(count)

    errors = feedback.errors
    detail = ", ".join(f"{_feedback_status(s)}: {n}" for s, n in errors.items())
    table.add_section()
    table.add_row("feedback sent", str(sent))
    table.add_row("feedback created (201)", share(feedback.created))
    table.add_row("feedback duplicate (200)", share(feedback.duplicate))
    table.add_row("feedback conflict (409)", share(feedback.conflict))
    table.add_row(f"feedback errors{f' ({detail})' if detail else ''}", share(sum(errors.values())))
    if feedback.skipped:
        table.add_row("feedback skipped (label not the model's)", str(feedback.skipped))
    if feedback.dropped:
        table.add_row("feedback dropped (backlog full or run over)", str(feedback.dropped))


def _feedback_status(status: int) -> str:
    return "connection failed" if status == FAILED else f"HTTP {status}"
