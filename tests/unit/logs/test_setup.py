import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentimon.logs import setup
from sentimon.logs.context import accept_request_id, reset_request_id, set_request_id
from sentimon.logs.setup import configure_logging, flush_logs


@pytest.fixture
def streams() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield out, err
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_info_goes_to_stdout_and_errors_with_tracebacks_to_stderr(
    streams: tuple[io.StringIO, io.StringIO],
) -> None:
    out, err = streams
    configure_logging("INFO", stdout=out, stderr=err)
    log = logging.getLogger("sentimon.test")
    token = set_request_id("req-1")
    try:
        log.info("hello %s", "there", extra={"event": "greeting", "n": 3})
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("it failed")
    finally:
        reset_request_id(token)
    log.debug("hidden")
    [info] = lines(out)
    assert info["message"] == "hello there" and info["level"] == "info"
    assert info["request_id"] == "req-1" and info["event"] == "greeting" and info["n"] == 3
    assert info["logger"] == "sentimon.test" and str(info["ts"]).endswith("+00:00")
    [error] = lines(err)
    assert error["message"] == "it failed" and error["error"] == "ValueError"
    assert 'raise ValueError("bad")' in str(error["traceback"])
    assert error["request_id"] == "req-1"


def test_file_gets_every_line_and_rotates(
    streams: tuple[io.StringIO, io.StringIO], tmp_path: Path
) -> None:
    out, err = streams
    log_file = tmp_path / "logs" / "sentimon.log"
    configure_logging("INFO", log_file, max_bytes=10_000, backups=2, stdout=out, stderr=err)
    log = logging.getLogger("sentimon.test")
    for i in range(200):
        log.info("line %d", i)
    log.error("last")
    flush_logs()
    assert log_file.exists() and (tmp_path / "logs" / "sentimon.log.1").exists()
    assert not (tmp_path / "logs" / "sentimon.log.3").exists()
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["message"] == "last"


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("abc-123", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has space", False),
        ("x\ny", False),
        ("", False),
        (None, False),
        ("trace:0af7651916cd43dd.1", True),
    ],
)
def test_caller_request_ids_are_kept_only_when_plain(header: str | None, kept: bool) -> None:
    result = accept_request_id(header)
    assert (result == header) is kept
    assert 1 <= len(result) <= 128


class StuckStream(io.StringIO):
    """stdout whose reader has stopped: a write waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(30)
        return super().write(text)


def test_a_stream_nobody_reads_never_blocks_logging_and_drops_are_counted(
    streams: tuple[io.StringIO, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, err = streams
    stuck = StuckStream()
    monkeypatch.setattr(setup, "QUEUED_LINES", 100)
    configure_logging("INFO", stdout=stuck, stderr=err)
    log = logging.getLogger("sentimon.test")
    log.info("first")
    assert stuck.entered.wait(5)  # the writer holds "first", stuck in write

    def flood() -> None:
        for i in range(150):
            log.info("line %d", i)
        log.error("an error while stdout is stuck")

    flooding = threading.Thread(target=flood)
    flooding.start()
    flooding.join(10)
    assert not flooding.is_alive(), "logging waited for a stream nobody reads"
    # Errors are written where they are logged, whatever stdout does.
    [error] = err.getvalue().splitlines()
    assert json.loads(error)["message"] == "an error while stdout is stuck"

    stuck.release.set()
    flush_logs()  # the stream takes lines again
    log.info("after")
    written = lines(stuck)
    messages = [str(w["message"]) for w in written]
    assert messages[:2] == ["first", "line 0"] and messages[100] == "line 99"
    [warning] = [w for w in written if w.get("event") == "log_lines_dropped"]
    assert warning["dropped"] == 50 and warning["level"] == "warning"
    assert warning["message"] == (
        "dropped 50 log lines: they came faster than the log stream took them"
    )
    assert messages[-2:] == [warning["message"], "after"]
