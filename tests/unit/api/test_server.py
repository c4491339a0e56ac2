import json
import signal
import subprocess
import sys
import textwrap

# Ten lines through a stdout that takes 50 ms a write, then SIGTERM: uvicorn re-raises it
# with the default handler once its block ends, which kills the process without `atexit`.
_SCRIPT = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    import uvicorn
    from sentimon.api.server import Server
    from sentimon.logs.setup import configure_logging

    class SlowStdout:
        def write(self, text):
            time.sleep(0.05)
            sys.stdout.write(text)
        def flush(self):
            sys.stdout.flush()

    configure_logging(stdout=SlowStdout())
    server = {server}(uvicorn.Config(app=None, log_config=None))
    with server.capture_signals():
        for i in range(10):
            logging.getLogger("test").info("line %d", i)
        os.kill(os.getpid(), signal.SIGTERM)
    print("not reached")
    """
)


def _run(server: str) -> subprocess.CompletedProcess[str]:
    script = _SCRIPT.format(server=server)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )


def test_every_queued_line_is_written_before_the_signal_ends_the_process() -> None:
    done = _run("Server")
    assert done.returncode == -signal.SIGTERM, done.stderr
    messages = [json.loads(line)["message"] for line in done.stdout.splitlines()]
    assert messages == [f"line {i}" for i in range(10)]


def test_uvicorns_own_server_loses_them() -> None:
    # What the test above guards against (once uvicorn waits for the log, drop our class).
    done = _run("uvicorn.Server")
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert len(done.stdout.splitlines()) < 10
