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

_FEEDBACK_ERRORS: dict[int, str] = {
    400: "Body is not valid JSON or not valid UTF-8",
    404: "No prediction has this request id (`unknown_request_id`)",
    409: "Different feedback was recorded first (`feedback_conflict`); it stands",
    410: "The prediction is older than the retention (`prediction_expired`)",
    413: "Body larger than SENTIMON_MAX_BODY_BYTES",
    415: "Content-Type is not application/json",
    422: "Neither label nor correct, a label the model does not have, or the two disagree",
    503: "The database cannot commit now (`store_unavailable`), or the store is off",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The feedback endpoints' documented errors."""
    return {
        status: {"model": ErrorOut, "description": _FEEDBACK_ERRORS[status]} for status in statuses
    }
