"""The int8 study: its uint8 option computes recipe 4's integers, and the card's table for a
CPU class is the committed output of the study run on such a CPU."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest

from bench.int8_recipes import as_uint8_weights
from sentimon.model.build.int8_trade_off import TRADE_OFFS
from sentimon.model.int8 import RECIPE_4
from tests.unit.model.test_int8 import (
    K,
    N,
    assert_close,
    dynamic_reference,
    loud,
    per_token_reference,
    recipe_graph,
    run,
)

RESULTS = Path(__file__).resolve().parents[3] / "bench" / "results"


def test_uint8_weights_compute_the_8_bit_recipes_integers_on_any_cpu(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    w, up = np.abs(rng.normal(size=(K, N))) + 1, np.abs(rng.normal(size=(N, K))) + 1
    w, up = w.astype(np.float32), up.astype(np.float32)
    model = onnx.load_from_string(recipe_graph(RECIPE_4, w, up, tmp_path))
    as_uint8_weights(model)
    onnx.checker.check_model(model)
    x = loud(rng, (4, 6, K))
    y, z = run(model, x)
    assert_close(y, per_token_reference(x, w, 127))
    assert_close(z, dynamic_reference(y, up, 127))


def test_only_int8_weights_are_shifted(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    w, up = rng.normal(size=(K, N)).astype(np.float32), rng.normal(size=(N, K)).astype(np.float32)
    model = onnx.load_from_string(recipe_graph(RECIPE_4, w, up, tmp_path))
    as_uint8_weights(model)
    with pytest.raises(ValueError, match="is uint8, not int8$"):
        as_uint8_weights(model)


@pytest.mark.parametrize("path", sorted(RESULTS.glob("int8-recipes-*.json")), ids=lambda p: p.name)
def test_the_cards_table_is_the_studys_committed_output(path: Path) -> None:
    """Every committed study is the card's table for its CPU class. (The VNNI table was
    measured before this script existed; a run on a VNNI CPU replaces it.)"""
    study = json.loads(path.read_text())
    table = TRADE_OFFS[study["cpu_class"]]
    assert study["measured_on"] == table.measured_on
    assert study["rows"] == [asdict(row) for row in table.rows]


def test_the_cards_packed_table_is_the_packing_studys_committed_output() -> None:
    study = json.loads((RESULTS / "packing.json").read_text())
    table = TRADE_OFFS["packed"]
    assert study["machine"]["cpu"] == table.measured_on
    [roberta] = [m for m in study["models"] if m["model"] == "roberta-base"]
    [speeds] = [b["tokens_per_s"] for b in roberta["batches"] if b["texts"] == 16]
    first = next(iter(speeds.values()))
    assert [row.recipe for row in table.rows] == list(study["labels"])
    for row in table.rows:
        labels = study["labels"][row.recipe]
        assert (
            row.same_label_as_fp32,
            row.accuracy_change,
            row.served_same_label,
            row.served_accuracy_change,
        ) == (
            labels["same_label_as_fp32"],
            labels["accuracy_change"],
            labels["served_same_label"],
            labels["served_accuracy_change"],
        )
        speed = speeds.get(row.recipe)
        assert row.relative_speed == (None if speed is None else round(speed / first, 2))
    # The served option meets the fidelity bar in every arrival order measured.
    served = study["labels"]["recipe 5, packed calls (served)"]
    assert served["served_same_label_worst"] >= 0.98
    assert served["served_accuracy_change"] >= -0.005
    assert served["served_accuracy_change_worst"] >= -0.01
