"""How well a served model keeps fp32's answers: scores, agreement, and the int8 card section.

The int8 recipe computes the same integers on every CPU (`sentimon.model.int8.RECIPE`), so
the card keeps one set of figures, with the CPU they were measured on.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sentimon.batching.batcher import BatchLimits, call_planner
from sentimon.model.base import Prediction, SentimentModel, to_prediction
from sentimon.model.build.dataset import Example
from sentimon.model.build.evaluate import Scores, score
from sentimon.model.build.int8_trade_off import TRADE_OFFS
from sentimon.model.cpu import describe_cpu, read_cpuinfo
from sentimon.model.labels import SENTIMENT_LABELS
from sentimon.model.onnx_backend import OnnxModel


def evaluate(
    model: SentimentModel, examples: Sequence[Example], batch_size: int = 64
) -> tuple[Scores, list[Prediction]]:
    """Score the served model (the same code path as the API) on `examples`."""
    predictions: list[Prediction] = []
    for start in range(0, len(examples), batch_size):
        predictions.extend(model.predict([e.text for e in examples[start : start + batch_size]]))
    labels = model.info.labels
    predicted = [labels.index(p.label) for p in predictions]
    truth = [labels.index(SENTIMENT_LABELS[e.label]) for e in examples]
    return score(labels, truth, predicted), predictions


def same_label_share(ours: Sequence[Prediction], theirs: Sequence[Prediction]) -> float:
    return sum(a.label == b.label for a, b in zip(ours, theirs, strict=True)) / len(ours)


def evaluate_served(
    model: SentimentModel,
    examples: Sequence[Example],
    fp32_predictions: Sequence[Prediction],
    orders: int = 20,
    seed: int = 1,
) -> dict[str, Any]:
    """Agreement with fp32 and accuracy change when `examples` reach the model as the server
    batches them: each of `orders` random arrival orders is cut into batches of 8, 16 or 32
    texts, and each batch into model calls as the batcher cuts it (packed calls of a few
    texts, or padded
    calls sorted by length)."""
    rng = random.Random(seed)
    limits = BatchLimits()
    n = len(examples)
    labels = model.info.labels
    truth = [SENTIMENT_LABELS[e.label] for e in examples]
    fp32_correct = sum(p.label == t for p, t in zip(fp32_predictions, truth, strict=True))
    ids = model.tokenize([e.text for e in examples])
    plan = call_planner(model.info)
    same: list[float] = []
    change: list[float] = []
    for _ in range(orders):
        order = list(range(n))
        rng.shuffle(order)
        size = rng.choice((8, 16, 32))
        predicted: dict[int, str] = {}
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            lengths = [len(ids[i]) for i in batch]
            for call in plan(lengths, limits):
                rows = [batch[i] for i in call]
                for i, probs in zip(rows, model.infer([ids[i] for i in rows]), strict=True):
                    predicted[i] = to_prediction(labels, probs, len(ids[i])).label
        same.append(sum(predicted[i] == p.label for i, p in enumerate(fp32_predictions)) / n)
        correct = sum(predicted[i] == t for i, t in enumerate(truth))
        change.append((correct - fp32_correct) / n)
    return {
        "orders": orders,
        "same_label_mean": sum(same) / orders,
        "same_label_min": min(same),
        "accuracy_change_mean": sum(change) / orders,
        "accuracy_change_worst": min(change),
    }


def evaluate_int8(
    model_dir: Path,
    examples: Sequence[Example],
    fp32_predictions: Sequence[Prediction],
    max_tokens: int,
) -> dict[str, Any]:
    """The int8 backend as it serves on this CPU (packed where the model packs): the card's
    figures."""
    with tempfile.TemporaryDirectory() as tmp:
        model = OnnxModel.load(
            str(model_dir), precision="int8", cache_dir=Path(tmp), max_tokens=max_tokens
        )
        scores, predictions = evaluate(model, examples)
        served = evaluate_served(model, examples, fp32_predictions)
    int8 = model.info.int8
    if int8 is None:
        raise RuntimeError("the int8 backend reported no int8 recipe")
    return {
        "recipe_version": int8.recipe,
        "weight_bits": int8.weight_bits,
        "recipe": int8.description,
        "measured_on": describe_cpu(read_cpuinfo()) or f"a CPU with int8 kernel {int8.kernel}",
        "int8_kernel": int8.kernel,
        "packed": model.info.packed,
        "test": scores.as_dict(),
        "same_label_as_fp32": same_label_share(predictions, fp32_predictions),
        "served": served,
    }


def int8_section(figures: dict[str, Any]) -> dict[str, Any]:
    """The card's int8 section: the served recipe's figures and what each option measured."""
    return {
        "backend": "onnx-int8",
        "measured": figures,
        "trade_off": {name: asdict(t) for name, t in TRADE_OFFS.items()},
    }
