"""The int8 recipes: what each computes on this CPU, that the served one (5) never clips, and
that no row depends on another in the per-token part (all of recipe 5).

Every check of the arithmetic compares ONNX Runtime's output with an exact numpy reference of
the same integers, so the tests hold on any CPU: recipe 5's 7-bit weights must be exact on
every int8 kernel, and recipe 4's 8-bit weights (measured against) exact only with VNNI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sentimon.model.cpu import detect_int8
from sentimon.model.int8 import (
    RECIPE,
    RECIPE_4,
    RECIPE_4_W7,
    Int8Recipe,
    down_projections,
    quantize_int8,
    quantize_per_token,
    weight_products,
)

K, N = 64, 16
HERE = detect_int8()


def graph(
    weight: np.ndarray, up: np.ndarray | None = None, lead: tuple[str, ...] = ("b", "s")
) -> Any:
    """x [*lead, K] @ w [K, N] ("down"), then y @ up [N, K], which widens again ("up")."""
    up = np.ones((N, K), np.float32) if up is None else up
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


def run(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    y, z = session.run(["y", "z"], {"x": x})
    return np.asarray(y), np.asarray(z)


def per_token_reference(x: np.ndarray, w: np.ndarray, weight_max: int) -> np.ndarray:
    """The per-token arithmetic the recipe promises, in float64 with exact integer products."""
    w_scale = np.abs(w).max(axis=0).astype(np.float32) / np.float32(weight_max)
    w8 = np.clip(np.round(w / w_scale), -weight_max, weight_max)
    rows = x.reshape(-1, w.shape[0]).astype(np.float32)
    scale = np.maximum(np.abs(rows).max(axis=1), np.float32(1e-8)) * np.float32(1 / 127)
    q = np.clip(np.round(rows / scale[:, None]), -127, 127)
    y: np.ndarray = (q @ w8) * w_scale * scale[:, None]
    return y.reshape(*x.shape[:-1], w.shape[1])


def dynamic_reference(x: np.ndarray, w: np.ndarray, weight_max: int) -> np.ndarray:
    """ONNX Runtime's dynamic int8 MatMul as the recipe configures it: activations uint8 over
    [min(x, 0), max(x, 0)] per call, weights symmetric per column in [-weight_max, weight_max]."""
    rows = x.reshape(-1, w.shape[0]).astype(np.float32)
    low, high = min(rows.min(), 0.0), max(rows.max(), 0.0)
    scale = np.float32((high - low) / 255)
    zero = np.clip(np.round(-low / scale), 0, 255)
    q = np.clip(np.round(rows / scale) + zero, 0, 255)
    w_scale = np.abs(w).max(axis=0) / weight_max
    w8 = np.clip(np.round(w / w_scale), -weight_max, weight_max)
    z: np.ndarray = ((q - zero) @ w8) * w_scale * scale
    return z.reshape(*x.shape[:-1], w.shape[1])


def is_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 2e-5) -> bool:
    """Equal up to float32 rounding of the scales (relative to each output's largest value)."""
    return bool(np.allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max()))


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 2e-5) -> None:
    worst = np.abs(actual - expected).max() / np.abs(expected).max()
    assert is_close(actual, expected, rtol), f"off by up to {worst:.2e} of the largest output"


def recipe_graph(recipe: Int8Recipe, w: np.ndarray, up: np.ndarray, tmp: Path) -> bytes:
    """The two-MatMul graph through the whole recipe: "down" per token, "up" per token too
    (recipe 5) or dynamic (recipe 4)."""
    onnx.save(graph(w, up), str(tmp / "fp32.onnx"))
    quantize_int8(tmp / "fp32.onnx", tmp / "int8.onnx", recipe)
    return (tmp / "int8.onnx").read_bytes()


def loud(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs that drive 8-bit products to the 16-bit limit: every entry near the row's
    maximum and of one sign, so uint8 codes sit at 255 and pairs of products add up."""
    return (rng.uniform(0.9, 1.0, size=shape) * 5).astype(np.float32)


def test_recipe_4_picks_only_projections_to_a_narrower_width_and_recipe_5_every_weight() -> None:
    weight = np.zeros((K, N), np.float32)
    assert down_projections(graph(weight)) == {"down"}
    assert weight_products(graph(weight)) == {"down": (K, N), "up": (N, K)}


def test_one_recipe_serves_every_cpu_in_one_cached_file() -> None:
    assert (RECIPE.id, RECIPE.weight_bits, RECIPE.per_token) == ("5", 7, "all")
    assert RECIPE.cache_key == "int8-5"
    assert (RECIPE_4.weight_bits, RECIPE_4_W7.weight_bits) == (8, 7)


@pytest.mark.parametrize("inputs", ["normal", "loud"])
@pytest.mark.parametrize("recipe", [RECIPE, RECIPE_4_W7], ids=lambda r: r.id)
def test_seven_bit_recipes_compute_their_promised_arithmetic_on_any_cpu(
    recipe: Int8Recipe, inputs: str, tmp_path: Path
) -> None:
    """Recipe 5: both products per token; recipe 4-w7: the second one dynamic."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(K, N)).astype(np.float32)
    up = rng.normal(size=(N, K)).astype(np.float32)
    if inputs == "loud":
        w, up = np.abs(w) + 1, np.abs(up) + 1
        x = loud(rng, (3, 5, K))
    else:
        x = rng.normal(size=(3, 5, K)).astype(np.float32)
        x[1, 2] *= 50  # one loud token
        x[2, 4] = 0  # and a silent one
    y, z = run(recipe_graph(recipe, w, up, tmp_path), x)
    assert_close(y, per_token_reference(x, w, 64), rtol=2e-5)
    # The second product is checked on the first one's actual output, its real input.
    second = per_token_reference if recipe.per_token == "all" else dynamic_reference
    assert_close(z, second(y, up, 64), rtol=2e-5)
    if inputs == "normal":
        exact = x @ w
        assert np.abs(y - exact).max() <= 0.03 * np.abs(exact).max()
        np.testing.assert_array_equal(y[2, 4], np.zeros(N, np.float32))


def test_seven_bit_weights_are_exact_on_every_cpu(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w, up = np.abs(rng.normal(size=(K, N))) + 1, np.abs(rng.normal(size=(N, K))) + 1
    w, up = w.astype(np.float32), up.astype(np.float32)
    x = loud(rng, (4, 6, K))
    y, z = run(recipe_graph(RECIPE_4_W7, w, up, tmp_path), x)
    assert_close(y, per_token_reference(x, w, 64), rtol=2e-5)
    assert_close(z, dynamic_reference(y, up, 64), rtol=2e-5)
    y, z = run(recipe_graph(RECIPE, w, up, tmp_path), x)
    assert_close(z, per_token_reference(y, up, 64), rtol=2e-5)


@pytest.mark.skipif(
    HERE.kernel not in {"avx2", "avx512", "avx512-vnni", "avx-vnni", "amx"},
    reason=f"int8 kernel {HERE.kernel}: not known whether 8-bit weights clip",
)
def test_eight_bit_weights_clip_exactly_where_the_cpu_class_says(tmp_path: Path) -> None:
    """The classification is checked against the hardware: loud inputs through 8-bit weights
    come out exact on a VNNI CPU and clipped on one without."""
    rng = np.random.default_rng(4)
    w, up = np.abs(rng.normal(size=(K, N))) + 1, np.abs(rng.normal(size=(N, K))) + 1
    w, up = w.astype(np.float32), up.astype(np.float32)
    x = loud(rng, (4, 6, K))
    y, z = run(recipe_graph(RECIPE_4, w, up, tmp_path), x)
    per_token_exact = is_close(y, per_token_reference(x, w, 127), rtol=2e-5)
    dynamic_exact = is_close(z, dynamic_reference(y, up, 127), rtol=2e-5)
    assert (per_token_exact, dynamic_exact) == (HERE.exact_u8s8, HERE.exact_u8s8), HERE


def test_under_recipe_5_a_row_does_not_depend_on_its_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(K, N)).astype(np.float32)
    up = rng.normal(size=(N, K)).astype(np.float32)
    model = recipe_graph(RECIPE, w, up, tmp_path)
    alone = rng.normal(size=(1, 7, K)).astype(np.float32)
    louder = 100 * rng.normal(size=(4, 7, K)).astype(np.float32)
    batched = run(model, np.concatenate([alone, louder]))
    single = run(model, alone)
    np.testing.assert_array_equal(batched[0][:1], single[0])
    np.testing.assert_array_equal(batched[1][:1], single[1])


@pytest.mark.parametrize("shape", [(2, K), (2, 3, 4, K)])
def test_any_leading_shape_is_kept(shape: tuple[int, ...]) -> None:
    model = graph(np.eye(K, N, dtype=np.float32), lead=tuple(f"d{i}" for i in shape[:-1]))
    quantize_per_token(model, {"down"}, RECIPE.weight_max)
    onnx.checker.check_model(model)
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    assert run(model, x)[0].shape == (*shape[:-1], N)


def test_weights_stay_within_the_recipes_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    w, up = rng.normal(size=(K, N)).astype(np.float32), rng.normal(size=(N, K)).astype(np.float32)
    for recipe in (RECIPE, RECIPE_4, RECIPE_4_W7):
        model = onnx.load_from_string(recipe_graph(recipe, w, up, tmp_path))
        int8 = [
            numpy_helper.to_array(t)
            for t in model.graph.initializer
            if t.data_type == TensorProto.INT8 and len(t.dims) == 2
        ]
        assert len(int8) == 2  # both products' weights, per token or dynamic
        assert max(int(np.abs(a.astype(np.int16)).max()) for a in int8) == recipe.weight_max


def test_an_unsupported_weight_range_is_refused(tmp_path: Path) -> None:
    onnx.save(graph(np.eye(K, N, dtype=np.float32)), str(tmp_path / "fp32.onnx"))
    odd = Int8Recipe("x", 100, "all", "odd")
    with pytest.raises(ValueError, match="^weight_max must be 127 or 64, not 100$"):
        quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", odd)
