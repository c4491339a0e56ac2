"""The native monitoring stack: the API, Prometheus, Alertmanager, node-exporter and a webhook
receiver, from this machine's binaries and the deploy/ configs, on loopback ports."""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sentimon.stack.configs import (
    Ports,
    Timing,
    find_deploy_dir,
    render_alertmanager,
    render_prometheus,
)
from sentimon.stack.processes import (
    ALERTMANAGER,
    NODE_EXPORTER,
    PROMETHEUS,
    ManagedProcess,
    StackError,
    find_binary,
)
from sentimon.stack.webhook import Notification, WebhookReceiver

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class StackConfig:
    ports: Ports = field(default_factory=Ports)
    timing: Timing = field(default_factory=Timing)
    data_dir: Path | None = None
    """Where data and logs go; a temporary folder (removed on stop) when None."""
    deploy_dir: Path | None = None
    api_args: Sequence[str] = ()
    """Extra `sentimon serve` flags (--model, --backend, ...)."""
    api_env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0


class Stack:
    """Start with `start()` (or `with Stack(config) as stack:`); `stop()` stops all by pid."""

    def __init__(
        self,
        config: StackConfig,
        on_notification: Callable[[Notification], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_notification = on_notification
        self._progress = on_progress or (lambda _: None)
        self.processes: dict[str, ManagedProcess] = {}
        self.webhook: WebhookReceiver | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.data_dir = config.data_dir or Path()

    @property
    def urls(self) -> dict[str, str]:
        p = self.config.ports
        return {
            "api": f"http://{HOST}:{p.api}",
            "prometheus": f"http://{HOST}:{p.prometheus}",
            "alertmanager": f"http://{HOST}:{p.alertmanager}",
            "node_exporter": f"http://{HOST}:{p.node_exporter}",
            "webhook": f"http://{HOST}:{p.webhook}/alerts",
        }

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every part, or none: on any failure what started is stopped again."""
        binaries = {b.name: find_binary(b) for b in (PROMETHEUS, ALERTMANAGER, NODE_EXPORTER)}
        deploy = self.config.deploy_dir or find_deploy_dir()
        if self.config.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sentimon-up-")
            self.data_dir = Path(self._tmp.name)
        else:
            self.data_dir = self.config.data_dir
        ports, timing = self.config.ports, self.config.timing
        configs = self.data_dir / "config"
        logs = self.data_dir / "logs"
        try:
            prometheus_yml = render_prometheus(deploy, configs, ports, timing)
            alertmanager_yml = render_alertmanager(deploy, configs, ports, timing)
            self.webhook = WebhookReceiver(ports.webhook, HOST, self._on_notification)
            self.webhook.start()
            self._spawn(
                "node-exporter",
                [
                    binaries[NODE_EXPORTER.name],
                    f"--web.listen-address={HOST}:{ports.node_exporter}",
                    "--no-collector.systemd",
                ],
                f"{self.urls['node_exporter']}/metrics",
                logs,
            )
            self._spawn(
                "alertmanager",
                [
                    binaries[ALERTMANAGER.name],
                    f"--config.file={alertmanager_yml}",
                    f"--storage.path={self.data_dir / 'alertmanager'}",
                    f"--web.listen-address={HOST}:{ports.alertmanager}",
                    "--cluster.listen-address=",
                ],
                f"{self.urls['alertmanager']}/-/ready",
                logs,
            )
            self._spawn(
                "api",
                [
                    sys.executable,
                    "-m",
                    "sentimon",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(ports.api),
                    *self.config.api_args,
                ],
                # Alive is enough: a model that fails to load must stay visible to the alerts.
                f"{self.urls['api']}/healthz",
                logs,
                {
                    # The web UI's Watch view links to them.
                    "SENTIMON_PROMETHEUS_URL": self.urls["prometheus"],
                    "SENTIMON_ALERTMANAGER_URL": self.urls["alertmanager"],
                    **self.config.api_env,
                },
            )
            self._spawn(
                "prometheus",
                [
                    binaries[PROMETHEUS.name],
                    f"--config.file={prometheus_yml}",
                    f"--storage.tsdb.path={self.data_dir / 'prometheus'}",
                    f"--web.listen-address={HOST}:{ports.prometheus}",
                    "--web.enable-lifecycle",
                    *(
                        [f"--rules.alert.resend-delay={timing.resend_delay}"]
                        if timing.resend_delay
                        else []
                    ),
                ],
                f"{self.urls['prometheus']}/-/ready",
                logs,
            )
            for name, process in self.processes.items():
                self._progress(f"waiting for {name}")
                process.wait_ready(self.config.ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _spawn(
        self,
        name: str,
        argv: list[str],
        ready_url: str,
        logs: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self._progress(f"starting {name}")
        self.processes[name] = ManagedProcess(name, argv, logs / f"{name}.log", ready_url, env)

    def check_running(self) -> None:
        """Raise StackError naming the first part that has exited."""
        for name, process in self.processes.items():
            if not process.running():
                raise StackError(
                    f"{name} exited with status {process.process.returncode}; last lines of "
                    f"{process.log_path}:\n{process.log_tail()}"
                )

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self._progress(f"stopping {name}")
            self.processes[name].stop()
        self.processes.clear()
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


__all__ = ["Stack", "StackConfig", "StackError"]
