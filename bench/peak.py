"""The machine's matrix-multiply peak, measured in the same run as the load tests.

Useful tokens/s only means something next to what the cores can do at best: large square
int8 and fp32 products through PyTorch (`torch._int_mm`, `torch.mm`) and ONNX Runtime
(MatMulInteger, MatMul), best of a few repeats each; the peak of a precision is the best
engine's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SIZE = 2048


@dataclass(frozen=True, slots=True)
class Peaks:
    threads: int
    gops: dict[str, float]
    """Ops per second / 1e9, by `<precision>/<engine>` (int8/torch, fp32/onnxruntime, ...)."""

    def best(self, precision: str) -> float:
        return max(v for k, v in self.gops.items() if k.startswith(f"{precision}/"))


def measure_peaks(threads: int, size: int = SIZE, seconds: float = 1.5) -> Peaks:
    import torch

    torch.set_num_threads(threads)
    ops = 2.0 * size**3
    gen = torch.Generator().manual_seed(0)
    a8 = torch.randint(-128, 127, (size, size), dtype=torch.int8, generator=gen)
    b8 = torch.randint(-128, 127, (size, size), dtype=torch.int8, generator=gen)
    a32, b32 = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    gops = {
        "int8/torch": ops / _best_time(lambda: torch._int_mm(a8, b8), seconds) / 1e9,
        "fp32/torch": ops / _best_time(lambda: torch.mm(a32, b32), seconds) / 1e9,
    }
    for precision, run in _onnxruntime_matmuls(size, threads).items():
        gops[f"{precision}/onnxruntime"] = ops / _best_time(run, seconds) / 1e9
    return Peaks(threads, gops)


def _onnxruntime_matmuls(size: int, threads: int) -> dict[str, Callable[[], Any]]:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    runs: dict[str, Callable[[], Any]] = {}
    for precision, op, dtype, np_dtype in (
        ("int8", "MatMulInteger", TensorProto.UINT8, np.uint8),
        ("fp32", "MatMul", TensorProto.FLOAT, np.float32),
    ):
        out_type = TensorProto.INT32 if op == "MatMulInteger" else TensorProto.FLOAT
        b_type = TensorProto.INT8 if op == "MatMulInteger" else TensorProto.FLOAT
        b_np = np.int8 if op == "MatMulInteger" else np.float32
        graph = helper.make_graph(
            [helper.make_node(op, ["a", "b"], ["y"])],
            precision,
            [
                helper.make_tensor_value_info("a", dtype, [size, size]),
                helper.make_tensor_value_info("b", b_type, [size, size]),
            ],
            [helper.make_tensor_value_info("y", out_type, [size, size])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        if np_dtype is np.uint8:
            a = rng.integers(0, 255, (size, size)).astype(np_dtype)
            b = rng.integers(-128, 127, (size, size)).astype(b_np)
        else:
            a = rng.standard_normal((size, size)).astype(np_dtype)
            b = rng.standard_normal((size, size)).astype(b_np)
        feed = {"a": a, "b": b}
        runs[precision] = functools.partial(session.run, None, feed)
    return runs


def _best_time(run: Callable[[], Any], seconds: float) -> float:
    run()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best
