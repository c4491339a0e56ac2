"""The uvicorn server `sentimon serve` runs: uvicorn's, with the log written before exit.

On SIGTERM or SIGINT uvicorn shuts down gracefully, then raises the signal again with the
default handler so the exit status shows it. That kills the process at once: `atexit` does
not run, so lines still queued for the log writer thread (the lifespan's "stopped", uvicorn's
"Finished server process") would be lost at random. This server waits for them first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

from sentimon.logs.setup import flush_logs


class Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                flush_logs()  # before uvicorn re-raises a captured signal
