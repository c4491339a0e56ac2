"""Sequence packing: texts go into rows whole and once, each with its own positions, and the
packed graph gives the padded model's logits for BERT and RoBERTa layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentimon.model.onnx_export import export_packed
from sentimon.model.packing import (
    pack,
    packed_tokens,
    plan_rows,
    position_offset,
    supports_packing,
)


def test_rows_hold_every_text_once_and_fill_evenly() -> None:
    assert plan_rows([30, 30, 30, 30], 64) == [[0, 2], [1, 3]]
    lengths = [5, 40, 12, 33, 20, 9, 17, 28, 3, 50]
    rows = plan_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert len(rows) == 4  # 217 tokens need ceil(217 / 64) rows
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)


def test_a_text_longer_than_a_row_gets_a_row_as_long_as_itself() -> None:
    assert plan_rows([100, 10, 10], 64) == [[0], [1, 2]]
    assert plan_rows([], 64) == []


def test_pack_restarts_positions_and_points_at_each_texts_first_token() -> None:
    ids = [[101, 7, 8, 102], [101, 9, 102], [101, 5, 6, 4, 102]]
    packed = pack(ids, pad_id=0, offset=2, row_tokens=8)
    assert packed.input_ids.shape == (2, 7)
    flat = packed.input_ids.reshape(-1)
    for i, row in enumerate(ids):
        start = int(packed.firsts[i])
        assert flat[start : start + len(row)].tolist() == row
        assert packed.position_ids.reshape(-1)[start : start + len(row)].tolist() == list(
            range(2, 2 + len(row))
        )
    assert packed.segments.tolist() == [[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 2, 2, 2]]
    assert packed.input_ids[0, 5:].tolist() == [0, 0]
    assert packed.tokens == 14 == packed_tokens([4, 3, 5], 8)


def test_the_default_rows_hold_a_batch_of_tweets_in_few_calls_worth_of_padding() -> None:
    lengths = [12, 30, 25, 8, 40, 17, 22, 19]  # 173 tokens
    assert packed_tokens(lengths) == 3 * 59  # three rows, the fullest 59 tokens: 2% padding
    assert packed_tokens([]) == 0


def _tiny(kind: str) -> Any:
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    shape: dict[str, Any] = {
        "vocab_size": 60,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "num_labels": 3,
        "attn_implementation": "eager",
    }
    torch.manual_seed(0)
    model: Any
    if kind == "bert":
        model = BertForSequenceClassification(BertConfig(**shape, pad_token_id=0))
    else:
        config = RobertaConfig(
            **shape, pad_token_id=1, max_position_embeddings=80, type_vocab_size=1
        )
        model = RobertaForSequenceClassification(config)
    return model.eval()


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_the_packed_graph_gives_the_padded_models_logits(kind: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    classifier = _tiny(kind)
    pad_id = int(classifier.config.pad_token_id)
    rng = np.random.default_rng(1)
    ids = [[int(t) for t in rng.integers(3, 60, n)] for n in (5, 17, 9, 30, 3, 22, 11)]
    input_ids = np.full((len(ids), 30), pad_id, dtype=np.int64)
    mask = np.zeros_like(input_ids)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)], mask[i, : len(row)] = row, 1
    with torch.no_grad():  # before the export, which traces this module
        expected = classifier(torch.from_numpy(input_ids), torch.from_numpy(mask)).logits.numpy()
    offset = position_offset(classifier.config)
    assert offset == (0 if kind == "bert" else 2)
    assert supports_packing(classifier.config)
    path = tmp_path / "packed.onnx"
    export_packed(classifier, pack(ids[:3], pad_id, offset), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    packed = pack(ids, pad_id, offset, row_tokens=40)
    assert packed.input_ids.shape[0] == 3  # several texts share each row
    logits, embeddings = session.run(None, packed.feeds())
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert embeddings.shape == (len(ids), 32)


def test_other_model_types_are_served_padded(tmp_path: Path) -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=60, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    assert not supports_packing(config)
    classifier = DistilBertForSequenceClassification(config).eval()  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match="^no packed layout for model type 'distilbert'$"):
        export_packed(classifier, pack([[1, 2, 3]], 0, 0), tmp_path / "packed.onnx")
