"""The FastAPI application: `create_app(settings, model=None)`; the model loads in the lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, disable_created_metrics

from sentimon import __version__
from sentimon.api.admission import LoadShedder
from sentimon.api.errors import install_error_handlers
from sentimon.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from sentimon.api.router import ROUTE_PATHS, api_router
from sentimon.config import Settings
from sentimon.errors import ModelLoadError
from sentimon.metrics.definitions import build_metrics
from sentimon.metrics.exposition import Exposition
from sentimon.metrics.live import LiveHistory
from sentimon.model.base import SentimentModel
from sentimon.model.workers import run_lowered
from sentimon.service import SentimentService
from sentimon.store.store import PredictionStore

log = logging.getLogger("sentimon.app")
_STORE_START_WAIT_S = 5.0


def create_app(
    settings: Settings | None = None,
    model: SentimentModel | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the app. Without `model`, the configured one is loaded at startup."""
    settings = settings or Settings()
    # `_created` series double the payload and nothing here reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = build_metrics(registry, store=settings.store)
    store = PredictionStore(settings, metrics.store) if metrics.store is not None else None
    service = SentimentService(settings=settings, metrics=metrics, store=store)

    live = LiveHistory(metrics.registry, settings.live_interval_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        live.start()
        try:
            await _start(service, model)
            yield
        finally:
            await live.stop()
            await service.stop()
            log.info("stopped", extra={"event": "shutdown"})

    app = FastAPI(
        title="sentimon",
        version=__version__,
        lifespan=lifespan,
        description="Sentiment analysis for short social-media text "
        "(negative / neutral / positive), with Prometheus metrics.",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.exposition = Exposition(metrics.registry)
    app.state.service = service
    app.state.live = live
    # Past capacity, predictions are refused by the connection before the app sees them
    # (`serve` hands this to the connection guard).
    app.state.shedder = LoadShedder(service, metrics)
    install_error_handlers(app)
    app.include_router(api_router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last, so it is the outermost middleware: it names and counts every response,
    # 413s and 429s included.
    app.add_middleware(RequestContextMiddleware, http=metrics.http, paths=ROUTE_PATHS)
    return app


async def _start(service: SentimentService, model: SentimentModel | None) -> None:
    settings = service.settings
    if service.store is not None:
        service.store.start()  # connects and migrates in the background
    if model is None:
        log.info("loading model", extra={"event": "model_loading", "model": settings.model})
        try:
            # Loaded on a thread at the inference threads' priority: an inference runtime's
            # own thread pool, started here, inherits it.
            model = await asyncio.to_thread(
                run_lowered, settings.inference_nice, partial(_load, settings)
            )
        except ModelLoadError as exc:
            service.fail(str(exc))
            if settings.fail_on_model_error:
                log.error("%s", exc, extra={"event": "model_load_failed"})
                raise
            log.error(
                "%s; serving without a model (SENTIMON_FAIL_ON_MODEL_ERROR=false)",
                exc,
                extra={"event": "model_load_failed"},
            )
            return
    service.start(model)
    await service.warm_up()
    if service.store is not None:
        # Usually connected and migrated by now; a database that is down delays readiness
        # by this much at most, then the service runs without it (/readyz says so).
        await asyncio.to_thread(service.store.health.wait_up, _STORE_START_WAIT_S)
    # The libraries loaded above leave millions of long-lived objects; a full garbage
    # collection walking them all stalled the event loop for up to 200 ms under load.
    # Freezing moves them out of the collector's reach (they live as long as the process).
    gc.collect()
    gc.freeze()
    info = model.info
    log.info(
        "ready",
        extra={
            "event": "ready",
            "model": info.name,
            "revision": info.revision,
            "backend": info.backend,
            "labels": list(info.labels),
            "packed": info.packed,
            **(
                {"int8_recipe": info.int8.recipe, "int8_kernel": info.int8.kernel}
                if info.int8
                else {}
            ),
        },
    )


def _load(settings: Settings) -> SentimentModel:
    from sentimon.model.loader import load_model  # torch/transformers load only when needed

    return load_model(settings)
