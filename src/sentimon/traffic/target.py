"""Where traffic goes: an http:// URL, on loopback unless the caller explicitly allows more."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TargetError(ValueError):
    """The URL cannot or may not be sent traffic; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    prefix: str
    """Path prefix prepended to every request path ("" or "/something")."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"


def parse_target(url: str, *, allow_remote: bool = False) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise TargetError(f"{url!r}: only http:// URLs are supported")
    if not parts.hostname:
        raise TargetError(f"{url!r}: no host")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise TargetError(f"{url!r}: {exc}") from None
    target = Target(parts.hostname, port, parts.path.rstrip("/"))
    if not allow_remote and not is_loopback(parts.hostname):
        raise TargetError(
            f"{parts.hostname} is not a loopback address: traffic generation is refused unless "
            "you pass --allow-remote (make sure you may load that server)"
        )
    return target


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )
