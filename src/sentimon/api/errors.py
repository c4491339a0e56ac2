"""Errors leave as `{"error": ..., "error_type": ...}` with a fitting status, and are counted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sentimon.errors import ServiceError
from sentimon.metrics.definitions import Metrics, endpoint_label

log = logging.getLogger("sentimon.errors")

# pydantic error type → our error_type
_VALIDATION_TYPES = {
    "missing": "missing_field",
    "string_type": "invalid_type",
    "list_type": "invalid_type",
    "model_attributes_type": "invalid_type",
    "dict_type": "invalid_type",
    "bool_type": "invalid_type",
    "model_type": "invalid_type",
}
_MAX_LISTED = 3


def error_response(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    metrics: Metrics = request.app.state.metrics
    metrics.errors.labels(error_type=error_type, endpoint=endpoint_label(request.url.path)).inc()
    return JSONResponse(
        {"error": message, "error_type": error_type}, status_code=status, headers=headers
    )


def _location(loc: Sequence[Any]) -> str:
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not parts:
        return "body"
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        bytes: "raw bytes",
    }.get(type(value), type(value).__name__)


def _describe_validation(errors: Sequence[Any]) -> tuple[int, str, str]:
    first = errors[0]
    if first["type"] == "json_invalid":
        detail = first.get("ctx", {}).get("error", "JSON decode error")
        return (
            400,
            "invalid_json",
            f"Request body is not valid JSON: {detail} at position {first['loc'][-1]}",
        )
    if tuple(first["loc"]) == ("body",):
        if first["type"] == "missing":
            return 422, "missing_field", "Request body is empty; send a JSON object"
        return (
            422,
            "invalid_type",
            (f"Request body must be a JSON object, got {_json_type(first.get('input'))}"),
        )
    messages = [f"{_location(e['loc'])}: {e['msg']}" for e in errors[:_MAX_LISTED]]
    if len(errors) > _MAX_LISTED:
        messages.append(f"and {len(errors) - _MAX_LISTED} more errors")
    return 422, _VALIDATION_TYPES.get(first["type"], "invalid_input"), "; ".join(messages)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    status, error_type, message = _describe_validation(exc.errors())
    return error_response(request, status, error_type, message)


async def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code >= 500:
        log.warning("%s: %s", exc.error_type, exc.message)
    return error_response(request, exc.status_code, exc.error_type, exc.message, exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    cause = exc.__cause__
    if status == 404:
        return error_response(request, 404, "not_found", f"No route for {request.url.path}")
    if status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(
            request,
            405,
            "method_not_allowed",
            f"Method {request.method} is not allowed for {request.url.path}"
            + (f"; use {allowed}" if allowed else ""),
            headers={"Allow": allowed} if allowed else None,
        )
    if isinstance(cause, ServiceError):  # raised while the body was read (BodyTooLarge)
        return await _on_service_error(request, cause)
    if status == 400 and isinstance(cause, UnicodeDecodeError):
        return error_response(request, 400, "invalid_body", "Request body is not valid UTF-8")
    if status == 400 and isinstance(cause, RecursionError):
        return error_response(
            request, 400, "invalid_body", "Request body JSON is nested too deeply"
        )
    if status < 500:
        return error_response(request, status, "invalid_body", str(exc.detail))
    return error_response(request, status, "internal_error", str(exc.detail))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # This handler runs outside the request-id middleware, so the id is passed explicitly.
    request_id = request.scope.get("state", {}).get("request_id", "")
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    return error_response(
        request, 500, "internal_error", f"Internal server error; quote request id {request_id}"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
