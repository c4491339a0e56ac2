"""Probes and what is being served."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from sentimon import __version__
from sentimon.api.deps import get_service
from sentimon.drift.text import embedding_kind
from sentimon.schemas import DriftOut, HealthOut, InfoOut, Int8Out, ReadyOut, TextDriftOut
from sentimon.service import SentimentService

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> HealthOut:
    """The process is up and its event loop answers."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(service: SentimentService = Depends(get_service)) -> JSONResponse:
    """The model is loaded and a warm-up inference passed."""
    if service.ready and service.info is not None:
        return JSONResponse(
            ReadyOut(
                status="ready", model=service.info.name, degraded=service.degraded or None
            ).model_dump(exclude_none=True)
        )
    return JSONResponse(
        ReadyOut(status="not ready", reason=service.not_ready_reason).model_dump(exclude_none=True),
        status_code=503,
    )


@router.get("/info", response_model=InfoOut)
async def info(service: SentimentService = Depends(get_service)) -> InfoOut:
    """Which model, revision and backend serve, and the request limits."""
    model = service.require_info()
    s = service.settings
    return InfoOut(
        service="sentimon",
        version=__version__,
        model=model.name,
        model_revision=model.revision,
        model_source=model.source,
        backend=model.backend,
        labels=list(model.labels),
        max_tokens=model.max_tokens,
        int8=Int8Out(**dataclasses.asdict(model.int8)) if model.int8 else None,
        packed=model.packed,
        drift=_drift(service),
        limits={
            "max_text_chars": s.max_text_chars,
            "max_batch_items": s.max_batch_items,
            "max_body_bytes": s.max_body_bytes,
            "max_queue_size": s.max_queue_size,
            "max_queue_wait_ms": s.max_queue_wait_ms,
            "request_timeout_s": s.request_timeout_s,
        },
    )


def _drift(service: SentimentService) -> DriftOut:
    reference = service.reference
    if reference is None:
        return DriftOut(available=False, reason=service.drift_off)
    return DriftOut(
        available=True,
        profile=str(reference.path),
        reference=reference.summary(),
        calibration=reference.calibration.method if reference.calibration else "none",
        reference_accuracy=reference.labelled.accuracy if reference.labelled else None,
        skipped=list(reference.skipped),
        text=_text_drift(service),
    )


def _text_drift(service: SentimentService) -> TextDriftOut | None:
    if service.model is None:
        return None
    embedding = embedding_kind(service.model.info)
    basis = service.text_basis
    if basis is None:
        return TextDriftOut(available=False, reason=service.text_drift_off, embedding=embedding)
    return TextDriftOut(
        available=True, embedding=embedding, components=basis.components, basis=basis.fitted_on
    )
