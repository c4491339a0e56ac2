"""Error responses documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from sentimon.schemas import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Body is not valid JSON or not valid UTF-8"},
    413: {"model": ErrorOut, "description": "Body larger than SENTIMON_MAX_BODY_BYTES"},
    415: {"model": ErrorOut, "description": "Content-Type is not application/json"},
    422: {"model": ErrorOut, "description": "Missing field, wrong type, empty or too long text"},
    429: {"model": ErrorOut, "description": "Queue full; retry after Retry-After seconds"},
    503: {"model": ErrorOut, "description": "Model not ready, or no result in time"},
}
