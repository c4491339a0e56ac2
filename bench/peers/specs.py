"""How to start each peer on a loopback port, and the request body each one expects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.peers import mlserver_config
from bench.peers.paths import HERE, check_peer, peer_dir, venv_bin
from bench.servers import HOST, ServerSpec, free_port


def bentoml_body(text: str) -> bytes:
    """A batchable BentoML API takes a batch: one text is a list of one."""
    return json.dumps({"texts": [text]}).encode()


def mlserver_body(text: str) -> bytes:
    """An Open Inference Protocol request with one string in the input named array_inputs.

    The Hugging Face runtime's documented input name, `args`, answers HTTP 500 as soon as two
    requests share a batch (the texts become separate positional arguments of the pipeline).
    """
    request = {
        "inputs": [{"name": "array_inputs", "shape": [1], "datatype": "BYTES", "data": [text]}]
    }
    return json.dumps(request).encode()


def common_env(model_path: Path, threads: int) -> dict[str, str]:
    return {
        "PEER_MODEL": str(model_path),
        "PEER_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(HERE),
    }


def bentoml_spec(model_path: Path, threads: int, work_dir: Path) -> ServerSpec:
    home = peer_dir("bentoml", work_dir) / "home"
    return ServerSpec(
        name="bentoml",
        label="BentoML 1.4.39, adaptive batching, PyTorch",
        argv=[
            str(venv_bin("bentoml", work_dir) / "bentoml"),
            "serve",
            "bentoml_service:Sentiment",
            "--working-dir",
            str(HERE),
            "--host",
            HOST,
            "--port",
            "{port}",
        ],
        env={
            **common_env(model_path, threads),
            "BENTOML_HOME": str(home),
            "BENTOML_DO_NOT_TRACK": "true",
        },
        ready_path="/readyz",
        health_path="/healthz",
        predict_path="/classify",
        metrics_path="/metrics",
        body=bentoml_body,
    )


def mlserver_spec(model_path: Path, threads: int, work_dir: Path) -> ServerSpec:
    key = hashlib.sha256(str(model_path).encode()).hexdigest()[:8]
    folder = peer_dir("mlserver", work_dir) / "serve" / f"{model_path.name}-{key}-{threads}t"
    mlserver_config.write_config(folder, model_path, threads, free_port(), free_port())
    return ServerSpec(
        name="mlserver",
        label="Seldon MLServer 1.7.1, Hugging Face runtime, adaptive batching, PyTorch",
        # The HTTP port comes from the environment: settings.json has no place for "{port}".
        argv=[
            "env",
            "MLSERVER_HTTP_PORT={port}",
            str(venv_bin("mlserver", work_dir) / "mlserver"),
            "start",
            str(folder),
        ],
        env=common_env(model_path, threads),
        ready_path="/v2/health/ready",
        health_path="/v2/health/live",
        predict_path=f"/v2/models/{mlserver_config.MODEL_NAME}/infer",
        metrics_path=None,
        body=mlserver_body,
    )


def peer_spec(peer: str, model_path: Path, threads: int, work_dir: Path) -> ServerSpec:
    """A ServerSpec that starts `peer` serving the model folder at model_path in fp32.

    Both peers listen on 127.0.0.1 at the "{port}" the Server fills in, run one inference
    worker process with `threads` compute threads, and batch concurrent requests. Files they
    read at start are written under work_dir/peers/<peer>/.
    """
    check_peer(peer)
    model_path = model_path.resolve()
    if peer == "bentoml":
        return bentoml_spec(model_path, threads, work_dir)
    return mlserver_spec(model_path, threads, work_dir)
