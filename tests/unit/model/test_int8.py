"""The per-token int8 rewrite: what it computes, and that no row depends on another."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentimon.model.int8 import down_projections, quantize_per_token

K, N = 64, 16


def graph(weight: np.ndarray, lead: tuple[str, ...] = ("b", "s")) -> Any:
    """x [*lead, K] @ w [K, N] ("down"), then y @ up [N, K], which widens again ("up")."""
    up = np.ones((N, K), np.float32)
    return helper.make_model(
        helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "w"], ["y"], name="down"),
                helper.make_node("MatMul", ["y", "up"], ["z"], name="up"),
            ],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*lead, K])],
            [
                helper.make_tensor_value_info("y", TensorProto.FLOAT, [*lead, N]),
                helper.make_tensor_value_info("z", TensorProto.FLOAT, [*lead, K]),
            ],
            [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(up, "up")],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )


def run(model: Any, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(["y"], {"x": x})
    return np.asarray(y)


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The arithmetic the rewrite promises, in numpy."""
    w_scale = np.abs(w).max(axis=0) / 127
    w8 = np.round(w / w_scale)
    rows = x.reshape(-1, K)
    scale = np.maximum(np.abs(rows).max(axis=1), 1e-8) / 127
    q = np.round(rows / scale[:, None])
    y: np.ndarray = ((q @ w8) * w_scale * scale[:, None]).reshape(*x.shape[:-1], N)
    return y


def test_only_projections_to_a_narrower_width_are_picked() -> None:
    weight = np.zeros((K, N), np.float32)
    assert down_projections(graph(weight)) == {"down"}


def test_per_token_int8_computes_the_promised_arithmetic() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(K, N)).astype(np.float32)
    x = rng.normal(size=(3, 5, K)).astype(np.float32)
    x[1, 2] *= 50  # one loud token
    x[2, 4] = 0  # and a silent one
    model = graph(w)
    exact = run(model, x)
    quantize_per_token(model, {"down"})
    assert [n.op_type for n in model.graph.node].count("MatMul") == 1
    assert "MatMulIntegerToFloat" in {n.op_type for n in model.graph.node}
    y = run(model, x)
    np.testing.assert_allclose(y, reference(x, w), rtol=1e-4, atol=1e-4)
    # int8 of both sides: within about 2% of the fp32 product, the loud token included
    assert np.abs(y - exact).max() <= 0.02 * np.abs(exact).max()
    np.testing.assert_array_equal(y[2, 4], np.zeros(N, np.float32))


def test_a_row_does_not_depend_on_its_batch() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(K, N)).astype(np.float32)
    model = graph(w)
    quantize_per_token(model, {"down"})
    alone = rng.normal(size=(1, 7, K)).astype(np.float32)
    loud = 100 * rng.normal(size=(4, 7, K)).astype(np.float32)
    batched = np.concatenate([alone, loud])
    np.testing.assert_array_equal(run(model, batched)[:1], run(model, alone))


@pytest.mark.parametrize("shape", [(2, K), (2, 3, 4, K)])
def test_any_leading_shape_is_kept(shape: tuple[int, ...]) -> None:
    model = graph(np.eye(K, N, dtype=np.float32), tuple(f"d{i}" for i in shape[:-1]))
    quantize_per_token(model, {"down"})
    onnx.checker.check_model(model)
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    assert run(model, x).shape == (*shape[:-1], N)
