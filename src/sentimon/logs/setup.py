"""Logging configuration: JSON lines, info to stdout, errors to stderr, an optional file.

Lines are formatted where they are logged (so they carry that moment's request id) and
written by a thread of their own, so the event loop never waits for a pipe or a disk: a
reader that stops reading stdout (a stuck log shipper) would otherwise stop the service, and
every write releases the GIL, which the event loop then waits to take back behind the
inference threads. What waits to be written is bounded (`QUEUED_LINES`): past that, lines
are dropped and counted, and a warning says how many once the stream takes lines again.
Errors also go to stderr at once, from where they are logged, so a crash's traceback is out
before the process ends.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sentimon.logs.context import current_request_id

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}  # uvicorn adds a colored copy


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


QUEUED_LINES = 10_000
"""Lines that may wait to be written before new ones are dropped."""


class _Formatted(logging.Formatter):
    """For the writer thread's handlers: the line was formatted when it was logged."""

    def format(self, record: logging.LogRecord) -> str:
        return str(record.msg)


class _QueueHandler(logging.handlers.QueueHandler):
    """Formats each record into its JSON line and queues it; drops (and counts) lines while
    the queue is full, and queues a warning with the count once there is room again."""

    def __init__(self, formatter: JsonFormatter, written: list[logging.Handler]) -> None:
        self.lines: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUED_LINES)
        super().__init__(self.lines)
        self.json = formatter
        self.written = written
        self.dropped = 0
        self.writer = threading.Thread(target=self._write, name="sentimon-logs", daemon=True)
        self.writer.start()

    def _write(self) -> None:
        while True:
            record = self.lines.get()
            try:
                if record is None:
                    return
                for handler in self.written:
                    if record.levelno >= handler.level:
                        handler.handle(record)
            finally:
                self.lines.task_done()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = self.json.format(record)
        prepared = logging.makeLogRecord({"name": record.name, "levelno": record.levelno})
        prepared.msg, prepared.levelname = line, record.levelname
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        # Handler.handle holds this handler's lock: one thread at a time in here.
        if self.dropped:
            warning = logging.makeLogRecord(
                {
                    "name": "sentimon.logs",
                    "levelno": logging.WARNING,
                    "levelname": "WARNING",
                    "msg": "dropped %d log lines: they came faster than the log stream took them",
                    "args": (self.dropped,),
                    "event": "log_lines_dropped",
                    "dropped": self.dropped,
                }
            )
            try:
                self.lines.put_nowait(self.prepare(warning))
            except queue.Full:
                self.dropped += 1
                return
            self.dropped = 0
        try:
            self.lines.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued line is written (at most `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        with self.lines.all_tasks_done:
            while self.lines.unfinished_tasks and (left := deadline - time.monotonic()) > 0:
                self.lines.all_tasks_done.wait(left)

    def close(self) -> None:
        """Write what is queued (waiting at most 5 s for a stream nobody reads), then stop."""
        if self.writer.is_alive():
            self.flush()
            try:
                self.lines.put_nowait(None)
            except queue.Full:
                pass  # the stream is stuck: the thread is a daemon and ends with the process
            else:
                self.writer.join(timeout=1)
        for handler in self.written:
            handler.close()
        super().close()


def flush_logs(timeout_s: float = 5.0) -> None:
    """Wait until the lines logged so far are written (tests, and before a hard exit)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _QueueHandler):
            handler.flush(timeout_s)


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def configure_logging(
    level: str = "INFO",
    log_file: Path | None = None,
    max_bytes: int = 10_000_000,
    backups: int = 5,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Send every logger through JSON handlers; call once, at the entry point."""
    formatter = JsonFormatter()
    out = logging.StreamHandler(stdout or sys.stdout)
    out.addFilter(_Below(logging.ERROR))
    written: list[logging.Handler] = [out]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        written.append(
            logging.handlers.RotatingFileHandler(
                log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        )
    for handler in written:
        handler.setFormatter(_Formatted())
    queued = _QueueHandler(formatter, written)
    if log_file is None:
        queued.addFilter(_Below(logging.ERROR))  # errors have nowhere else to go than stderr
    err = logging.StreamHandler(stderr or sys.stderr)
    err.setLevel(logging.ERROR)
    err.setFormatter(formatter)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.addHandler(queued)
    root.addHandler(err)
    root.setLevel(level)
    atexit.register(queued.close)
    # uvicorn's own loggers go through ours; its access log is replaced by the middleware's.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    _route_transformers_logs()
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _route_transformers_logs() -> None:
    """transformers writes to stderr through its own handler; send it through ours instead."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
