"""The Docker Compose stack (deploy/compose/) brought up for real by docker compose v2 against
podman, with a test override that only swaps in what cannot be had here:

- images: sentimon's own, built from the repo, and stand-ins made from Debian's packages for
  Prometheus, Alertmanager, node-exporter and PostgreSQL (tests/container/standins). Grafana,
  Loki and Alloy have no stand-in and are not started (their configs are checked offline in
  tests/deploy/test_compose.py);
- published ports: free ones, still on 127.0.0.1;
- the secret files: a temporary folder instead of deploy/compose/secrets, which may hold the
  user's own;
- healthchecks: podman runs them from systemd timers, and these machines have no systemd, so
  a thread runs each container's own healthcheck (`podman healthcheck run`) every second;
- speed: Prometheus's intervals and alert waits and Alertmanager's group waits shortened as in
  tests/integration/test_stack.py, every other line of those configs as shipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from bench.servers import free_port
from sentimon.cli.main import app
from sentimon.stack.configs import format_duration, parse_duration
from tests.container.conftest import ROOT, checked, podman_ready, run
from tests.deploy.test_compose import COMPOSE_DIR, compose_binary

pytestmark = [pytest.mark.slow, pytest.mark.container]

FOR_SCALE = 1 / 20
SERVICES = ("api", "prometheus", "alertmanager", "node-exporter")
"""What `up` is asked for; secrets-check, postgres and webhook come as their dependencies."""
LEFT_OUT = {"grafana", "loki", "alloy"}


@dataclass
class Compose:
    project: str
    env: dict[str, str]
    files: list[str]
    ports: dict[str, int] = field(default_factory=dict)

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(compose_binary()), "-p", self.project]
        for f in self.files:
            argv += ["-f", f]
        return run(*argv, *args, timeout=timeout, cwd=COMPOSE_DIR, env=self.env)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def leftovers(self) -> list[str]:
        """This project's containers, volumes and networks still in podman."""
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for kind, listing in (
            ("container", ["ps", "-a", "--format", "{{.Names}}"]),
            ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
            ("network", ["network", "ls", "--format", "{{.Name}}"]),
        ):
            names = checked("podman", *listing, "--filter", label).split()
            found += [f"{kind} {name}" for name in names]
        return found


class HealthcheckTicker:
    """Runs each of a project's running containers' healthcheck on its own interval, as
    podman's systemd timers would (start periods are podman's own business)."""

    def __init__(self, project: str) -> None:
        self._label = f"label=com.docker.compose.project={project}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthcheckTicker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        due: dict[str, float] = {}
        while not self._stop.wait(0.5):
            names = run("podman", "ps", "--filter", self._label, "--format", "{{.Names}}")
            for name in names.stdout.split():
                now = time.monotonic()
                if name not in due:
                    due[name] = now + self._interval_s(name)
                elif now >= due[name]:
                    run("podman", "healthcheck", "run", name, timeout=30)
                    due[name] = now + self._interval_s(name)

    @staticmethod
    def _interval_s(name: str) -> float:
        inspected = run("podman", "inspect", "--format", "{{json .Config.Healthcheck}}", name)
        try:
            return float(json.loads(inspected.stdout)["Interval"]) / 1e9
        except (ValueError, TypeError, KeyError):  # no healthcheck
            return 3600.0


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker-compatible API, which docker compose talks to."""
    podman_ready()
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert time.monotonic() < deadline, "podman's API socket did not appear"
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)


def _fast_configs(folder: Path) -> dict[str, Path]:
    """The compose copies of prometheus.yml and alertmanager.yml and the repo's rules, with
    test-speed timing only."""
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    prometheus["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    rules = folder / "rules"
    rules.mkdir(mode=0o755)
    for rule_file in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yaml"):
        loaded = yaml.safe_load(rule_file.read_text())
        for group in loaded["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = format_duration(parse_duration(rule["for"]) * FOR_SCALE)
        (rules / rule_file.name).write_text(yaml.safe_dump(loaded, sort_keys=False))
    alertmanager = yaml.safe_load((COMPOSE_DIR / "alertmanager.yml").read_text())
    for route in [alertmanager["route"], *alertmanager["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="2s")
    paths = {"prometheus": folder / "prometheus.yml", "alertmanager": folder / "alertmanager.yml"}
    paths["prometheus"].write_text(yaml.safe_dump(prometheus, sort_keys=False))
    paths["alertmanager"].write_text(yaml.safe_dump(alertmanager, sort_keys=False))
    return {**paths, "rules": rules}


def _override(
    folder: Path, image: str, standins: dict[str, str], ports: dict[str, int], secrets: Path
) -> Path:
    configs = _fast_configs(folder)
    ours = {"image": image, "pull_policy": "never"}
    override = {
        "services": {
            "secrets-check": ours,
            "api": {**ours, "ports": [f"127.0.0.1:{ports['api']}:8000"]},
            "webhook": ours,
            "postgres": {"image": standins["postgres"], "pull_policy": "never"},
            "node-exporter": {"image": standins["node-exporter"], "pull_policy": "never"},
            "prometheus": {
                "image": standins["prometheus"],
                "pull_policy": "never",
                "ports": [f"127.0.0.1:{ports['prometheus']}:9090"],
                "volumes": [
                    f"{configs['prometheus']}:/etc/prometheus/prometheus.yml:ro",
                    f"{configs['rules']}:/etc/prometheus/rules:ro",
                ],
            },
            "alertmanager": {
                "image": standins["alertmanager"],
                "pull_policy": "never",
                "ports": [f"127.0.0.1:{ports['alertmanager']}:9093"],
                "volumes": [f"{configs['alertmanager']}:/etc/alertmanager/alertmanager.yml:ro"],
            },
        },
        "secrets": {
            name: {"file": str(secrets / name)}
            for name in ("grafana_admin_password", "postgres_password")
        },
    }
    text = yaml.safe_dump(override, sort_keys=False)
    # Published ports replace the shipped ones instead of adding to them.
    text = text.replace("  ports:\n", "  ports: !override\n")
    path = folder / "compose.test.yml"
    path.write_text(text)
    return path


def _project(
    tmp: Path, socket: str, image: str, standins: dict[str, str], secrets: Path
) -> Compose:
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port()}
    override = _override(tmp, image, standins, ports, secrets)
    env = {
        **os.environ,
        "DOCKER_HOST": socket,
        "COMPOSE_BAKE": "false",
        "DOCKER_BUILDKIT": "0",
    }
    name = f"sentimon-test-{os.getpid()}-{len(list(tmp.parent.iterdir()))}"
    files = [str(COMPOSE_DIR / "docker-compose.yml"), str(override)]
    return Compose(name, env, files, ports)


def test_the_stack_refuses_to_start_without_readable_secrets_and_says_how_to_fix_them(
    tmp_path: Path, podman_socket: str, image: str, standins: dict[str, str]
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    # One secret never made; the other only readable by its owner (root here), not by the
    # services' own users.
    (secrets / "grafana_admin_password").write_text("s3cret-from-a-file\n")
    (secrets / "grafana_admin_password").chmod(0o600)
    compose = _project(tmp_path, podman_socket, image, standins, secrets)
    try:
        with HealthcheckTicker(compose.project):
            result = compose("up", "-d", *SERVICES, timeout=180)
        assert result.returncode != 0
        assert 'service "secrets-check" didn\'t complete successfully: exit 1' in result.stderr
        logs = compose("logs", "--no-color", "--no-log-prefix", "secrets-check").stdout
        assert logs.splitlines() == [
            "missing secrets: postgres_password. Create them in deploy/compose:",
            # podman made an empty folder where the file should be.
            "  rmdir secrets/postgres_password; "
            "openssl rand -base64 24 > secrets/postgres_password",
            "unreadable secrets: grafana_admin_password. The services read them as non-root "
            "users (the secrets/ folder itself can stay 700):",
            "  chmod 644 secrets/grafana_admin_password",
        ]
        # Nothing that needs a secret was started.
        states = {c["Service"]: c["State"] for c in _containers(compose)}
        assert states["api"] == states["postgres"] == "created", states
    finally:
        compose("down", "-v", "-t", "5")
    assert compose.leftovers() == []


def _containers(compose: Compose) -> list[dict[str, Any]]:
    listing = compose("ps", "-a", "--format", "json").stdout
    return [json.loads(line) for line in listing.splitlines()]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    podman_socket: str,
    image: str,
    standins: dict[str, str],
) -> Iterator[Compose]:
    tmp = tmp_path_factory.mktemp("compose")
    secrets = tmp / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("grafana_admin_password", "postgres_password"):
        # As the README makes them: random, with openssl's trailing newline, mode 644 in a
        # folder only its owner can enter.
        (secrets / name).write_text(os.urandom(18).hex() + "\n")
        (secrets / name).chmod(0o644)
    compose = _project(tmp, podman_socket, image, standins, secrets)
    try:
        with HealthcheckTicker(compose.project):
            result = compose("up", "-d", "--wait", "--wait-timeout", "180", *SERVICES, timeout=400)
            assert result.returncode == 0, result.stderr[-4000:] + compose("logs").stdout[-4000:]
            yield compose
    finally:
        compose("down", "-v", "-t", "5")


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _wait_for(what: str, check: Callable[[], Any], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_only_what_cannot_be_had_here_is_left_out(stack: Compose) -> None:
    services = set(stack("config", "--services").stdout.split())
    containers = [
        json.loads(line) for line in stack("ps", "-a", "--format", "json").stdout.splitlines()
    ]
    assert services - {c["Service"] for c in containers} == LEFT_OUT
    health = {c["Service"]: c["Health"] for c in containers}
    checked = ("api", "postgres", "prometheus", "alertmanager")
    assert {s: health[s] for s in checked} == dict.fromkeys(checked, "healthy")


def test_the_api_keeps_predictions_and_feedback_in_postgresql(stack: Compose) -> None:
    url = stack.url("api")
    answer = httpx.post(f"{url}/predict", json={"text": "what a lovely day"}).json()
    assert answer["label"] == "positive"
    feedback = httpx.post(
        f"{url}/feedback", json={"request_id": answer["request_id"], "correct": True}
    )
    assert feedback.status_code == 201, feedback.text
    # Reached by service name, with the password from the secret file: the row is there.
    rows = stack(
        "exec", "-T", "postgres", "psql", "-U", "sentimon", "-d", "sentimon", "-tA", "-c",
        "SELECT p.label, f.correct FROM predictions p JOIN feedback f ON f.prediction_id = p.id",
    )  # fmt: skip
    assert rows.stdout.split() == ["positive|t"], rows.stderr
    # And the app's log file is written on its volume, for Alloy to ship.
    log = stack("exec", "-T", "api", "tail", "-n", "50", "/var/log/sentimon/sentimon.log")
    assert answer["request_id"] in log.stdout, log.stderr


def test_prometheus_scrapes_the_api_and_loads_the_repo_rules(stack: Compose) -> None:
    def api_up() -> bool:
        targets = _json(f"{stack.url('prometheus')}/api/v1/targets")["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health.get("sentimon") == "up" and health.get("node") == "up"

    _wait_for("the api and node-exporter targets up", api_up)
    groups = _json(f"{stack.url('prometheus')}/api/v1/rules")["data"]["groups"]
    loaded = sorted(rule["name"] for group in groups for rule in group["rules"])
    shipped = sorted(
        rule.get("alert") or rule["record"]
        for rule_file in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yaml")
        for group in yaml.safe_load(rule_file.read_text())["groups"]
        for rule in group["rules"]
    )
    assert loaded == shipped
    assert all(group["rules"] for group in groups)
    assert not [r for g in groups for r in g["rules"] if r.get("health") == "err"]


def test_bad_input_fires_an_alert_that_reaches_alertmanager_and_the_webhook(
    stack: Compose,
) -> None:
    result = CliRunner().invoke(
        app,
        ["traffic", "--scenario", "bad-input", "--url", stack.url("api"), "--rate", "25",
         "--duration", "10"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    def alert() -> dict[str, Any] | None:
        alerts = _json(f"{stack.url('alertmanager')}/api/v2/alerts?active=true")
        return next(
            (a for a in alerts if a["labels"]["alertname"] == "SentimentHighClientErrorRate"),
            None,
        )

    fired = _wait_for("SentimentHighClientErrorRate in Alertmanager", alert)
    assert fired["labels"]["job"] == "sentimon"

    def notified() -> list[dict[str, Any]]:
        logs = stack("logs", "--no-color", "--no-log-prefix", "webhook").stdout
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        return [
            line
            for line in lines
            if line.get("alertname") == "SentimentHighClientErrorRate"
            and line["status"] == "firing"
        ]

    [notification, *_] = _wait_for("the webhook's notification", notified)
    assert notification["receiver"] == "default"
    assert notification["severity"] == "warning"


def test_down_v_leaves_nothing_behind(stack: Compose) -> None:
    result = stack("down", "-v", "-t", "10")
    assert result.returncode == 0, result.stderr
    assert stack.leftovers() == []
