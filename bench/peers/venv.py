"""Each peer's own virtualenv, built once from its pinned requirements file."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

from bench.peers.paths import peer_dir, requirements_file, venv_bin

STAMP = ".requirements-sha256"
"""File in the virtualenv holding the hash of the requirements it was built from."""
log = logging.getLogger("bench")


def requirements_digest(requirements: bytes) -> str:
    return hashlib.sha256(requirements).hexdigest()


def needs_rebuild(recorded: str | None, wanted: str, python_exists: bool) -> bool:
    """Whether to (re)create a virtualenv whose stamp says `recorded` (None: no stamp)."""
    return not python_exists or recorded != wanted


def pinned(requirements: str, package: str) -> str:
    """The `package==version` line of a requirements file (torch is installed first)."""
    for line in requirements.splitlines():
        if line.strip().split("==")[0].strip().lower() == package and "==" in line:
            return line.strip()
    raise ValueError(f"no {package}==<version> line in the requirements")


def ensure_env(peer: str, work_dir: Path) -> Path:
    """Create (once) the peer's virtualenv under work_dir/peers/<peer>/venv; return its python.

    The stamp file records the hash of bench/peers/requirements-<peer>.txt; the virtualenv is
    built again from scratch when that file changes. torch is installed on its own first, so
    its pinned CPU wheel (PIP_FIND_LINKS) is the one every later requirement sees.
    """
    requirements = requirements_file(peer)
    text = requirements.read_bytes()
    wanted = requirements_digest(text)
    venv = venv_bin(peer, work_dir).parent
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    recorded = stamp.read_text().strip() if stamp.is_file() else None
    if not needs_rebuild(recorded, wanted, python.is_file()):
        log.info("%s: virtualenv %s is up to date", peer, venv)
        return python

    log.info("%s: building virtualenv %s from %s (a few minutes)", peer, venv, requirements.name)
    if venv.exists():
        shutil.rmtree(venv)
    install_log = peer_dir(peer, work_dir) / "install.log"
    install_log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with install_log.open("wb") as out:
        _run([sys.executable, "-m", "venv", str(venv)], out, install_log)
        pip = [str(python), "-m", "pip", "install", "--no-input"]
        _run([*pip, pinned(text.decode(), "torch")], out, install_log)
        _run([*pip, "-r", str(requirements)], out, install_log)
    stamp.write_text(wanted + "\n")
    log.info("%s: virtualenv ready in %.0f s", peer, time.monotonic() - started)
    return python


def _run(argv: list[str], out: BinaryIO, install_log: Path) -> None:
    done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        out.flush()
        tail = "\n".join(install_log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(
            f"{' '.join(argv)} exited with {done.returncode}; log: {install_log}\n{tail}"
        )
