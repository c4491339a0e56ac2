"""Which peers there are and where each one's files live."""

from __future__ import annotations

from pathlib import Path

PEERS: tuple[str, ...] = ("bentoml", "mlserver")
HERE = Path(__file__).resolve().parent
"""bench/peers: the requirements files and the modules the peers import at run time."""


def check_peer(peer: str) -> None:
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; known peers: {', '.join(PEERS)}")


def requirements_file(peer: str) -> Path:
    check_peer(peer)
    return HERE / f"requirements-{peer}.txt"


def peer_dir(peer: str, work_dir: Path) -> Path:
    """work_dir/peers/<peer>: the peer's virtualenv, install log and run-time files."""
    check_peer(peer)
    return work_dir.resolve() / "peers" / peer


def venv_bin(peer: str, work_dir: Path) -> Path:
    return peer_dir(peer, work_dir) / "venv" / "bin"
