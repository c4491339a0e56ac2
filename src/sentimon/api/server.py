"""The uvicorn server `sentimon serve` runs: uvicorn's, with the log written before exit.

On SIGTERM or SIGINT uvicorn shuts down gracefully, then raises the signal again with the
default handler so the exit status shows it. That kills the process at once: `atexit` does
not run, so lines still queued for the log writer thread (the lifespan's "stopped", uvicorn's
"Finished server process") would be lost at random. This server waits for them first, for
at most `LOG_FLUSH_S`, so a log stream nobody reads does not hold the exit past the
orchestrator's kill timeout (which budgets the drain and the store's flush).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

from sentimon.logs.setup import flush_logs

LOG_FLUSH_S = 1.0
"""Longest wait for the log at exit; a stream that takes lines writes thousands a second."""


class Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                flush_logs(LOG_FLUSH_S)  # before uvicorn re-raises a captured signal
