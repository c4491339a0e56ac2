"""The transformers backend on real architectures: tiny random RoBERTa and the bundled model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from sentimon.app import create_app
from sentimon.config import BUNDLED_MODEL_DIR, Settings
from sentimon.errors import ModelLoadError
from sentimon.model.loader import load_model
from sentimon.model.transformers_backend import TransformersModel
from tests.tiny_models import TINY_MAX_TOKENS

pytestmark = pytest.mark.slow


def test_roberta_generic_labels_become_sentiments(tiny_roberta: Path) -> None:
    model = TransformersModel.load(str(tiny_roberta))
    assert model.info.labels == ("negative", "neutral", "positive")
    assert model.info.backend == "transformers"
    assert model.info.name == tiny_roberta.name
    assert model.info.revision.startswith("local-")
    [p] = model.predict(["good morning"])
    assert set(p.probabilities) == {"negative", "neutral", "positive"}
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.score == max(p.probabilities.values())


def test_mentions_and_links_are_preprocessed(tiny_roberta: Path) -> None:
    model = TransformersModel.load(str(tiny_roberta))
    raw, clean = model.predict(
        ["@someone look https://example.com/x?y=1 now", "@user look http now"]
    )
    assert raw.probabilities == clean.probabilities
    assert raw.tokens == clean.tokens


def test_long_inputs_are_truncated_to_the_models_maximum(tiny_roberta: Path) -> None:
    model = TransformersModel.load(str(tiny_roberta), max_tokens=4096)
    assert model.info.max_tokens == TINY_MAX_TOKENS
    [p] = model.predict(["word " * 2000])
    assert p.tokens == TINY_MAX_TOKENS
    short = TransformersModel.load(str(tiny_roberta), max_tokens=16)
    assert short.predict(["word " * 2000])[0].tokens == 16


def test_batched_output_equals_single_output_in_fp32(tiny_roberta: Path) -> None:
    model = TransformersModel.load(str(tiny_roberta))
    texts = ["short", "a somewhat longer text with more tokens in it", "mid length one"]
    batched = model.predict(texts)
    for text, b in zip(texts, batched, strict=True):
        [single] = model.predict([text])
        assert single.label == b.label
        assert single.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_a_model_with_other_labels_is_served_with_its_own_labels(
    tiny_emotions: Path, registry: CollectorRegistry
) -> None:
    with TestClient(create_app(Settings(model=str(tiny_emotions)), registry=registry)) as client:
        info = client.get("/info").json()
        assert info["labels"] == ["anger", "joy", "optimism", "sadness"]
        body = client.post("/predict", json={"text": "what a day"}).json()
        assert body["label"] in info["labels"]
        assert set(body["probabilities"]) == set(info["labels"])
    assert (
        registry.get_sample_value(
            "sentiment_predictions_total", {"sentiment": "sadness", "endpoint": "/predict"}
        )
        is not None
    )


def test_a_missing_folder_names_the_setting() -> None:
    with pytest.raises(ModelLoadError, match=r"^SENTIMON_MODEL='/no/such/model': no such folder$"):
        load_model(Settings(model="/no/such/model"))


def test_an_unreachable_hub_model_fails_fast_offline() -> None:
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        load_model(Settings(model="cardiffnlp/twitter-roberta-base-sentiment-latest"))
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert message.startswith(
        "cannot load SENTIMON_MODEL='cardiffnlp/twitter-roberta-base-sentiment-latest': "
    )
    assert message.endswith(
        "(HF_HUB_OFFLINE=1: only models already in the Hugging Face cache load)"
    )


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"^cannot load SENTIMON_MODEL="):
        load_model(Settings(model=str(tmp_path)))


def test_the_bundled_model_on_onnx_int8_is_the_default_and_classifies_real_text(
    tmp_path: Path,
) -> None:
    model = load_model(Settings(cache_dir=tmp_path))
    assert model.info.backend == "onnx-int8"
    assert model.info.name == "sentimon-minilm-vader"
    assert model.info.source == str(BUNDLED_MODEL_DIR)
    assert model.info.revision.startswith("v1-")
    texts = [
        "I absolutely love this, best day ever!",
        "This is terrible, I hate it and want a refund.",
        "@someone the meeting is at 3pm in room 4 http://t.co/x",
    ]
    labels = [p.label for p in model.predict(texts)]
    assert labels[:2] == ["positive", "negative"]
