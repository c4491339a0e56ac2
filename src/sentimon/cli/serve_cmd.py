"""`sentimon serve`: run the API with uvicorn."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from sentimon.cli._settings import flag, settings_from


def serve(
    model: Annotated[str | None, flag("model", "--model")] = None,
    model_revision: Annotated[str | None, flag("model_revision", "--model-revision")] = None,
    backend: Annotated[str | None, flag("backend", "--backend")] = None,
    onnx_precision: Annotated[str | None, flag("onnx_precision", "--onnx-precision")] = None,
    sequence_packing: Annotated[
        bool | None, flag("sequence_packing", "--sequence-packing/--no-sequence-packing")
    ] = None,
    cache_dir: Annotated[Path | None, flag("cache_dir", "--cache-dir")] = None,
    host: Annotated[str | None, flag("host", "--host")] = None,
    port: Annotated[int | None, flag("port", "--port")] = None,
    num_threads: Annotated[int | None, flag("num_threads", "--num-threads")] = None,
    inference_workers: Annotated[
        int | None, flag("inference_workers", "--inference-workers")
    ] = None,
    inference_nice: Annotated[int | None, flag("inference_nice", "--inference-nice")] = None,
    max_tokens: Annotated[int | None, flag("max_tokens", "--max-tokens")] = None,
    max_text_chars: Annotated[int | None, flag("max_text_chars", "--max-text-chars")] = None,
    max_batch_items: Annotated[int | None, flag("max_batch_items", "--max-batch-items")] = None,
    max_body_bytes: Annotated[int | None, flag("max_body_bytes", "--max-body-bytes")] = None,
    max_batch_size: Annotated[int | None, flag("max_batch_size", "--max-batch-size")] = None,
    max_batch_tokens: Annotated[int | None, flag("max_batch_tokens", "--max-batch-tokens")] = None,
    max_wait_ms: Annotated[float | None, flag("max_wait_ms", "--max-wait-ms")] = None,
    max_queue_size: Annotated[int | None, flag("max_queue_size", "--max-queue-size")] = None,
    max_queue_wait_ms: Annotated[
        float | None, flag("max_queue_wait_ms", "--max-queue-wait-ms")
    ] = None,
    request_timeout_s: Annotated[
        float | None, flag("request_timeout_s", "--request-timeout-s")
    ] = None,
    shutdown_grace_s: Annotated[int | None, flag("shutdown_grace_s", "--shutdown-grace-s")] = None,
    keepalive_timeout_s: Annotated[
        int | None, flag("keepalive_timeout_s", "--keepalive-timeout-s")
    ] = None,
    header_timeout_s: Annotated[
        float | None, flag("header_timeout_s", "--header-timeout-s")
    ] = None,
    body_timeout_s: Annotated[float | None, flag("body_timeout_s", "--body-timeout-s")] = None,
    max_header_bytes: Annotated[int | None, flag("max_header_bytes", "--max-header-bytes")] = None,
    max_connections: Annotated[int | None, flag("max_connections", "--max-connections")] = None,
    fail_on_model_error: Annotated[
        bool | None, flag("fail_on_model_error", "--fail-on-model-error/--no-fail-on-model-error")
    ] = None,
    log_level: Annotated[str | None, flag("log_level", "--log-level")] = None,
    log_file: Annotated[Path | None, flag("log_file", "--log-file")] = None,
    log_file_max_bytes: Annotated[
        int | None, flag("log_file_max_bytes", "--log-file-max-bytes")
    ] = None,
    log_file_backups: Annotated[int | None, flag("log_file_backups", "--log-file-backups")] = None,
    log_input_text: Annotated[
        bool | None, flag("log_input_text", "--log-input-text/--no-log-input-text")
    ] = None,
    drift: Annotated[bool | None, flag("drift", "--drift/--no-drift")] = None,
    text_drift: Annotated[bool | None, flag("text_drift", "--text-drift/--no-text-drift")] = None,
    reference_profile: Annotated[
        Path | None, flag("reference_profile", "--reference-profile")
    ] = None,
    store: Annotated[bool | None, flag("store", "--store/--no-store")] = None,
    database_url: Annotated[str | None, flag("database_url", "--database-url")] = None,
    data_dir: Annotated[Path | None, flag("data_dir", "--data-dir")] = None,
    store_text: Annotated[bool | None, flag("store_text", "--store-text/--no-store-text")] = None,
    store_queue_size: Annotated[int | None, flag("store_queue_size", "--store-queue-size")] = None,
    store_batch_size: Annotated[int | None, flag("store_batch_size", "--store-batch-size")] = None,
    store_flush_ms: Annotated[float | None, flag("store_flush_ms", "--store-flush-ms")] = None,
    retention_days: Annotated[float | None, flag("retention_days", "--retention-days")] = None,
    retention_max_rows: Annotated[
        int | None, flag("retention_max_rows", "--retention-max-rows")
    ] = None,
    retention_interval_s: Annotated[
        float | None, flag("retention_interval_s", "--retention-interval-s")
    ] = None,
    live_interval_s: Annotated[float | None, flag("live_interval_s", "--live-interval-s")] = None,
    prometheus_url: Annotated[str | None, flag("prometheus_url", "--prometheus-url")] = None,
    alertmanager_url: Annotated[str | None, flag("alertmanager_url", "--alertmanager-url")] = None,
    grafana_url: Annotated[str | None, flag("grafana_url", "--grafana-url")] = None,
    database_password_file: Annotated[
        Path | None, flag("database_password_file", "--database-password-file")
    ] = None,
) -> None:
    """Serve the API (the model loads before the port opens)."""
    settings = settings_from(
        model=model,
        model_revision=model_revision,
        backend=backend,
        onnx_precision=onnx_precision,
        sequence_packing=sequence_packing,
        cache_dir=cache_dir,
        host=host,
        port=port,
        num_threads=num_threads,
        inference_workers=inference_workers,
        inference_nice=inference_nice,
        max_tokens=max_tokens,
        max_text_chars=max_text_chars,
        max_batch_items=max_batch_items,
        max_body_bytes=max_body_bytes,
        max_batch_size=max_batch_size,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        max_queue_size=max_queue_size,
        max_queue_wait_ms=max_queue_wait_ms,
        request_timeout_s=request_timeout_s,
        shutdown_grace_s=shutdown_grace_s,
        keepalive_timeout_s=keepalive_timeout_s,
        header_timeout_s=header_timeout_s,
        body_timeout_s=body_timeout_s,
        max_header_bytes=max_header_bytes,
        max_connections=max_connections,
        fail_on_model_error=fail_on_model_error,
        log_level=log_level.upper() if log_level else None,
        log_file=log_file,
        log_file_max_bytes=log_file_max_bytes,
        log_file_backups=log_file_backups,
        log_input_text=log_input_text,
        drift=drift,
        text_drift=text_drift,
        reference_profile=reference_profile,
        store=store,
        database_url=database_url,
        data_dir=data_dir,
        store_text=store_text,
        store_queue_size=store_queue_size,
        store_batch_size=store_batch_size,
        store_flush_ms=store_flush_ms,
        retention_days=retention_days,
        retention_max_rows=retention_max_rows,
        retention_interval_s=retention_interval_s,
        live_interval_s=live_interval_s,
        prometheus_url=prometheus_url,
        alertmanager_url=alertmanager_url,
        grafana_url=grafana_url,
        database_password_file=database_password_file,
    )
    # Logging is configured before the app (and uvicorn) is imported.
    from sentimon.logs.setup import configure_logging

    configure_logging(
        settings.log_level,
        settings.log_file,
        settings.log_file_max_bytes,
        settings.log_file_backups,
    )
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from sentimon.api.connections import ConnectionLimits, guarded_protocol
    from sentimon.api.server import Server
    from sentimon.app import create_app

    app = create_app(settings)
    limits = ConnectionLimits(
        keepalive_timeout_s=settings.keepalive_timeout_s,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(limits, app.state.metrics, app.state.shedder),
        timeout_keep_alive=settings.keepalive_timeout_s,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    server = Server(config)
    server.run()
    if not server.started:  # the lifespan failed (the model did not load): say so in the status
        sys.exit(STARTUP_FAILURE)
