from __future__ import annotations

import pytest

from sentimon.traffic.target import Target, TargetError, is_loopback, parse_target


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:8000", Target("127.0.0.1", 8000, "")),
        ("http://localhost:9000/", Target("localhost", 9000, "")),
        ("http://127.0.0.2/api/", Target("127.0.0.2", 80, "/api")),
        ("http://[::1]:8000", Target("::1", 8000, "")),
    ],
)
def test_loopback_urls_are_accepted(url: str, target: Target) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1:8000", "'https://127.0.0.1:8000': only http:// URLs are supported"),
        ("127.0.0.1:8000", "'127.0.0.1:8000': only http:// URLs are supported"),
        ("http://:8000", "'http://:8000': no host"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999': Port out of range 0-65535"),
        (
            "http://10.1.2.3:8000",
            "10.1.2.3 is not a loopback address: traffic generation is refused unless you pass "
            "--allow-remote (make sure you may load that server)",
        ),
    ],
)
def test_other_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(TargetError) as excinfo:
        parse_target(url)
    assert str(excinfo.value) == message


def test_allow_remote_lets_a_remote_address_through() -> None:
    assert parse_target("http://10.1.2.3:8000", allow_remote=True) == Target("10.1.2.3", 8000, "")


def test_is_loopback_resolves_names() -> None:
    assert is_loopback("localhost")
    assert is_loopback("127.9.9.9")
    assert not is_loopback("192.168.1.1")
    assert not is_loopback("no-such-host.invalid")
