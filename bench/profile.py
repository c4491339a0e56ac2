"""Where a served request's time goes on the event loop: sentimon's defaults with the bundled
model under closed-loop load, sampled by py-spy.

py-spy records the threads that hold the GIL (`--gil`), so a thread's share of the samples is
its share of the interpreter. Inference runs on worker threads and scales with them; the event
loop (the main thread) does everything else for every request: HTTP, middleware, routing,
validation, metrics, logs. Its GIL time per request, and the functions it goes to, are what
this reports; `make bench`'s middleware row measures the middleware stack alone, in process.

    python -m bench.profile [--seconds 20] [--clients 16]

writes bench/results/profile.json and profile.md. py-spy must be allowed to read the server's
memory: as root, or with CAP_SYS_PTRACE in a container.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sentimon.traffic.corpus import generate_corpus
from sentimon.traffic.load import Request, closed_loop, run

log = logging.getLogger("bench.profile")

RESULTS = Path(__file__).parent / "results"
RATE_HZ = 250
MAIN_THREAD = "MainThread"
_THREAD = re.compile(r"^thread \(\w+\): (.+?)(?:_\d+)?$")
_FRAME = re.compile(r"^(.+) \((.+?)(?::\d+)?\)$")
_ENTRY = re.compile(
    r"\((sentimon|typer/.*|click/.*|uvicorn/(main|server|_compat)\.py|asyncio/runners\.py|"
    r"sentimon/cli/.*)\)$"
)
"""Frames of the process's entry (the CLI, the server's start, the event loop's runner): they
hold every request, so their inclusive time says nothing; their own time still counts (the
runner's is uvloop's C code)."""


@dataclass(frozen=True, slots=True)
class Spent:
    function: str
    """`name (file)`, as py-spy names a frame, without the line."""
    self_us: float
    inclusive_us: float


@dataclass(frozen=True, slots=True)
class Profile:
    requests: int
    seconds: float
    rate_hz: int
    threads: dict[str, float]
    """Share of the run each thread held the GIL (inference workers summed)."""
    main_us_per_request: float
    top_self: list[Spent]
    top_inclusive: list[Spent]

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds


def parse_raw(lines: Iterable[str]) -> dict[str, Counter[tuple[str, ...]]]:
    """py-spy's `--format raw --threads` output: stacks (outermost first) and their sample
    counts, by thread name."""
    stacks: dict[str, Counter[tuple[str, ...]]] = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")
        named = _THREAD.match(thread)
        name = named.group(1) if named else thread
        functions = []
        for frame in frames:
            match = _FRAME.match(frame)
            functions.append(f"{match.group(1)} ({match.group(2)})" if match else frame)
        stacks.setdefault(name, Counter())[tuple(functions)] += int(count)
    return stacks


def summarize(
    stacks: dict[str, Counter[tuple[str, ...]]],
    seconds: float,
    requests: int,
    rate_hz: int = RATE_HZ,
    top: int = 25,
) -> Profile:
    expected = seconds * rate_hz
    threads = {name: sum(c.values()) / expected for name, c in stacks.items()}
    main = stacks.get(MAIN_THREAD, Counter())
    samples = sum(main.values())
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    for functions, n in main.items():
        if functions:
            own[functions[-1]] += n
        for function in set(functions):
            within[function] += n
    per_request_us = 1e6 / rate_hz / max(requests, 1)

    def spent(function: str) -> Spent:
        return Spent(function, own[function] * per_request_us, within[function] * per_request_us)

    costs = [f for f, _ in within.most_common() if not _ENTRY.search(f)]
    return Profile(
        requests=requests,
        seconds=seconds,
        rate_hz=rate_hz,
        threads=dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        main_us_per_request=samples * per_request_us,
        top_self=[spent(f) for f, _ in own.most_common(top)],
        top_inclusive=[spent(f) for f in costs[:top]],
    )


def render_markdown(profile: Profile, machine: str, commit: str) -> str:
    lines = [
        "# Per-request profile of the event loop",
        "",
        f"`python -m bench.profile` at {commit} on {machine}: the bundled model on sentimon's "
        f"defaults, {profile.requests:,} requests in {profile.seconds:.0f} s "
        f"({profile.requests_per_s:.0f} req/s, closed loop), sampled by py-spy at "
        f"{profile.rate_hz} Hz while holding the GIL. Times are GIL time per request; they "
        "include waits for the CPU while holding it, so they move with the machine's load.",
        "",
        f"**Event loop: {profile.main_us_per_request:.0f} µs per request.**",
        "",
        "| thread | share of the run holding the GIL |",
        "| --- | ---: |",
        *(f"| {name} | {share:.1%} |" for name, share in profile.threads.items()),
        "",
        "Where the event loop's time goes, inclusive (a function and what it calls):",
        "",
        "| function | µs per request |",
        "| --- | ---: |",
        *(f"| `{s.function}` | {s.inclusive_us:.1f} |" for s in profile.top_inclusive),
        "",
        "Self (the function's own lines):",
        "",
        "| function | µs per request |",
        "| --- | ---: |",
        *(f"| `{s.function}` | {s.self_us:.1f} |" for s in profile.top_self),
        "",
    ]
    return "\n".join(lines)


def measure(seconds: float, clients: int, py_spy: str) -> Profile:
    from bench.run import BenchConfig, _servers
    from bench.servers import HOST, Server
    from sentimon.config import BUNDLED_MODEL_DIR

    config = BenchConfig()
    [spec] = [
        s for s in _servers("bundled", BUNDLED_MODEL_DIR, config) if s.name == "sentimon-onnx"
    ]
    data_dir = spec.env.get("SENTIMON_DATA_DIR")
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    texts = [item.text for item in generate_corpus(config.corpus_size, seed=config.seed)]
    requests = [Request("POST", spec.predict_path, spec.body(t)) for t in texts]
    server = Server(spec, config.work_dir / "logs" / "profile", config.startup_timeout_s)
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work) / "profile.txt"
        try:
            run(closed_loop(HOST, server.port, requests, concurrency=clients, duration_s=5))
            spy = subprocess.Popen(
                [
                    py_spy, "record", "--pid", str(server.process.pid),
                    "--duration", str(round(seconds)), "--rate", str(RATE_HZ),
                    "--gil", "--threads", "--nonblocking", "--format", "raw", "-o", str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            result = run(
                closed_loop(HOST, server.port, requests, concurrency=clients, duration_s=seconds)
            )
            _, err = spy.communicate(timeout=60)
            if spy.returncode != 0 or not raw.exists():
                raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode()[-2000:]}")
        finally:
            server.stop()
        answered = sum(1 for s in result.samples if 200 <= s.status < 300)
        return summarize(parse_raw(raw.read_text().splitlines()), result.duration_s, answered)


def main(argv: Sequence[str] | None = None) -> None:
    from bench.__main__ import describe_machine

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: make setup-dev")
    profile = measure(args.seconds, args.clients, py_spy)
    machine = describe_machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile.json").write_text(
        json.dumps({"machine": machine, **asdict(profile)}, indent=1) + "\n"
    )
    words = f"{machine['cpu']}, {machine['cores']} cores"
    markdown = render_markdown(profile, words, str(machine["commit"]))
    (args.out / "profile.md").write_text(markdown)
    sys.stdout.write(markdown)


if __name__ == "__main__":
    main()
