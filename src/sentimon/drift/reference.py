"""The model's reference profile: what its traffic looked like on texts like those it serves.

Drift is live traffic measured against this profile, so everything here is on exactly the
buckets the service exports: label shares, the shares of each `sentiment_prediction_confidence`
and `sentiment_input_tokens` bucket (Prometheus `le` semantics: a value lands in the first
bucket whose upper edge it does not exceed), the calibration of the probabilities, and, when
the texts had labels, the accuracy and the confusion matrix that the label-free estimates
start from, and the bases text drift is measured in (`sentimon.drift.text`), one per kind
of embedding arithmetic.

A profile belongs to one model revision and one set of bucket edges; one built for anything
else is refused with the reason, because comparing against the wrong reference raises alarms
that mean nothing. The file is `reference_profile.json` in the model folder, or the file
`SENTIMON_REFERENCE_PROFILE` names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.utils import floatToGoString as _go_float

from sentimon.drift.calibration import Calibration
from sentimon.drift.stats import bbse_weights, merge_bins
from sentimon.drift.text import TextBasis
from sentimon.metrics.definitions import CONFIDENCE_BUCKETS, TOKEN_BUCKETS
from sentimon.model.base import ModelInfo

PROFILE_FILE = "reference_profile.json"
VERSION = 2
CONFIDENCE_HISTOGRAM = "sentiment_prediction_confidence"
TOKENS_HISTOGRAM = "sentiment_input_tokens"
HISTOGRAM_EDGES: dict[str, tuple[float, ...]] = {
    CONFIDENCE_HISTOGRAM: (*CONFIDENCE_BUCKETS, math.inf),
    TOKENS_HISTOGRAM: (*TOKEN_BUCKETS, math.inf),
}
"""The exported buckets' upper edges, +Inf last: the profile's shares are on exactly these."""
MIN_BIN_SHARE = 0.02
"""Buckets with less reference share are merged into a neighbour for the tests (chi-square
needs expected counts that are not tiny)."""


def le_string(value: float) -> str:
    """A bucket edge as the exposition format writes it in `le` ("0.4", "4.0", "+Inf")."""
    return str(_go_float(value))  # type: ignore[no-untyped-call]


class ProfileError(ValueError):
    """A profile that cannot be used, with the reason in words."""


@dataclass(frozen=True, slots=True)
class Bin:
    """A merged bucket (lower, le] of an exported histogram, as its `le` strings."""

    lower: str
    """`-Inf` for the first bin."""
    le: str
    share: float


@dataclass(frozen=True, slots=True)
class Labelled:
    """What the profile's texts say about the model when they came with labels."""

    n: int
    accuracy: float
    confusion: dict[tuple[str, str], float]
    """(predicted, actual) -> share of all labelled texts (a joint distribution)."""


@dataclass(frozen=True, slots=True)
class CalibrationCheck:
    """The calibration measured on the profile's own labelled texts, which it was not
    fitted on: top-label expected calibration error before and after."""

    n: int
    ece_before: float
    ece_after: float


@dataclass(frozen=True)
class ReferenceProfile:
    model: str
    revision: str
    labels: tuple[str, ...]
    n: int
    description: str
    label_shares: dict[str, float]
    histograms: dict[str, tuple[float, ...]]
    """Histogram name -> share of each exported bucket (aligned with HISTOGRAM_EDGES)."""
    calibration: Calibration | None
    labelled: Labelled | None
    skipped: tuple[str, ...]
    """What could not be built, and why (e.g. no labels: no accuracy, no calibration)."""
    calibration_check: CalibrationCheck | None = None
    text: Mapping[str, TextBasis] = field(default_factory=dict)
    """Text-embedding bases by embedding kind (`sentimon.drift.text.embedding_kind`)."""
    path: Path | None = None

    def bins(self, histogram: str) -> list[Bin]:
        """The histogram's buckets merged so each holds at least MIN_BIN_SHARE."""
        edges = HISTOGRAM_EDGES[histogram]
        shares = self.histograms[histogram]
        out = []
        for start, stop in merge_bins(shares, MIN_BIN_SHARE):
            lower = "-Inf" if start == 0 else le_string(edges[start - 1])
            share = sum(shares[start:stop])
            out.append(Bin(lower, le_string(edges[stop - 1]), round(share, 6)))
        return out

    def bbse_weights(self) -> dict[str, float]:
        """Each predicted label's weight in the label-shift accuracy estimate; empty without
        labels or when the confusion matrix cannot be inverted (a class never predicted)."""
        if self.labelled is None:
            return {}
        try:
            return bbse_weights(self.labelled.confusion, self.labels)
        except (ValueError, np.linalg.LinAlgError):
            return {}

    def summary(self) -> str:
        """One line for the startup log and /info."""
        calibration = self.calibration.method if self.calibration else "none"
        accuracy = f", accuracy {self.labelled.accuracy:.3f}" if self.labelled else ""
        return f"{self.n} texts ({self.description}){accuracy}, calibration {calibration}"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "description": self.description,
            "model": {"name": self.model, "revision": self.revision},
            "labels": list(self.labels),
            "n": self.n,
            "label_shares": {k: round(v, 6) for k, v in self.label_shares.items()},
            "histograms": {
                name: {
                    "le": [le_string(e) for e in HISTOGRAM_EDGES[name]],
                    "shares": [round(s, 6) for s in shares],
                }
                for name, shares in self.histograms.items()
            },
            "labelled": (
                {
                    "n": self.labelled.n,
                    "accuracy": round(self.labelled.accuracy, 6),
                    "confusion": {
                        p: {a: round(self.labelled.confusion[(p, a)], 6) for a in self.labels}
                        for p in self.labels
                    },
                }
                if self.labelled
                else None
            ),
            "calibration": self.calibration.to_json() if self.calibration else None,
            "calibration_check": (
                {
                    "n": self.calibration_check.n,
                    "ece_before": round(self.calibration_check.ece_before, 6),
                    "ece_after": round(self.calibration_check.ece_after, 6),
                }
                if self.calibration_check
                else None
            ),
            "skipped": list(self.skipped),
            "text_embedding": {kind: basis.to_json() for kind, basis in self.text.items()},
        }

    def write(self, path: Path) -> None:
        """Indented, but each text basis on one line: its matrices are thousands of numbers."""
        data = self.to_json()
        text = data.pop("text_embedding")
        body = json.dumps(data, indent=2)[: -len("\n}")]
        bases = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in text.items())
        path.write_text(f'{body},\n  "text_embedding": {{\n{bases}\n  }}\n}}\n')


def load_profile(path: Path) -> ReferenceProfile:
    """Read and check a profile file; ProfileError says what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ProfileError(f"no reference profile at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read the reference profile {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a reference profile is a JSON object")
    version = data.get("version", 1)
    if version != VERSION:
        raise ProfileError(
            f"{path} is a version {version} profile; drift needs version {VERSION}: "
            "rebuild it with `sentimon model profile`"
        )
    try:
        return _parse(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"{path}: malformed reference profile ({exc!r})") from exc


def _parse(data: Mapping[str, Any], path: Path) -> ReferenceProfile:
    labels = tuple(str(label) for label in data["labels"])
    histograms: dict[str, tuple[float, ...]] = {}
    for name, edges in HISTOGRAM_EDGES.items():
        entry = data["histograms"][name]
        expected = [le_string(e) for e in edges]
        if list(entry["le"]) != expected:
            raise ProfileError(
                f"{path}: {name} shares are on the edges {entry['le']}, but the service "
                f"exports {expected}: rebuild it with `sentimon model profile`"
            )
        histograms[name] = tuple(float(s) for s in entry["shares"])
    labelled = None
    if data.get("labelled"):
        raw = data["labelled"]
        labelled = Labelled(
            n=int(raw["n"]),
            accuracy=float(raw["accuracy"]),
            confusion={(p, a): float(raw["confusion"][p][a]) for p in labels for a in labels},
        )
    calibration = Calibration.from_json(data["calibration"]) if data.get("calibration") else None
    check = data.get("calibration_check")
    return ReferenceProfile(
        model=str(data["model"]["name"]),
        revision=str(data["model"]["revision"]),
        labels=labels,
        n=int(data["n"]),
        description=str(data["description"]),
        label_shares={label: float(data["label_shares"][label]) for label in labels},
        histograms=histograms,
        calibration=calibration,
        labelled=labelled,
        skipped=tuple(str(s) for s in data.get("skipped", ())),
        calibration_check=(
            CalibrationCheck(int(check["n"]), float(check["ece_before"]), float(check["ece_after"]))
            if check
            else None
        ),
        text={
            str(kind): TextBasis.from_json(basis)
            for kind, basis in data.get("text_embedding", {}).items()
        },
        path=path,
    )


def check_matches(profile: ReferenceProfile, info: ModelInfo) -> None:
    """ProfileError unless `profile` was built for the model `info` describes."""
    if tuple(profile.labels) != tuple(info.labels):
        raise ProfileError(
            f"the reference profile {profile.path} has labels {list(profile.labels)}, "
            f"the model {list(info.labels)}"
        )
    if profile.revision != info.revision:
        raise ProfileError(
            f"the reference profile {profile.path} was built for {profile.model} revision "
            f"{profile.revision}, but revision {info.revision} is serving: rebuild it with "
            "`sentimon model profile`"
        )


def find_profile(info: ModelInfo, configured: Path | None) -> ReferenceProfile:
    """The profile for the model `info` describes: `configured`, else the model folder's."""
    if configured is not None:
        path = configured.expanduser()
    else:
        folder = Path(info.source).expanduser()
        if not folder.is_dir():
            raise ProfileError(
                f"no reference profile: {info.source} is a hub model; build one with "
                "`sentimon model profile` and set SENTIMON_REFERENCE_PROFILE"
            )
        path = folder / PROFILE_FILE
        if not path.is_file():
            raise ProfileError(
                f"no reference profile at {path}: build one with "
                "`sentimon model profile --texts FILE`"
            )
    profile = load_profile(path)
    check_matches(profile, info)
    return profile


def bucket_shares(values: Sequence[float], histogram: str) -> tuple[float, ...]:
    """Share of `values` in each exported bucket of `histogram` (value <= le)."""
    edges = HISTOGRAM_EDGES[histogram]
    counts = [0] * len(edges)
    for value in values:
        counts[next(i for i, edge in enumerate(edges) if value <= edge)] += 1
    total = max(len(values), 1)
    return tuple(c / total for c in counts)
