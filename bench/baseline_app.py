"""The tutorial-style service the benchmark compares against.

This is the service most FastAPI + Hugging Face tutorials end with: a transformers pipeline
loaded at import time and called directly inside an `async def` handler, one text per
request. The call blocks the event loop, so requests (health checks included) queue behind
every inference. Only the dtype is pinned to float32, so a model stored in fp16 (like the
bundled one) is not run in fp16 on a CPU, which would be unfair to the baseline.

Run: BENCH_MODEL=/path/to/model uvicorn bench.baseline_app:app
"""

from __future__ import annotations

import os
from typing import Any

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

classifier = pipeline(
    "text-classification", model=os.environ["BENCH_MODEL"], top_k=None, dtype=torch.float32
)
app = FastAPI(title="tutorial-style sentiment service")


class TextIn(BaseModel):
    text: str


@app.post("/predict")
async def predict(item: TextIn) -> dict[str, Any]:
    scores = classifier(item.text)
    return {"text": item.text, "scores": scores}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
