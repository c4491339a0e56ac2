"""Request and response bodies: the API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

# Limits are enforced per request from Settings (see api/validation.py); these are the
# schema-level shapes only.
Text = Annotated[str, StringConstraints(strict=True)]


class TextIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"text": "I love the new update, everything is so much faster!"}]
        },
    )

    text: Text = Field(description="The text to classify (a tweet, comment or review).")


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"texts": ["great game last night", "my flight got cancelled again"]}]
        },
    )

    texts: list[Text] = Field(description="Texts to classify, in order.")


class SentimentOut(BaseModel):
    """The tutorial contract of `POST /analyze-sentiment/`."""

    text: str
    sentiment: str = Field(description="The most likely label.")
    confidence: float = Field(description="Probability of that label.")
    probabilities: dict[str, float]
    request_id: str = Field(description="Pass it to /feedback; also in the X-Request-ID header.")


class PredictionOut(BaseModel):
    label: str = Field(description="The most likely label.")
    score: float = Field(description="Probability of that label.")
    probabilities: dict[str, float] = Field(description="Every label's probability.")


class PredictOut(PredictionOut):
    request_id: str = Field(description="Pass it to /feedback; also in the X-Request-ID header.")
    model: str
    model_revision: str


class BatchItemOut(PredictionOut):
    request_id: str = Field(
        description="This text's id for /feedback: `<the request's id>:<position>`."
    )


class BatchOut(BaseModel):
    request_id: str = Field(description="The request's id (X-Request-ID); logs carry it.")
    model: str
    model_revision: str
    predictions: list[BatchItemOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"request_id": "01a2306752867458ac0e8d1790b8b2bb", "label": "negative"},
                {"request_id": "01a2306752867458ac0e8d1790b8b2bb", "correct": True},
            ]
        },
    )

    request_id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=160)] = (
        Field(description="The id a prediction came back with (a batch item's own id).")
    )
    label: Text | None = Field(default=None, description="The right label.")
    correct: StrictBool | None = Field(
        default=None, description="Whether the predicted label was right."
    )
    source: Annotated[str, StringConstraints(strict=True, max_length=100)] | None = Field(
        default=None, description="Who or what says so (a user, a reviewer, a job): free text."
    )


class FeedbackOut(BaseModel):
    request_id: str
    predicted: str = Field(description="The label the model gave.")
    label: str | None = Field(description="The right label; null when only `correct: false`.")
    correct: bool
    source: str | None
    created_at: datetime = Field(description="When the (first) feedback was recorded.")
    duplicate: bool = Field(description="True when this repeats feedback already recorded.")


class StoredPredictionOut(PredictionOut):
    model: str
    model_revision: str
    endpoint: str
    tokens: int
    created_at: datetime


class FeedbackRecordOut(BaseModel):
    request_id: str
    prediction: StoredPredictionOut
    feedback: FeedbackOut | None


class ErrorOut(BaseModel):
    error: str
    error_type: str


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: str | None = None
    reason: str | None = None
    degraded: dict[str, str] | None = Field(
        default=None, description="What works only in part (predictions are still served)."
    )


class Int8Out(BaseModel):
    """The int8 recipe serving, and this CPU's int8 kernel."""

    recipe: str = Field(description="`5`: the same on every CPU.")
    weight_bits: int
    cpu_class: str = Field(
        description="`vnni` or `no-vnni`: whether this CPU's int8 kernel sums in 32 bits."
    )
    kernel: str = Field(description="ONNX Runtime's int8 kernel here: `avx512-vnni`, `avx2`...")
    description: str


class DriftOut(BaseModel):
    """Whether drift and the label-free accuracy estimate are measured, and against what."""

    available: bool
    reason: str | None = Field(
        default=None, description="Why there are no drift metrics (when not available)."
    )
    profile: str | None = Field(default=None, description="The reference profile file.")
    reference: str | None = Field(default=None, description="What the reference holds.")
    calibration: str | None = Field(
        default=None, description="`temperature`, `isotonic` or `none`."
    )
    reference_accuracy: float | None = Field(
        default=None, description="Accuracy on the reference's labelled texts."
    )
    skipped: list[str] = Field(
        default_factory=list, description="What the profile could not hold, and why."
    )
    text: TextDriftOut | None = Field(
        default=None, description="Text drift on the sentence embedding (when drift is on)."
    )


class TextDriftOut(BaseModel):
    """Whether text drift is measured, and in which reference basis."""

    available: bool
    reason: str | None = Field(default=None, description="Why not (when not available).")
    embedding: str = Field(
        description="The served embedding arithmetic: `fp32` or `int8-<recipe>-<cpu class>`."
    )
    components: int | None = Field(default=None, description="Principal components tested.")
    basis: str | None = Field(default=None, description="The texts the basis was fitted on.")


class InfoOut(BaseModel):
    service: str
    version: str
    model: str
    model_revision: str
    model_source: str
    backend: str
    labels: list[str]
    max_tokens: int
    int8: Int8Out | None = Field(description="Set when the backend is ONNX int8.")
    packed: bool = Field(
        description="Whether model calls pack their texts end to end into rows "
        "(`SENTIMON_SEQUENCE_PACKING`, ONNX backend, BERT and RoBERTa families)."
    )
    drift: DriftOut
    limits: dict[str, int | float]


class LivePointOut(BaseModel):
    """One stretch of time on this replica; ratios and quantiles are null without traffic."""

    start: float = Field(description="Unix seconds.")
    end: float = Field(description="Unix seconds.")
    requests_per_s: float = Field(description="HTTP requests answered per second (all routes).")
    error_ratio: float | None = Field(description="Share answered with a 5xx.")
    rejected_ratio: float | None = Field(description="Share answered with a 4xx.")
    predictions_per_s: float = Field(description="Texts classified per second.")
    p50_ms: float | None = Field(description="Median prediction latency in the service.")
    p95_ms: float | None = Field(description="95th percentile prediction latency.")
    label_shares: dict[str, float] | None = Field(description="Share of each predicted label.")
    mean_confidence: float | None = Field(description="Mean top-label probability.")


class LiveTotalsOut(BaseModel):
    """Counts since this replica started, exactly as `/metrics` has them."""

    requests: int = Field(description="`http_requests_total`, all handlers but `/live`.")
    errors: int = Field(description="Of those, answered with a 5xx.")
    rejected: int = Field(description="Of those, answered with a 4xx.")
    predictions: dict[str, int] = Field(description="`sentiment_predictions_total` by label.")


class LiveDriftTestOut(BaseModel):
    statistic: str = Field(description="`label_mix` or `confidence`.")
    n: int = Field(description="Predictions in the window.")
    chi2: float | None = Field(description="Pearson chi-square against the reference.")
    critical_value: float = Field(description="Above it the test rejects (alpha 1e-4).")
    status: str = Field(description="`ok`, `drifting` or `too few` (fewer than `min_n`).")


class LiveDriftOut(BaseModel):
    """The alerts' label-mix and confidence tests on this replica's last minutes only."""

    available: bool
    reason: str | None = Field(default=None, description="Why not (when not available).")
    window_s: float | None = None
    min_n: int | None = Field(default=None, description="Predictions a test needs.")
    tests: list[LiveDriftTestOut] = Field(default_factory=list)


class LiveFeedbackOut(BaseModel):
    """Feedback recorded by this replica since it started."""

    available: bool
    reason: str | None = Field(default=None, description="Why not (when not available).")
    n: int = 0
    right: int = Field(default=0, description="Feedback that said the prediction was right.")
    agreement: float | None = Field(default=None, description="right / n; null when n is 0.")


class LiveOut(BaseModel):
    """This replica's recent numbers for the web UI's Watch view. The fleet's, and the
    alerts, are in Prometheus: follow `links`."""

    model: str
    model_revision: str
    backend: str
    labels: list[str]
    started_at: float = Field(description="When this replica started, Unix seconds.")
    now: float = Field(description="Unix seconds.")
    interval_s: float = Field(description="Sampling interval of `series`.")
    last_minute: LivePointOut | None = Field(
        description="The last minute (or less, just after start); null before a second sample."
    )
    series: list[LivePointOut] = Field(description="One point per interval, oldest first.")
    totals: LiveTotalsOut
    reference_label_shares: dict[str, float] | None = Field(
        description="The reference profile's label mix; null without one."
    )
    drift: LiveDriftOut
    feedback: LiveFeedbackOut
    links: dict[str, str] = Field(
        description="`prometheus`, `alertmanager`, `grafana`: those set in the settings."
    )
