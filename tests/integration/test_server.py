"""`sentimon serve` as a real process: real model, real HTTP, JSON logs, promtool-clean metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port
from tests.servers import start_server

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log_file: Path
    stdout: Path
    stderr: Path


def _env(cache_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMON_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if cache_dir is not None:
        env["SENTIMON_CACHE_DIR"] = str(cache_dir)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    logs = tmp_path_factory.mktemp("logs")
    log_file = logs / "sentimon.log"
    # Files, not pipes: a pipe nobody reads fills up and blocks the server's logging.
    stdout, stderr = (logs / "stdout").open("w"), (logs / "stderr").open("w")
    cache_dir = tmp_path_factory.mktemp("onnx-cache")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentimon",
            "serve",
            "--port",
            str(port),
            "--num-threads",
            "1",
            "--log-file",
            str(log_file),
        ],
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=_env(cache_dir),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {(logs / 'stderr').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("server not ready in 90 s")
    yield Server(process, url, log_file, logs / "stdout", logs / "stderr")
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    stdout.close()
    stderr.close()


def test_real_predictions_over_http(server: Server) -> None:
    r = httpx.post(
        f"{server.url}/predict",
        json={"text": "I love this so much, thank you!"},
        headers={"X-Request-ID": "it-1"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == "positive" and body["request_id"] == "it-1"
    assert body["model"] == "sentimon-minilm-vader"
    info = httpx.get(f"{server.url}/info").json()
    assert info["backend"] == "onnx-int8"
    r = httpx.post(
        f"{server.url}/analyze-sentiment/", json={"text": "worst service ever, never again"}
    )
    assert r.json()["sentiment"] == "negative"
    r = httpx.post(f"{server.url}/predict/batch", json={"texts": ["great", "awful", "ok"]})
    assert len(r.json()["predictions"]) == 3


def test_metrics_pass_promtool_lint(server: Server) -> None:
    # `make test` installs Debian's prometheus package, which ships promtool.
    assert shutil.which("promtool"), (
        "promtool missing: run `make test` or apt-get install prometheus"
    )
    httpx.post(f"{server.url}/predict", json={"text": "fine"})
    httpx.post(f"{server.url}/predict", json={"text": ""})
    payload = httpx.get(f"{server.url}/metrics").text
    assert "sentiment_model_loaded 1.0" in payload
    lint = subprocess.run(
        ["promtool", "check", "metrics"], input=payload, text=True, capture_output=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_int8_recipe_and_packing_are_reported_everywhere(server: Server) -> None:
    from sentimon.model.cpu import detect_int8
    from sentimon.model.int8 import RECIPE as recipe

    cpu = detect_int8()
    info = httpx.get(f"{server.url}/info").json()
    assert info["packed"] is True
    assert info["int8"] == {
        "recipe": recipe.id,
        "weight_bits": recipe.weight_bits,
        "cpu_class": cpu.cpu_class,
        "kernel": cpu.kernel,
        "description": recipe.description,
    }
    metrics = httpx.get(f"{server.url}/metrics").text
    assert (
        f'sentiment_model_info{{backend="onnx-int8",int8_kernel="{cpu.kernel}",'
        f'int8_recipe="{recipe.id}",model="sentimon-minilm-vader",revision="v1-2f5e9f7192f5"}} 1.0'
    ) in metrics
    lines = [json.loads(line) for line in server.log_file.read_text().splitlines()]
    [chosen] = [line for line in lines if line.get("event") == "int8_recipe"]
    assert chosen["message"] == (
        f"int8 recipe {recipe.id} ({recipe.weight_bits}-bit weights, the same integers on every "
        f"CPU); here {cpu.explain()}"
    )
    assert (chosen["int8_recipe"], chosen["int8_kernel"]) == (recipe.id, cpu.kernel)
    [ready] = [line for line in lines if line.get("event") == "ready"]
    assert (ready["int8_recipe"], ready["int8_kernel"]) == (recipe.id, cpu.kernel)
    assert ready["packed"] is True


def test_logs_are_json_lines_with_request_ids_in_stdout_and_file(server: Server) -> None:
    httpx.post(f"{server.url}/predict", json={"text": "log me"}, headers={"X-Request-ID": "log-1"})
    time.sleep(0.2)
    lines = [json.loads(line) for line in server.log_file.read_text().splitlines()]
    mine = [line for line in lines if line["request_id"] == "log-1"]
    assert {line.get("event") for line in mine} == {"prediction", "request"}
    assert all("log me" not in json.dumps(line) for line in lines)
    assert any(line.get("event") == "ready" for line in lines)


def test_traffic_bad_input_gets_4xx_and_never_5xx(server: Server) -> None:
    from typer.testing import CliRunner

    from sentimon.cli.main import app
    from sentimon.traffic.scenarios import ScenarioOptions, build_requests
    from tests.unit.traffic.test_scenarios import well_formed

    result = CliRunner().invoke(
        app,
        [
            "traffic",
            "--scenario",
            "bad-input",
            "--url",
            server.url,
            "--rate",
            "50",
            "--duration",
            "3",
            "--seed",
            "1",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    counts = {int(s): int(n) for s, n in re.findall(r"HTTP (\d{3})\s*\S\s*(\d+) \(", result.output)}
    assert sum(counts.values()) == 150, result.output
    # Exactly the malformed requests among the 150 sent are refused, each with a 4xx.
    sent = build_requests("bad-input", ScenarioOptions(seed=1))[:150]
    malformed = sum(not well_formed(r) for r in sent)
    assert counts.pop(200) == 150 - malformed, result.output
    assert sum(counts.values()) == malformed and all(400 <= s < 500 for s in counts), counts
    assert {400, 415, 422} <= set(counts)


def test_sigterm_stops_cleanly_and_stdout_is_json(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=20)
    out, err = server.stdout.read_text(), server.stderr.read_text()
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status shows it.
    assert server.process.returncode in (0, -signal.SIGTERM), err[-2000:]
    for line in out.splitlines():
        json.loads(line)
    events = [json.loads(line).get("event") for line in out.splitlines()]
    assert "ready" in events and "shutdown" in events


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("/no/such/model", "SENTIMON_MODEL='/no/such/model': no such folder"),
    ],
)
def test_an_unloadable_model_exits_with_a_clear_error(model: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sentimon", "serve", "--port", str(free_port()), "--model", model],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    errors = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(e["message"] == message and e["event"] == "model_load_failed" for e in errors)


def test_a_stdout_nobody_reads_does_not_stop_the_service(tmp_path: Path) -> None:
    # A pipe holds 64 KiB; 500 predictions log about 1,000 lines (about 300 KB). Written on
    # the event loop, the first full pipe would stop every request.
    running = start_server(tmp_path, "--num-threads", "1", stdout=subprocess.PIPE)
    try:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            for i in range(500):
                assert http.post("/predict", json={"text": f"text {i}"}).status_code == 200
            assert http.get("/healthz").status_code == 200
    finally:
        assert running.stop() in (0, -signal.SIGTERM)
        assert running.process.stdout is not None
        running.process.stdout.close()
    assert "Traceback" not in running.log.read_text()  # stderr
