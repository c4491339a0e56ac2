"""The current request's id, visible to every log line written while serving it."""

from __future__ import annotations

import re
from contextvars import ContextVar

from sentimon.ids import new_id

_request_id: ContextVar[str | None] = ContextVar("sentimon_request_id", default=None)
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    """Set the id for the current context; returns a token for `reset_request_id`."""
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def new_request_id() -> str:
    """A UUIDv7 in hex: unique, sorted by time, and able to tell its own age."""
    return new_id()


def accept_request_id(header: str | None) -> str:
    """Reuse a caller's X-Request-ID if it is short and plain; otherwise make a new one."""
    if header and _ACCEPTED.match(header):
        return header
    return new_request_id()
