"""The peers: their request bodies, start commands, MLServer's files and the virtualenv stamp."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.peers import PEERS, ensure_env, peer_spec
from bench.peers import specs as specs_module
from bench.peers import venv as venv_module
from bench.peers.mlserver_config import legacy_tokenizer_json, write_tokenizer_copy
from bench.peers.paths import HERE, requirements_file
from bench.peers.venv import STAMP, needs_rebuild, pinned, requirements_digest

UNKNOWN = "unknown peer 'torchserve'; known peers: bentoml, mlserver"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """free_port() hands out 41001, 41002, ... for MLServer's gRPC and metrics ports."""
    counter: Iterator[int] = iter(range(41001, 41100))
    monkeypatch.setattr(specs_module, "free_port", lambda: next(counter))


def test_peers_are_bentoml_and_mlserver() -> None:
    assert PEERS == ("bentoml", "mlserver")
    assert [requirements_file(p).name for p in PEERS] == [
        "requirements-bentoml.txt",
        "requirements-mlserver.txt",
    ]


def test_unknown_peer_is_a_value_error(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ValueError) as spec_error:
        peer_spec("torchserve", model, 2, tmp_path)
    with pytest.raises(ValueError) as env_error:
        ensure_env("torchserve", tmp_path)
    assert str(spec_error.value) == str(env_error.value) == UNKNOWN


def test_bodies_carry_one_text_in_each_peers_request_shape(tmp_path: Path, model: Path) -> None:
    bentoml = peer_spec("bentoml", model, 2, tmp_path).body
    assert bentoml('say "hi" 😀') == b'{"texts": ["say \\"hi\\" \\ud83d\\ude00"]}'
    assert json.loads(bentoml("ok")) == {"texts": ["ok"]}
    mlserver = peer_spec("mlserver", model, 2, tmp_path).body
    assert json.loads(mlserver("ok")) == {
        "inputs": [{"name": "array_inputs", "shape": [1], "datatype": "BYTES", "data": ["ok"]}]
    }


def test_bentoml_spec(tmp_path: Path, model: Path) -> None:
    spec = peer_spec("bentoml", model, 3, tmp_path)
    venv = tmp_path / "peers" / "bentoml" / "venv"
    assert (spec.name, spec.label) == ("bentoml", "BentoML 1.4.39, adaptive batching, PyTorch")
    assert spec.argv == [
        str(venv / "bin" / "bentoml"),
        "serve",
        "bentoml_service:Sentiment",
        "--working-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    assert spec.env == {
        "PEER_MODEL": str(model),
        "PEER_THREADS": "3",
        "OMP_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(HERE),
        "BENTOML_HOME": str(tmp_path / "peers" / "bentoml" / "home"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    paths = (spec.ready_path, spec.health_path, spec.predict_path, spec.metrics_path)
    assert paths == ("/readyz", "/healthz", "/classify", "/metrics")
    assert (HERE / "bentoml_service.py").is_file()


def test_relative_paths_become_absolute(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = peer_spec("bentoml", Path("models/tiny"), 2, Path("work"))
    assert spec.env["PEER_MODEL"] == str(model)
    assert spec.argv[0] == str(tmp_path / "work" / "peers" / "bentoml" / "venv/bin/bentoml")


@pytest.mark.usefixtures("ports")
def test_mlserver_spec_and_its_files(tmp_path: Path, model: Path) -> None:
    spec = peer_spec("mlserver", model, 2, tmp_path)
    peer = tmp_path / "peers" / "mlserver"
    key = hashlib.sha256(str(model).encode()).hexdigest()[:8]
    folder = peer / "serve" / f"tiny-{key}-2t"
    assert spec.name == "mlserver"
    assert spec.label == "Seldon MLServer 1.7.1, Hugging Face runtime, adaptive batching, PyTorch"
    assert spec.argv == [
        "env",
        "MLSERVER_HTTP_PORT={port}",
        str(peer / "venv" / "bin" / "mlserver"),
        "start",
        str(folder),
    ]
    assert spec.env == {
        "PEER_MODEL": str(model),
        "PEER_THREADS": "2",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(HERE),
    }
    paths = (spec.ready_path, spec.health_path, spec.predict_path, spec.metrics_path)
    assert paths == ("/v2/health/ready", "/v2/health/live", "/v2/models/sentiment/infer", None)
    assert json.loads((folder / "settings.json").read_text()) == {
        "debug": False,
        "host": "127.0.0.1",
        "grpc_port": 41001,
        "metrics_port": 41002,
        "metrics_dir": str(folder / "metrics"),
        "parallel_workers": 1,
        "load_models_at_startup": True,
    }
    assert json.loads((folder / "sentiment" / "model-settings.json").read_text()) == {
        "name": "sentiment",
        "implementation": "mlserver_runtime.AllScoresRuntime",
        "max_batch_size": 32,
        "max_batch_time": 0.005,
        "parameters": {
            "extra": {
                "task": "text-classification",
                "pretrained_model": str(model),
                "pretrained_tokenizer": str(folder / "tokenizer"),
                "framework": "pt",
                "intra_op_threads": 2,
            }
        },
    }
    assert sorted(p.name for p in (folder / "tokenizer").iterdir()) == ["config.json"]
    assert (HERE / "mlserver_runtime.py").is_file()


@pytest.mark.usefixtures("ports")
def test_each_model_and_thread_count_gets_its_own_mlserver_folder(
    tmp_path: Path, model: Path
) -> None:
    other = tmp_path / "other" / "tiny"
    other.mkdir(parents=True)
    folders = {
        peer_spec("mlserver", m, t, tmp_path).argv[-1] for m in (model, other) for t in (1, 2)
    }
    assert len(folders) == 4


def test_bpe_merges_are_written_the_way_tokenizers_0_19_reads_them() -> None:
    bpe: dict[str, Any] = {
        "version": "1.0",
        "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["Ġ", "t"], ["h", "e"]]},
    }
    assert legacy_tokenizer_json(bpe) == {
        "version": "1.0",
        "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["Ġ t", "h e"]},
    }
    assert bpe["model"]["merges"] == [["Ġ", "t"], ["h", "e"]]
    legacy = {"model": {"type": "BPE", "merges": ["Ġ t"]}}
    wordpiece = {"model": {"type": "WordPiece", "vocab": {"[PAD]": 0}}}
    assert legacy_tokenizer_json(legacy) == legacy
    assert legacy_tokenizer_json(wordpiece) == wordpiece


def test_tokenizer_copy_leaves_out_weights(tmp_path: Path, model: Path) -> None:
    tokenizer = {"model": {"type": "BPE", "merges": [["Ġ", "t"]]}, "added": "😀"}
    (model / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    (model / "merges.txt").write_text("Ġ t\n")
    (model / "pytorch_model.bin").write_bytes(b"weights")
    dest = write_tokenizer_copy(model, tmp_path / "copy")
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "merges.txt", "tokenizer.json"]
    assert (dest / "tokenizer.json").read_text(encoding="utf-8") == (
        '{"model": {"type": "BPE", "merges": ["Ġ t"]}, "added": "😀"}'
    )
    (model / "merges.txt").unlink()
    assert sorted(p.name for p in write_tokenizer_copy(model, dest).iterdir()) == [
        "config.json",
        "tokenizer.json",
    ]


def test_rebuild_when_missing_unstamped_or_requirements_changed() -> None:
    digest = requirements_digest(b"torch==2.13.0\n")
    assert digest == "ca8985f47f1aec0618a8f6e2b1d69151cfc9a7f513f779d799836452ce9f369c"
    assert not needs_rebuild(digest, digest, python_exists=True)
    assert needs_rebuild(digest, digest, python_exists=False)
    assert needs_rebuild(None, digest, python_exists=True)
    assert needs_rebuild(requirements_digest(b"torch==2.12.0\n"), digest, python_exists=True)


def test_torch_is_pinned_in_both_requirements_files() -> None:
    for peer in PEERS:
        assert pinned(requirements_file(peer).read_text(), "torch") == "torch==2.13.0"
    assert pinned("# x\nTorch == 1.0\nnumpy==2\n", "torch") == "Torch == 1.0"
    with pytest.raises(ValueError, match=r"^no torch==<version> line in the requirements$"):
        pinned("torchvision==0.1\ntorch>=2\n", "torch")


class FakeRun:
    """Stands in for subprocess.run: records each command, makes the venv's python appear."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        self.commands.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            (Path(argv[3]) / "bin").mkdir(parents=True)
            (Path(argv[3]) / "bin" / "python").write_text("")
        return subprocess.CompletedProcess(argv, 0)


def test_ensure_env_builds_once_then_again_when_requirements_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requirements = tmp_path / "requirements-bentoml.txt"
    requirements.write_text("torch==2.13.0\nbentoml==1.4.39\n")
    monkeypatch.setattr(venv_module, "requirements_file", lambda _: requirements)
    fake = FakeRun()
    monkeypatch.setattr(subprocess, "run", fake)
    venv = tmp_path / "peers" / "bentoml" / "venv"
    python = str(venv / "bin" / "python")

    assert ensure_env("bentoml", tmp_path) == venv / "bin" / "python"
    assert fake.commands == [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "--no-input", "torch==2.13.0"],
        [python, "-m", "pip", "install", "--no-input", "-r", str(requirements)],
    ]
    assert (venv / STAMP).read_text() == requirements_digest(requirements.read_bytes()) + "\n"

    ensure_env("bentoml", tmp_path)
    assert len(fake.commands) == 3

    (venv / "leftover").write_text("")
    requirements.write_text("torch==2.13.0\nbentoml==1.4.38\n")
    ensure_env("bentoml", tmp_path)
    assert len(fake.commands) == 6
    assert not (venv / "leftover").exists()


def test_failed_install_names_its_log_and_leaves_no_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_pip(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if "pip" in argv:
            kwargs["stdout"].write(b"ERROR: No matching distribution found for bentoml\n")
            return subprocess.CompletedProcess(argv, 1)
        return FakeRun()(argv)

    monkeypatch.setattr(subprocess, "run", fail_pip)
    with pytest.raises(RuntimeError) as error:
        ensure_env("bentoml", tmp_path)
    log = tmp_path / "peers" / "bentoml" / "install.log"
    assert f"exited with 1; log: {log}\n" in str(error.value)
    assert str(error.value).endswith("ERROR: No matching distribution found for bentoml")
    assert not (tmp_path / "peers" / "bentoml" / "venv" / STAMP).exists()
