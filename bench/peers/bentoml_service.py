"""The BentoML peer: a transformers pipeline behind one batchable BentoML API.

Runs in the peer's own virtualenv (requirements-bentoml.txt), never in the benchmark's, as
`bentoml serve bentoml_service:Sentiment --working-dir bench/peers` with PEER_MODEL (a
save_pretrained folder) and PEER_THREADS set; `bench.peers.peer_spec("bentoml", ...)` builds
that command. BentoML's adaptive batching merges concurrent requests into one call of
`classify` (up to MAX_BATCH_SIZE texts), so a client sends `{"texts": [text]}` and gets back
`[[{"label": ..., "score": ...}, ...]]`. Like the tutorial baseline, the model runs in fp32
(the bundled model is stored in fp16) and returns every label's score (top_k=None).
"""

# mypy: ignore-errors
# (bentoml is installed only in the peer's virtualenv, not where mypy checks this file)

from __future__ import annotations

import os
from typing import Any

import bentoml
import torch
from transformers import pipeline

MODEL = os.environ["PEER_MODEL"]
THREADS = int(os.environ["PEER_THREADS"])
MAX_BATCH_SIZE = 32
MAX_LATENCY_MS = 10_000
"""Requests BentoML expects to miss this latency are refused (503) rather than queued."""


@bentoml.service(workers=1, threads=1, traffic={"timeout": 60})
class Sentiment:
    def __init__(self) -> None:
        torch.set_num_threads(THREADS)
        self.classifier = pipeline(
            "text-classification", model=MODEL, top_k=None, dtype=torch.float32
        )

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def classify(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        return self.classifier(texts, batch_size=len(texts))
