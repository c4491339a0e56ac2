"""Request and prediction ids: what logs carry and what a client sends back as feedback.

A single text's id is its request's id: the caller's X-Request-ID when it sent a plain one,
else one made here. A batch item's is `<request id>:<position>`. Ids made here are UUIDv7 in
hex (a millisecond timestamp, then random bits), so they sort by time and tell their own
age: feedback for one older than the retention gets 410, not 404.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

_OURS = re.compile(r"^([0-9a-f]{12})7[0-9a-f]{3}[89ab][0-9a-f]{15}(?::\d+)?$")


_RANDOM_CHUNK = 4096
"""Bytes read from the OS at a time: os.urandom releases the GIL for its system call, and on
the event loop, taking it back can wait behind the inference threads (a profile under load
put 2.6% of the event loop's time in making ids, about 40 µs each, for a 1 µs call). 409 ids
a read."""
_random = b""
_used = 0
_random_lock = threading.Lock()


def _random_bytes(n: int) -> bytes:
    """`n` bytes from the OS's cryptographic source, read in chunks; each byte used once."""
    global _random, _used
    with _random_lock:
        if _used + n > len(_random):
            _random, _used = os.urandom(_RANDOM_CHUNK), 0
        _used += n
        return _random[_used - n : _used]


def _forget_random() -> None:
    """A forked child reads its own bytes, or parent and child would make the same ids."""
    global _random, _used
    _random, _used = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_id(now_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(_random_bytes(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return f"{value:032x}"


def item_ids(request_id: str, n: int) -> Iterator[str]:
    """The ids of a batch request's `n` items, in order."""
    return (f"{request_id}:{i}" for i in range(n))


def made_at(prediction_id: str) -> datetime | None:
    """When an id made here was made; None for a caller's own id."""
    match = _OURS.match(prediction_id)
    if match is None:
        return None
    return datetime.fromtimestamp(int(match.group(1), 16) / 1000, UTC)
