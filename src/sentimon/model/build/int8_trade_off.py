"""What each int8 option measured on the bundled model, per CPU class, for the model card.

Labels: the 840 held-out tweets, in batches of 64 in stored order, and batched as the server
does (20 random arrival orders, batches of 8 to 32 texts sorted and cut by length: the mean
share with the fp32 label). Speed: texts/s on a RoBERTa-base-shaped model, batch 32 x 32
tokens, 2 threads, relative to the table's first row. Each table was measured on one CPU;
`python -m bench.int8_recipes` measures the options again on the machine it runs on (the VNNI
table predates it: its rows come from studies on that CPU).
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
    cpu_class: str
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

TRADE_OFFS = {t.cpu_class: t for t in (VNNI, NO_VNNI)}
