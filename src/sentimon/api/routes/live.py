"""This replica's recent numbers, for the web UI's Watch view."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from sentimon.api.deps import get_service
from sentimon.live import live_view
from sentimon.metrics.live import LiveHistory
from sentimon.schemas import ErrorOut, LiveOut
from sentimon.service import SentimentService

router = APIRouter(tags=["health"])


@router.get(
    "/live",
    response_model=LiveOut,
    responses={503: {"model": ErrorOut, "description": "Model not loaded"}},
)
async def live(request: Request, service: SentimentService = Depends(get_service)) -> LiveOut:
    """This replica's request rate, errors, latency, label mix, confidence, drift tests and
    feedback over the last 15 minutes, sampled every `live_interval_s` from its own metrics.
    Counts since start match `/metrics`; the fleet's numbers and the alerts are Prometheus's
    (see `links`)."""
    history: LiveHistory = request.app.state.live
    return live_view(service, history)
