"""What each int8 option measured on the bundled model, for the model card.

Labels: the 840 held-out tweets, in batches of 64 in stored order, and batched as the server
does (20 random arrival orders, batches of 8 to 32 texts: the mean share with the fp32 label
and the mean accuracy change). Each table was measured on one CPU. `PACKED` is why recipe 5
serves: the options on packed calls, from `make bench-packing` (bench/results/packing.json).
`VNNI` and `NO_VNNI` are how recipe 4 was chosen per CPU class before packing, on padded calls
(sorted and cut by length), speed as texts/s on a RoBERTa-base-shaped model, batch 32 x 32
tokens, 2 threads; `python -m bench.int8_recipes` measures those options again on the machine
it runs on (the VNNI table predates it: its rows come from studies on that CPU).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecipeResult:
    recipe: str
    same_label_as_fp32: float
    accuracy_change: float | None
    served_same_label: float | None
    served_accuracy_change: float | None
    relative_speed: float | None


@dataclass(frozen=True, slots=True)
class TradeOff:
    name: str
    """`packed`, or the CPU class recipe 4 was chosen for."""
    measured_on: str
    rows: tuple[RecipeResult, ...]


VNNI = TradeOff(
    "vnni",
    "AMD EPYC (family 25, model 17, AVX-512 VNNI)",
    (
        RecipeResult(
            "all MatMuls dynamic int8, per channel", 0.9845, -0.0036, 0.9812, -0.0070, 1.0
        ),
        RecipeResult(
            "FFN down projections per-token int8, the rest dynamic (recipe 4, used here)",
            0.9893,
            0.0,
            0.9870,
            -0.0013,
            1.06,
        ),
        RecipeResult(
            "recipe 3: FFN down projections MatMulNBits, the rest dynamic",
            0.9893,
            0.0012,
            0.9896,
            -0.0025,
            0.86,
        ),
        RecipeResult("recipe 2: attention output in fp32", 0.9857, -0.0024, 0.9802, -0.0061, 0.85),
        RecipeResult("attention and FFN outputs in fp32", 0.9893, 0.0048, 0.9905, -0.0024, 0.51),
        RecipeResult(
            "all MatMuls MatMulNBits (batch-independent)", 0.9952, -0.0024, 0.9952, -0.0024, 0.56
        ),
        RecipeResult("per-tensor, embeddings quantized too", 0.946, None, None, None, None),
        # Calibrated static quantization (batch-independent) on 256 training tweets, MinMax,
        # per channel, attention output in fp32: worse labels and slower than dynamic here.
        RecipeResult("static, calibrated (QOperator)", 0.938, -0.0048, None, None, 0.79),
        RecipeResult("fp32 (no quantization)", 1.0, 0.0, 1.0, 0.0, 0.33),
    ),
)

# bench/results/int8-recipes-no-vnni.json. Same kernel for 8 and 7 bits, so the same speed;
# the uint8 copy of recipe 4's integers is exact but runs the slower u8 x u8 kernels.
NO_VNNI = TradeOff(
    "no-vnni",
    "AMD EPYC (family 25, model 1, AVX2, no VNNI)",
    (
        RecipeResult(
            "8-bit weights (recipe 4, clipped by 16-bit pair sums here)",
            0.9821,
            0.0,
            0.9861,
            -0.0015,
            1.0,
        ),
        RecipeResult("7-bit weights (recipe 4-w7)", 0.9917, -0.0036, 0.9887, -0.0036, 0.98),
        RecipeResult(
            "8-bit weights stored as uint8 (recipe 4's integers, u8 x u8 kernels)",
            0.9893,
            0.0,
            0.9871,
            -0.0013,
            0.83,
        ),
        RecipeResult("fp32 (no quantization)", 1.0, 0.0, 1.0, 0.0, 0.65),
    ),
)

# bench/results/packing.json: labels on the bundled model; speed in useful tokens/s on the
# RoBERTa-base-shaped model, one thread, batches of 16 tweets as the server forms them,
# relative to the first row (recipe 4 as it served before, on padded calls). The options
# timed are the served ones and what they replace; the others run the same kernels.
PACKED = TradeOff(
    "packed",
    "AMD EPYC (family 26, model 2, AVX-512 VNNI)",
    (
        RecipeResult(
            "recipe 4, padded calls (served before)",
            0.9893,
            0.0,
            0.987,
            -0.0013,
            1.0,
        ),
        RecipeResult(
            "recipe 4, packed calls",
            0.9821,
            -0.0071,
            0.9856,
            -0.0052,
            1.14,
        ),
        RecipeResult(
            "recipe 4-w7, packed calls",
            0.9893,
            -0.0012,
            0.9872,
            -0.0057,
            None,
        ),
        RecipeResult(
            "every MatMul per token, 8-bit weights, packed calls",
            0.9893,
            -0.0048,
            0.9893,
            -0.0048,
            None,
        ),
        RecipeResult(
            "recipe 5, packed calls (served)",
            0.9905,
            -0.0036,
            0.9905,
            -0.0036,
            1.07,
        ),
        RecipeResult(
            "recipe 5, padded calls",
            0.9905,
            -0.0036,
            0.9905,
            -0.0036,
            0.95,
        ),
    ),
)

TRADE_OFFS = {t.name: t for t in (PACKED, VNNI, NO_VNNI)}
