"""Prediction endpoints: the tutorial's /analyze-sentiment/, /predict and /predict/batch."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from sentimon.api.deps import get_service, require_json
from sentimon.api.responses import ERROR_RESPONSES
from sentimon.api.validation import check_batch, check_text
from sentimon.ids import item_ids
from sentimon.model.base import Prediction
from sentimon.schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    PredictionOut,
    PredictOut,
    SentimentOut,
    TextIn,
)
from sentimon.service import SentimentService

router = APIRouter(
    tags=["predict"], dependencies=[Depends(require_json)], responses=ERROR_RESPONSES
)


def _out(p: Prediction) -> PredictionOut:
    return PredictionOut(label=p.label, score=p.score, probabilities=p.probabilities)


@router.post("/analyze-sentiment/", response_model=SentimentOut)
async def analyze_sentiment(
    body: TextIn, request: Request, service: SentimentService = Depends(get_service)
) -> SentimentOut:
    """Classify one text (the response shape of the classic tutorial)."""
    text = check_text(body.text, service.settings)
    request_id = request.state.request_id
    [p] = await service.classify(
        [text], endpoint="/analyze-sentiment/", ids=[request_id], request_id=request_id
    )
    return SentimentOut(
        text=text,
        sentiment=p.label,
        confidence=p.score,
        probabilities=p.probabilities,
        request_id=request_id,
    )


@router.post("/predict", response_model=PredictOut)
async def predict(
    body: TextIn, request: Request, service: SentimentService = Depends(get_service)
) -> PredictOut:
    """Classify one text; the request id in the answer can be sent back as feedback."""
    text = check_text(body.text, service.settings)
    request_id = request.state.request_id
    [p] = await service.classify(
        [text], endpoint="/predict", ids=[request_id], request_id=request_id
    )
    info = service.require_info()
    return PredictOut(
        **_out(p).model_dump(),
        request_id=request_id,
        model=info.name,
        model_revision=info.revision,
    )


@router.post("/predict/batch", response_model=BatchOut)
async def predict_batch(
    body: BatchIn, request: Request, service: SentimentService = Depends(get_service)
) -> BatchOut:
    """Classify several texts in one call; results keep the input order, and each has its
    own `request_id` (`<the request's id>:<position>`) to send back as feedback."""
    texts = check_batch(body.texts, service.settings)
    request_id = request.state.request_id
    ids = list(item_ids(request_id, len(texts)))
    predictions = await service.classify(
        texts, endpoint="/predict/batch", ids=ids, request_id=request_id
    )
    info = service.require_info()
    return BatchOut(
        request_id=request_id,
        model=info.name,
        model_revision=info.revision,
        predictions=[
            BatchItemOut(**_out(p).model_dump(), request_id=i)
            for p, i in zip(predictions, ids, strict=True)
        ],
    )
