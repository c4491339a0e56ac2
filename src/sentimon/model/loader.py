"""Turn `SENTIMON_MODEL` into a loaded backend, or a ModelLoadError that says what to fix."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sentimon.config import BUNDLED_MODEL, Settings
from sentimon.errors import ModelLoadError
from sentimon.model.base import SentimentModel
from sentimon.model.workers import plan_inference

log = logging.getLogger(__name__)


def load_model(settings: Settings) -> SentimentModel:
    """Load the configured model with the configured backend."""
    source = settings.model_path_or_id
    path = Path(source).expanduser()
    looks_local = source.startswith((".", "/", "~")) or path.exists()
    if settings.model == BUNDLED_MODEL and not (path / "model.safetensors").is_file():
        raise ModelLoadError(
            f"the bundled model is missing from {path} (SENTIMON_MODEL=bundled); "
            "reinstall sentimon or run `sentimon model build`"
        )
    if looks_local and not path.is_dir():
        raise ModelLoadError(f"SENTIMON_MODEL={source!r}: no such folder")
    target = str(path) if path.is_dir() else source
    try:
        if settings.backend == "onnx":
            from sentimon.model.onnx_backend import OnnxModel

            return OnnxModel.load(
                target,
                revision=settings.model_revision,
                max_tokens=settings.max_tokens,
                precision=settings.onnx_precision,
                cache_dir=settings.cache_dir.expanduser(),
                threads=_threads_per_worker(settings),
                packing=settings.sequence_packing,
            )
        import torch

        from sentimon.model.transformers_backend import TransformersModel

        torch.set_num_threads(_threads_per_worker(settings))
        return TransformersModel.load(
            target, revision=settings.model_revision, max_tokens=settings.max_tokens
        )
    except Exception as exc:
        hint = ""
        if not path.is_dir() and os.environ.get("HF_HUB_OFFLINE") == "1":
            hint = " (HF_HUB_OFFLINE=1: only models already in the Hugging Face cache load)"
        elif not path.is_dir():
            hint = " (is the hub reachable, and is the id right?)"
        raise ModelLoadError(
            f"cannot load SENTIMON_MODEL={settings.model!r}: "
            f"{type(exc).__name__}: {_first_line(exc)}{hint}"
        ) from exc


def _threads_per_worker(settings: Settings) -> int:
    """Each inference worker's share of the threads (with `num_threads` 0, of the CPUs this
    process may use: a container's CPU limit, not the host's cores)."""
    plan = plan_inference(settings)
    log.info(
        "%d inference threads (%s): %d worker%s (%s) of %d",
        plan.threads,
        plan.source,
        plan.workers,
        "s" if plan.workers > 1 else "",
        "chosen for the CPUs" if plan.chosen else "SENTIMON_INFERENCE_WORKERS",
        plan.threads_per_worker,
        extra={
            "event": "threads",
            "threads": plan.threads,
            "source": plan.source,
            "workers": plan.workers,
        },
    )
    return plan.threads_per_worker


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else "no details"
