"""Request and response bodies: the API contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


class PredictionOut(BaseModel):
    label: str = Field(description="The most likely label.")
    score: float = Field(description="Probability of that label.")
    probabilities: dict[str, float] = Field(description="Every label's probability.")


class PredictOut(PredictionOut):
    request_id: str = Field(description="Pass it to /feedback; also in the X-Request-ID header.")
    model: str
    model_revision: str


class BatchOut(BaseModel):
    request_id: str
    model: str
    model_revision: str
    predictions: list[PredictionOut]


class ErrorOut(BaseModel):
    error: str
    error_type: str


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: str | None = None
    reason: str | None = None


class Int8Out(BaseModel):
    """The int8 recipe serving, chosen at start for this CPU's int8 kernel."""

    recipe: str = Field(description="`4` (8-bit weights) or `4-w7` (7-bit weights).")
    weight_bits: int
    cpu_class: str = Field(description="`vnni` or `no-vnni`: the CPU class it was chosen for.")
    kernel: str = Field(description="ONNX Runtime's int8 kernel here: `avx512-vnni`, `avx2`...")
    description: str


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
    limits: dict[str, int | float]
