"""Feedback on predictions: was this answer right, and if not, what was?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from sentimon.api.deps import get_service, require_json
from sentimon.api.responses import error_responses
from sentimon.schemas import FeedbackIn, FeedbackOut, FeedbackRecordOut, StoredPredictionOut
from sentimon.service import SentimentService

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    dependencies=[Depends(require_json)],
    responses={
        200: {"model": FeedbackOut, "description": "The same feedback was already recorded."},
        **error_responses(400, 404, 409, 410, 413, 415, 422, 503),
    },
)
async def post_feedback(
    body: FeedbackIn, response: Response, service: SentimentService = Depends(get_service)
) -> FeedbackOut:
    """Record whether a prediction was right: 201 once committed; the same feedback again
    answers 200 with `duplicate: true`; different feedback for the same id 409 (the first
    stands)."""
    result = await service.record_feedback(body.request_id, body.label, body.correct, body.source)
    duplicate = result.outcome == "duplicate"
    if duplicate:
        response.status_code = 200
    return _feedback_out(body.request_id, result.feedback, duplicate=duplicate)


@router.get(
    "/feedback/{request_id}",
    response_model=FeedbackRecordOut,
    responses=error_responses(404, 410, 503),
)
async def get_feedback(
    request_id: str, service: SentimentService = Depends(get_service)
) -> FeedbackRecordOut:
    """A stored prediction and the feedback on it (null when there is none yet)."""
    prediction, stored = await service.read_feedback(request_id)
    return FeedbackRecordOut(
        request_id=request_id,
        prediction=StoredPredictionOut(
            label=prediction["label"],
            score=prediction["score"],
            probabilities=prediction["probabilities"],
            model=prediction["model"],
            model_revision=prediction["revision"],
            endpoint=prediction["endpoint"],
            tokens=prediction["tokens"],
            created_at=prediction["created_at"],
        ),
        feedback=None if stored is None else _feedback_out(request_id, stored, duplicate=False),
    )


def _feedback_out(request_id: str, stored: Any, *, duplicate: bool) -> FeedbackOut:
    return FeedbackOut(
        request_id=request_id,
        predicted=stored["predicted"],
        label=stored["actual"],
        correct=stored["correct"],
        source=stored["source"],
        created_at=stored["created_at"],
        duplicate=duplicate,
    )
