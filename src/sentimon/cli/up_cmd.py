"""`sentimon up`: the API with Prometheus, Alertmanager and node-exporter, until Ctrl-C."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sentimon.stack.configs import Ports, Timing, parse_duration
from sentimon.stack.processes import StackError
from sentimon.stack.stack import Stack, StackConfig
from sentimon.stack.webhook import Notification

POLL_S = 2.0


def up(
    port: Annotated[int, typer.Option(min=1, max=65535, help="API port.")] = 8000,
    prometheus_port: Annotated[int, typer.Option(min=1, max=65535)] = 9090,
    alertmanager_port: Annotated[int, typer.Option(min=1, max=65535)] = 9093,
    node_exporter_port: Annotated[int, typer.Option(min=1, max=65535)] = 9100,
    webhook_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Built-in alert webhook receiver.")
    ] = 5001,
    scrape_interval: Annotated[
        str, typer.Option(help="Prometheus scrape and rule evaluation interval.")
    ] = "5s",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep data, configs and logs here (default: a temporary folder)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="SENTIMON_MODEL for the API.")] = None,
    backend: Annotated[str | None, typer.Option(help="SENTIMON_BACKEND for the API.")] = None,
) -> None:
    """Run the API and its monitoring stack on loopback; stop everything on Ctrl-C or SIGTERM."""
    console = Console()
    try:
        parse_duration(scrape_interval)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --scrape-interval: {exc}")
        raise typer.Exit(2) from None
    api_args = [
        *(["--model", model] if model else []),
        *(["--backend", backend] if backend else []),
    ]
    config = StackConfig(
        ports=Ports(port, prometheus_port, alertmanager_port, node_exporter_port, webhook_port),
        timing=Timing(scrape_interval=scrape_interval, evaluation_interval=scrape_interval),
        data_dir=data_dir,
        api_args=api_args,
    )
    stack = Stack(
        config,
        on_notification=lambda n: _print_notification(console, n),
        on_progress=lambda message: console.print(f"[dim]{message}[/dim]"),
    )

    def terminate(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    try:
        stack.start()
        console.print(_urls_table(stack))
        console.print(
            "Try: [bold]sentimon traffic --scenario bad-input[/bold] in another terminal; "
            "alerts print here as Alertmanager receives them. Ctrl-C stops everything."
        )
        _watch(stack, console)
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()
    console.print("stopped")


def _urls_table(stack: Stack) -> Table:
    urls = stack.urls
    table = Table(title="sentimon is up", show_header=False)
    table.add_row("web UI", f"{urls['api']}/ui/", "analyze, score a file, watch live")
    table.add_row("API", urls["api"], "docs /docs, metrics /metrics")
    table.add_row("Prometheus", urls["prometheus"], "alerts: /classic/alerts")
    table.add_row("Alertmanager", urls["alertmanager"], "API: /api/v2/alerts")
    table.add_row("node-exporter", urls["node_exporter"], "/metrics")
    table.add_row("alert webhook", urls["webhook"], "receives every notification")
    table.add_row("data and logs", str(stack.data_dir), "")
    table.add_row("prediction log", _prediction_log(), "feedback: POST /feedback")
    return table


def _prediction_log() -> str:
    """Where the API keeps predictions and feedback (its own settings, from the environment)."""
    from pydantic import ValidationError

    from sentimon.config import Settings
    from sentimon.store.engine import database_url, describe

    try:
        settings = Settings()
    except ValidationError:
        return "(see the API's log)"
    if not settings.store:
        return "off (SENTIMON_STORE=false)"
    return describe(
        database_url(settings.database_url, settings.data_dir, settings.database_password_file)
    )


def _watch(stack: Stack, console: Console) -> None:
    """Print alerts as they start and stop firing in Alertmanager, until interrupted."""
    known: dict[str, dict[str, Any]] = {}
    url = f"{stack.urls['alertmanager']}/api/v2/alerts?active=true&silenced=false&inhibited=false"
    while True:
        stack.check_running()
        current = {a["fingerprint"]: a for a in _get_json(url) or []}
        for fingerprint, alert in current.items():
            if fingerprint not in known:
                labels, notes = alert["labels"], alert.get("annotations", {})
                console.print(
                    f"[{time.strftime('%H:%M:%S')}] [bold red]FIRING[/bold red] "
                    f"{labels.get('alertname')} ({labels.get('severity', '?')}): "
                    f"{notes.get('summary', '')}"
                )
        for fingerprint, alert in known.items():
            if fingerprint not in current:
                console.print(
                    f"[{time.strftime('%H:%M:%S')}] [green]resolved[/green] "
                    f"{alert['labels'].get('alertname')}"
                )
        known = current
        time.sleep(POLL_S)


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _print_notification(console: Console, notification: Notification) -> None:
    alerts = notification.get("alerts", [])
    names = sorted({a.get("labels", {}).get("alertname", "?") for a in alerts})
    console.print(
        f"[{time.strftime('%H:%M:%S')}] webhook: {notification.get('status', '?')} "
        f"{', '.join(names)} via receiver {notification.get('receiver', '?')}"
    )
