"""`python -m sentimon.probe [URL]`: exit 0 when URL answers 200, 1 otherwise. The containers'
healthcheck: no shell and no curl needed in the image, and no space inside an argument
(podman 4's Docker-compatible API splits a `CMD` healthcheck's arguments on spaces).

Without URL it probes this server's /readyz on SENTIMON_PORT (default 8000)."""

from __future__ import annotations

import os
import sys
import urllib.request


def probe(url: str, timeout_s: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 0 if response.status == 200 else 1
    except (OSError, ValueError) as error:  # HTTPError (a 503) is an OSError
        sys.stderr.write(f"{url}: {error}\n")
        return 1


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        return probe(argv[1])
    return probe(f"http://127.0.0.1:{os.environ.get('SENTIMON_PORT', '8000')}/readyz")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
