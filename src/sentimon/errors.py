"""Errors the service reports to clients, each with its HTTP status and a stable error_type."""

from __future__ import annotations


class ServiceError(Exception):
    """Rendered as `{"error": message, "error_type": error_type}` with `status_code`."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(ServiceError):
    status_code = 422
    error_type = "invalid_input"


class EmptyText(InvalidInput):
    error_type = "empty_text"


class TextTooLong(InvalidInput):
    error_type = "text_too_long"


class EmptyBatch(InvalidInput):
    error_type = "empty_batch"


class BatchTooLarge(InvalidInput):
    error_type = "batch_too_large"


class BodyTooLarge(ServiceError):
    status_code = 413
    error_type = "body_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    error_type = "unsupported_media_type"


class Overloaded(ServiceError):
    status_code = 429
    error_type = "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class ModelNotReady(ServiceError):
    status_code = 503
    error_type = "model_not_ready"


class InferenceTimeout(ServiceError):
    status_code = 503
    error_type = "timeout"


class InferenceFailed(ServiceError):
    status_code = 500
    error_type = "inference_failed"


class UnknownPrediction(ServiceError):
    status_code = 404
    error_type = "unknown_request_id"


class PredictionExpired(ServiceError):
    status_code = 410
    error_type = "prediction_expired"


class FeedbackConflict(ServiceError):
    status_code = 409
    error_type = "feedback_conflict"


class InvalidFeedback(InvalidInput):
    error_type = "invalid_feedback"


class StoreUnavailable(ServiceError):
    status_code = 503
    error_type = "store_unavailable"


class StoreDisabled(ServiceError):
    status_code = 503
    error_type = "store_disabled"


class ModelLoadError(RuntimeError):
    """The configured model could not be loaded; the message names the setting."""
