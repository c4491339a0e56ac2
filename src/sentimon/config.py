"""Every setting of the service, read once from the environment (prefix ``SENTIMON_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "bundled"
BUNDLED_MODEL_DIR = Path(__file__).parent / "bundled_model"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Service settings; each field is also a ``sentimon serve`` flag."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMON_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    model: str = BUNDLED_MODEL
    """Model to serve: `bundled` (the offline model shipped in the package), a local
    `save_pretrained` folder, or a Hugging Face hub id such as
    `cardiffnlp/twitter-roberta-base-sentiment-latest`."""

    model_revision: str | None = None
    """Hub revision (branch, tag or commit) when `model` is a hub id."""

    backend: Literal["onnx", "transformers"] = "onnx"
    """Inference backend: `onnx` (ONNX Runtime, exported once and cached) or `transformers`
    (PyTorch)."""

    onnx_precision: Literal["int8", "fp32"] = "int8"
    """ONNX weights: `int8` (recipe 5, the same answers on every CPU; `GET /info` says which)
    or `fp32`."""

    sequence_packing: bool = True
    """ONNX backend, BERT and RoBERTa families: model calls of up to 4 texts packed end to
    end in rows of 64 tokens, each attending only to itself; false: padded calls, sorted and
    cut by length (other models always)."""

    cache_dir: Path = Path("~/.cache/sentimon")
    """Where ONNX exports are cached, per model, revision, layout and int8 recipe."""

    num_threads: int = Field(default=0, ge=0, le=256)
    """Threads for inference; 0: the CPUs this process may use (a container's CPU limit, from
    its cgroup quota rounded down, else the cores it may run on)."""

    inference_workers: int = Field(default=0, ge=0, le=16)
    """Inference threads running batches side by side, sharing `num_threads`; 0: two when the
    process may use two CPUs or more, else one (on two cores two served more than one, at the
    service level and flat out, for small and base-sized models alike)."""

    inference_nice: int = Field(default=10, ge=0, le=19)
    """Inference threads run this many nice steps below the rest of the process (Linux), so
    that past capacity the event loop still reads, refuses and answers requests and probes at
    once instead of queueing behind model calls; 0: the same priority."""

    max_tokens: int = Field(default=128, ge=8, le=4096)
    """Inputs are truncated to this many tokens (or the model's own maximum, if lower)."""

    host: str = "127.0.0.1"
    """Address the HTTP server binds to."""

    port: int = Field(default=8000, ge=1, le=65535)
    """Port the HTTP server listens on."""

    max_text_chars: int = Field(default=2000, ge=1, le=100_000)
    """Longest accepted text, in characters; longer texts get 422."""

    max_batch_items: int = Field(default=64, ge=1, le=1024)
    """Most texts accepted by one `/predict/batch` request."""

    max_body_bytes: int = Field(default=1_000_000, ge=1024, le=100_000_000)
    """Largest accepted request body; larger bodies get 413."""

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    """Most texts in one batch taken from the queue (split further into model calls)."""

    max_batch_tokens: int = Field(default=4096, ge=16, le=1_000_000)
    """Most tokens in one model call, padding included."""

    max_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    """How long a batch waits for more texts before it runs."""

    max_queue_size: int = Field(default=256, ge=1, le=100_000)
    """Most texts waiting for or in inference; beyond it requests get 429 at once."""

    # 70 ms, not 100: the bundled model at five times capacity answered as many requests
    # with admitted p95 137-154 ms against 186-249 ms (Zen 5, 2 cores, two rounds in turns);
    # the seeds' 200 ms p95 needs that room for the event loop and the client's cores.
    max_queue_wait_ms: float = Field(default=70.0, ge=0, le=600_000)
    """A request that would wait longer than this before its texts are taken up (the rest of
    the model calls running, then the calls the texts queued before it will make, at the cost
    per call and per text measured) gets 429 at once, with a Retry-After. A burst may pass it
    for up to 1 s, to three times it, while texts arrive slower than the workers clear them (a
    moment's stall of the machine, not overload); 0: no such bound."""

    request_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A request still waiting for inference after this long gets 503."""

    shutdown_grace_s: int = Field(default=15, ge=1, le=3600)
    """After SIGTERM, requests already taken are answered for up to this long (new ones get 503
    `shutting_down`); then what is left is cancelled, the store writes its queue (up to 5 s
    more) and the process exits. Keep it above `request_timeout_s`, and the orchestrator's
    kill timeout above it plus 5 s plus any preStop pause."""

    keepalive_timeout_s: int = Field(default=75, ge=1, le=3600)
    """An idle connection is closed after this long. Keep it longer than the idle timeout of
    the load balancer or proxy in front (60 s on AWS ALB), so the server never closes a
    connection the proxy is about to reuse."""

    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A request's line and headers must arrive within this long of its first byte, else 408
    and the connection is closed."""

    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """A request's body must arrive within this long of its headers, else 408 and the
    connection is closed."""

    max_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    """Largest accepted request line and headers; larger get 431 and the connection is closed."""

    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Most open connections; one more closes the longest-idle keep-alive connection, or gets
    503 if none is idle."""

    fail_on_model_error: bool = True
    """Exit at startup when the model cannot be loaded; if false, stay up and report not ready."""

    log_level: LogLevel = "INFO"
    """Lowest level written to the logs."""

    log_file: Path | None = None
    """Also write JSON logs to this rotating file."""

    log_file_max_bytes: int = Field(default=10_000_000, ge=10_000)
    """Size at which the log file rotates."""

    log_file_backups: int = Field(default=5, ge=0, le=100)
    """Rotated log files kept."""

    log_input_text: bool = False
    """Write the raw input text to the logs (off: only its length is logged)."""

    drift: bool = True
    """Drift metrics and the label-free accuracy estimate, measured against the model's
    reference profile (without one they are off, and `GET /info` says why)."""

    text_drift: bool = True
    """Text drift on the model's sentence embedding, with `drift` on (off: the rest only)."""

    reference_profile: Path | None = None
    """Reference profile for drift; default: the model folder's `reference_profile.json`
    (build one with `sentimon model profile`)."""

    store: bool = True
    """Keep a log of predictions and accept feedback on them (`POST /feedback`); off: neither."""

    database_url: str | None = None
    """SQLAlchemy URL of the prediction log, e.g. `postgresql://user:pass@host/db` (needed with
    more than one replica); unset: a SQLite file in `data_dir`."""

    database_password_file: Path | None = None
    """File holding the password for `database_url` (a Docker or Kubernetes secret), so the URL
    itself carries none; one trailing newline is ignored."""

    data_dir: Path = Path("~/.local/share/sentimon")
    """Where the SQLite prediction log lives when `database_url` is unset."""

    store_text: bool = False
    """Store each input text with its prediction (off: only its SHA-256)."""

    store_queue_size: int = Field(default=10_000, ge=1, le=10_000_000)
    """Prediction rows waiting to be written; beyond it rows are dropped (and counted), never
    the answer."""

    store_batch_size: int = Field(default=256, ge=1, le=100_000)
    """Most prediction rows inserted in one statement."""

    store_flush_ms: float = Field(default=200.0, ge=1, le=60_000)
    """How long a prediction row may wait in the queue before it is written."""

    retention_days: float = Field(default=30.0, gt=0, le=36_500)
    """Predictions (and their feedback) older than this are deleted; feedback on them gets 410."""

    retention_max_rows: int = Field(default=5_000_000, ge=1)
    """At most this many predictions are kept; the oldest beyond it are deleted."""

    retention_interval_s: float = Field(default=300.0, ge=1, le=86_400)
    """How often retention runs."""

    live_interval_s: float = Field(default=5.0, ge=0.5, le=60)
    """How often the web UI's Watch view (`GET /live`) samples this replica's metrics; it keeps
    15 minutes."""

    prometheus_url: str | None = None
    """Prometheus's address for people (e.g. `http://127.0.0.1:9090`); the Watch view links to
    it. The service never calls it."""

    alertmanager_url: str | None = None
    """Alertmanager's address for people; the Watch view links to it."""

    grafana_url: str | None = None
    """Grafana's address for people; the Watch view links to it."""

    @field_validator("prometheus_url", "alertmanager_url", "grafana_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError("must be an http:// or https:// address, e.g. http://127.0.0.1:9090")
        return value.rstrip("/")

    @field_validator("database_password_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("model")
    @classmethod
    def _model_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model: `bundled`, a folder or a hub id")
        return value.strip()

    @property
    def model_path_or_id(self) -> str:
        """Where the model is loaded from: the bundled folder, a local folder or a hub id."""
        return str(BUNDLED_MODEL_DIR) if self.model == BUNDLED_MODEL else self.model
