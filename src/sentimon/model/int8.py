"""The int8 recipe: how an exported fp32 graph becomes the int8 graph the API serves.

Recipe 5 quantizes the input of every MatMul by a weight per token (each row its own scale)
and multiplies it by int8 weights per output channel in ONNX Runtime's int8 GEMM; the
attention scores and their weighted sum (activation by activation), the classifier head (a
Gemm on one row per text, a negligible share) and the embeddings stay fp32. So the texts a
text is batched with no longer set its int8 scales (only the order of fp32 sums still moves
with the call's shape: probabilities alone and in a packed call of 64 differ by at most
0.006, against 0.14 with dynamic scales). That matters most when a call packs many texts
into the same rows (`sentimon.model.packing`): dynamic
quantization (one activation scale per tensor, over the whole call), as recipe 4 kept for all
but the FFN down projections, moved packed calls' accuracy by -0.5 point on average and up
to -1.1 in the worst of 20 arrival orders on the bundled model's held-out tweets; recipe 5
moves it by -0.4 in every order (`sentimon.model.build.int8_trade_off`).

Every int8 product here is uint8 activations times int8 weights, and on CPUs without VNNI
ONNX Runtime's kernel adds pairs of those products in saturating 16-bit lanes
(`sentimon.model.cpu`): with 8-bit weights it clips, silently. Recipe 5 stores weights in 7
bits (at most 64 in magnitude), which no pair overflows, so the same graph computes the same
integers on every CPU and one cached file serves them all (recipe 4 needed a copy per CPU
class). On the bundled model's tweets 8-bit weights were no better (the trade-off table).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Set
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RECIPE_VERSION = "5"
Scope = Literal["all", "down_projections"]


@dataclass(frozen=True, slots=True)
class Int8Recipe:
    id: str
    """The cache key's part: `5`; earlier recipes are kept to measure against."""
    weight_max: int
    """Largest weight integer: 127 (8 bits), or 64 (7 bits: 255 x 64 x 2 < 2^15)."""
    per_token: Scope
    """Which MatMuls by a weight take per-token activations: `all`, or only the FFN down
    projections (the rest dynamic int8, one activation scale per call)."""
    description: str

    @property
    def weight_bits(self) -> int:
        return 8 if self.weight_max == 127 else 7

    @property
    def cache_key(self) -> str:
        return f"int8-{self.id}"


RECIPE = Int8Recipe(
    RECIPE_VERSION,
    64,
    "all",
    "every encoder MatMul by a weight: int8 activations scaled per token, 7-bit (at most 64 in "
    "magnitude) weights per channel; attention scores, the classifier head and embeddings "
    "stay fp32",
)
"""What the server serves, on every CPU."""

_RECIPE_4 = (
    "FFN down projections: int8 activations scaled per token, {w} weights per channel; "
    "every other MatMul: dynamic int8 with per-channel {w} weights; embeddings stay fp32"
)
RECIPE_4 = Int8Recipe("4", 127, "down_projections", _RECIPE_4.format(w="int8"))
"""The recipe before 5 on VNNI CPUs (8-bit weights clip on others), measured against."""
RECIPE_4_W7 = Int8Recipe(
    "4-w7", 64, "down_projections", _RECIPE_4.format(w="7-bit (at most 64 in magnitude)")
)
"""The recipe before 5 on CPUs without VNNI, measured against."""


def quantize_int8(fp32: Path, int8: Path, recipe: Int8Recipe) -> None:
    """Write `int8` from the exported `fp32` graph by `recipe` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe.weight_max not in _DYNAMIC_RANGES:
        raise ValueError(f"weight_max must be 127 or 64, not {recipe.weight_max}")
    model = onnx.load(str(fp32))
    if recipe.per_token == "all":
        quantize_per_token(model, set(weight_products(model)), recipe.weight_max)
        with tempfile.TemporaryDirectory(dir=int8.parent) as tmp:
            staging = Path(tmp) / int8.name
            onnx.save(model, str(staging))
            os.replace(staging, int8)
        return
    quantize_per_token(model, down_projections(model), recipe.weight_max)
    with tempfile.TemporaryDirectory(dir=int8.parent) as tmp:
        half = Path(tmp) / "per_token.onnx"
        onnx.save(model, str(half))
        staging = Path(tmp) / int8.name
        # The per-token projections are no longer MatMuls, so this quantizes only the others.
        # Shape inference cannot type the outputs of ONNX Runtime's own ops; they are float.
        with _without_quantizer_advice():
            quantize_dynamic(
                str(half),
                str(staging),
                per_channel=True,
                reduce_range=_DYNAMIC_RANGES[recipe.weight_max],
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        os.replace(staging, int8)


# weight_max -> quantize_dynamic's reduce_range: its reduced range is symmetric int8 in
# [-64, 64], the full one [-127, 127].
_DYNAMIC_RANGES = {127: False, 64: True}

_ADVICE = ("Please consider to run pre-processing", "Please check if the model is already")


@contextmanager
def _without_quantizer_advice() -> Iterator[None]:
    """Drop the two warnings quantize_dynamic always logs on the root logger for this graph
    (run shape pre-processing; the graph may be quantized already: its per-token part is);
    neither applies, and at 3 a.m. a warning in the start-up log should mean something."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVICE)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def weight_products(model: Any) -> dict[str, tuple[int, int]]:
    """MatMuls by a constant 2-D weight, with the weight's shape."""
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    found: dict[str, tuple[int, int]] = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2:
            continue
        dims = weights.get(node.input[1])
        if dims is not None and len(dims) == 2:
            found[node.name] = (int(dims[0]), int(dims[1]))
    return found


def down_projections(model: Any) -> set[str]:
    """MatMuls by a weight with more rows than columns: the FFN output projections."""
    return {name for name, (k, n) in weight_products(model).items() if k > n}


def quantize_per_token(model: Any, names: Set[str], weight_max: int = 127) -> None:
    """Replace each MatMul in `names` (input [..., K] by a constant weight [K, N]) in place by
    int8 arithmetic with one activation scale per row, so no row depends on another:

        x = input as [M, K];  s = max(|x|, per row) / 127;  q = round(x / s) + 128 (uint8)
        y = (q - 128) @ w8 * w_scale * s
        w8 = round(w / w_scale) in [-weight_max, weight_max], w_scale = max(|w|, per column)
             / weight_max

    The quantize step is a per-axis QuantizeLinear and the product ONNX Runtime's
    MatMulIntegerToFloat (its u8 x s8 GEMM), so the whole is a handful of kernels."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}

    def constant(name: str, value: Any) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    eps = constant("per_token/eps", np.float32(1e-8))
    inv127 = constant("per_token/inv127", np.float32(1 / 127))
    one = constant("per_token/one", np.float32(1.0))
    zero_point = constant("per_token/zero_point", np.uint8(128))
    first = constant("per_token/first", np.array([0], np.int64))
    last = constant("per_token/last", np.array([-1], np.int64))
    nodes = []
    for node in graph.node:
        if node.name not in names:
            nodes.append(node)
            continue
        x, weight_name = node.input
        w = numpy_helper.to_array(weights[weight_name]).astype(np.float32)
        k, n = w.shape
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / weight_max).astype(np.float32)
        p = f"{node.name}_per_token"
        w8 = np.clip(np.round(w / w_scale), -weight_max, weight_max).astype(np.int8)
        w8_name = constant(f"{p}/w8", w8)
        w_scale_name = constant(f"{p}/w_scale", w_scale)
        rows = constant(f"{p}/rows", np.array([-1, k], np.int64))
        columns = constant(f"{p}/columns", np.array([n], np.int64))

        def add(op: str, inputs: list[str], output: str, **kwargs: Any) -> str:
            nodes.append(helper.make_node(op, inputs, [output], name=output, **kwargs))
            return output

        x2 = add("Reshape", [x, rows], f"{p}/x")
        absolute = add("Abs", [x2], f"{p}/abs")
        peak = add("ReduceMax", [absolute], f"{p}/max", axes=[1], keepdims=0)
        scale = add("Mul", [add("Max", [peak, eps], f"{p}/max_eps"), inv127], f"{p}/scale")
        zero_points = add("Expand", [zero_point, add("Shape", [scale], f"{p}/m")], f"{p}/zp")
        q = add("QuantizeLinear", [x2, scale, zero_points], f"{p}/q", axis=0)
        y = add(
            "MatMulIntegerToFloat",
            [q, w8_name, one, w_scale_name, zero_point],
            f"{p}/y",
            domain="com.microsoft",
        )
        scaled = add("Mul", [y, add("Unsqueeze", [scale, last], f"{p}/scale_col")], f"{p}/ys")
        lead = add("Slice", [add("Shape", [x], f"{p}/shape"), first, last], f"{p}/lead")
        shape = add("Concat", [lead, columns], f"{p}/out_shape", axis=0)
        nodes.append(
            helper.make_node("Reshape", [scaled, shape], [node.output[0]], name=f"{p}/output")
        )
    del graph.node[:]
    graph.node.extend(nodes)
    # The fp32 weights replaced: kept, they would double the file and ONNX Runtime would warn
    # about each one at every start.
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
