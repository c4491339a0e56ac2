"""The MLServer peer's runtime: MLServer's Hugging Face runtime, returning every label's score.

Runs in the peer's own virtualenv (requirements-mlserver.txt), never in the benchmark's;
model-settings.json names it as `mlserver_runtime.AllScoresRuntime` (this folder is on
PYTHONPATH). It loads the pipeline exactly as `mlserver_huggingface.HuggingFaceRuntime` does
(transformers 4.41 loads weights in fp32 unless told otherwise, so the fp16 bundled model runs
in fp32 like the baseline) and changes three things in `predict`:

- the pipeline is called with `top_k=None`, so each text gets all label scores, as from the
  other servers (the stock runtime has no way to pass it: every request input is batched);
- the batch is run as one padded batch (`batch_size=len(texts)`): the stock runtime falls back
  to batch size 1 inside the pipeline for tokenizers whose pad token id is 0 (BERT's), a
  falsy-value check;
- each batch's size is recorded in the `batch_size` histogram on MLServer's metrics port.

MLServer's adaptive batcher merges concurrent requests, each with one input named
`array_inputs` holding one text, into one `predict` call with all their texts.
"""

# mypy: ignore-errors
# (mlserver is installed only in the peer's virtualenv, not where mypy checks this file)

from __future__ import annotations

import mlserver
import torch
from mlserver.logging import logger
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_huggingface import HuggingFaceRuntime
from mlserver_huggingface.codecs import HuggingfaceRequestCodec


class AllScoresRuntime(HuggingFaceRuntime):
    async def load(self) -> bool:
        loaded = await super().load()
        mlserver.register("batch_size", "Texts per pipeline call (adaptive batching)")
        logger.info(
            "pipeline %s: dtype %s, %d torch threads, max batch %d",
            self.hf_settings.task_name,
            self._model.model.dtype,
            torch.get_num_threads(),
            self.settings.max_batch_size,
        )
        return loaded

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        texts = list(HuggingfaceRequestCodec.decode_request(payload)["array_inputs"])
        mlserver.log(batch_size=len(texts))
        prediction = self._model(texts, top_k=None, batch_size=len(texts))
        return self.encode_response(payload=prediction, default_codec=HuggingfaceRequestCodec)
