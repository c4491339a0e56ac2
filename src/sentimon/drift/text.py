"""Text drift on the model's own sentence embedding: a reference basis and its projection.

The embedding is the final hidden state of each text's first token, the vector the
classifier head reads, returned by the same forward pass as the probabilities. A basis is
fitted once per model and backend:

- directions: the top principal directions of the embeddings of one split of the reference
  texts (the fitting split);
- scale: on another split (the scaling split), the mean and covariance of the texts'
  coordinates along those directions, folded into a whitening, so that the reference's
  scores z have mean 0 and identity covariance on texts the directions were not fitted on
  (scaling on the fitting split itself understates the variance of new texts and inflates
  false alarms);
- residual: the norm of what the directions leave out, with its mean and standard deviation
  on the scaling split (a new topic mostly lives outside the reference's main directions).

Live traffic adds up each component's positive and negative parts and the residual norm as
counters; the recording rules turn them into a chi-square on the component means and a z on
the residual mean, fleet-wide (`sentimon.drift.stats.text_drift_chi2`, `residual_z`).

An embedding depends on the arithmetic that computed it: on the bundled model, the int8
graph's embeddings sit apart from fp32's by as much as a 10% mix of review snippets among
tweets would move them. A basis therefore names the embedding kind it was measured with
(`fp32`, or `int8-<recipe>-<cpu class>`), and the service uses text drift only with the
basis of the kind it computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sentimon.model.base import ModelInfo

COMPONENTS = 32
"""Principal directions kept (fewer when the fitting split or the embedding is smaller)."""
MIN_FIT_TEXTS = 100
MIN_SCALE_TEXTS = 200
"""The fewest texts a basis is fitted or scaled on; with fewer, the profile skips it."""

Array = npt.NDArray[np.float64]


def embedding_kind(info: ModelInfo) -> str:
    """Which arithmetic computes the served embeddings: `fp32` (PyTorch or ONNX fp32) or
    `int8-<recipe>`, e.g. `int8-5` (the same integers on every CPU)."""
    if info.int8 is None:
        return "fp32"
    return f"int8-{info.int8.recipe}"


@dataclass(frozen=True, eq=False)
class TextBasis:
    kind: str
    """The embedding kind it was measured with (`embedding_kind`)."""
    fitted_on: str
    """The texts of both splits, in words."""
    n: int
    """Texts in the scaling split: the reference mean's own noise is 1/n per component."""
    mean: Array
    """(hidden,) mean embedding of the fitting split."""
    directions: Array
    """(k, hidden) orthonormal principal directions of the fitting split."""
    whitening: Array
    """(k, k) inverse Cholesky factor of the coordinates' covariance on the scaling split."""
    offset: Array
    """(k,) mean coordinates on the scaling split."""
    residual_mean: float
    residual_sd: float

    @property
    def components(self) -> int:
        return int(self.directions.shape[0])

    def __eq__(self, other: object) -> bool:
        """Equal when their files would be (arrays compared to the digits written)."""
        return isinstance(other, TextBasis) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.kind, self.n, self.fitted_on))

    def scorer(self) -> Scorer:
        return Scorer(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fitted_on": self.fitted_on,
            "n": self.n,
            "components": self.components,
            "residual_mean": self.residual_mean,
            "residual_sd": self.residual_sd,
            "mean": _floats(self.mean),
            "directions": [_floats(row) for row in self.directions],
            "whitening": [_floats(row) for row in self.whitening],
            "offset": _floats(self.offset),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TextBasis:
        directions = np.array(data["directions"], dtype=np.float64)
        whitening = np.array(data["whitening"], dtype=np.float64)
        mean = np.array(data["mean"], dtype=np.float64)
        offset = np.array(data["offset"], dtype=np.float64)
        k = int(data["components"])
        if directions.ndim != 2 or directions.shape != (k, mean.shape[0]):
            raise ValueError(f"directions are {directions.shape}, expected ({k}, {mean.size})")
        if whitening.shape != (k, k) or offset.shape != (k,):
            raise ValueError(f"whitening {whitening.shape} or offset {offset.shape} is not k={k}")
        return cls(
            kind=str(data["kind"]),
            fitted_on=str(data["fitted_on"]),
            n=int(data["n"]),
            mean=mean,
            directions=directions,
            whitening=whitening,
            offset=offset,
            residual_mean=float(data["residual_mean"]),
            residual_sd=float(data["residual_sd"]),
        )


class Scorer:
    """A basis folded for speed: one matrix product per batch gives both the whitened scores
    z = E P^T - c and the coordinates the residual needs."""

    def __init__(self, basis: TextBasis) -> None:
        k = basis.components
        self.components = k
        projection = basis.whitening @ basis.directions
        self._stacked = np.vstack([projection, basis.directions]).T.astype(np.float32)
        """(hidden, 2k): the whitened projection, then the plain directions."""
        self._shift = np.concatenate(
            [
                basis.whitening @ (basis.directions @ basis.mean + basis.offset),
                basis.directions @ basis.mean,
            ]
        ).astype(np.float32)
        self._mean = basis.mean.astype(np.float32)
        self._mean_norm = float(basis.mean @ basis.mean)

    def score(self, embeddings: npt.NDArray[np.float32]) -> tuple[Array, Array]:
        """(rows, k) whitened scores and (rows,) residual norms."""
        x = np.asarray(embeddings, dtype=np.float32)
        both = x @ self._stacked - self._shift
        k = self.components
        z, inside = both[:, :k], both[:, k:]
        # |x - mean|^2 - |V (x - mean)|^2, with |x - mean|^2 expanded to skip a copy of x.
        squared = (
            np.einsum("ij,ij->i", x, x)
            - 2.0 * (x @ self._mean)
            + self._mean_norm
            - np.einsum("ij,ij->i", inside, inside)
        )
        residual = np.sqrt(np.maximum(squared, 0.0))
        return z.astype(np.float64), residual.astype(np.float64)


def fit_basis(fit: npt.ArrayLike, scale: npt.ArrayLike, kind: str, fitted_on: str) -> TextBasis:
    """Directions from `fit`'s embeddings, whitening and residual from `scale`'s (rows x
    hidden each). ValueError when either split is too small."""
    fit_rows = np.asarray(fit, dtype=np.float64)
    scale_rows = np.asarray(scale, dtype=np.float64)
    if fit_rows.shape[0] < MIN_FIT_TEXTS or scale_rows.shape[0] < MIN_SCALE_TEXTS:
        raise ValueError(
            f"a text-embedding basis needs >= {MIN_FIT_TEXTS} texts to fit and >= "
            f"{MIN_SCALE_TEXTS} to scale on, got {fit_rows.shape[0]} and {scale_rows.shape[0]}"
        )
    k = min(COMPONENTS, fit_rows.shape[1], fit_rows.shape[0] - 1, scale_rows.shape[0] // 10)
    mean = fit_rows.mean(axis=0)
    _, _, vt = np.linalg.svd(fit_rows - mean, full_matrices=False)
    directions = vt[:k]
    centred = scale_rows - mean
    coordinates = centred @ directions.T
    offset = coordinates.mean(axis=0)
    covariance = np.cov(coordinates, rowvar=False).reshape(k, k)
    whitening = np.linalg.inv(np.linalg.cholesky(covariance)).astype(np.float64)
    residual = np.sqrt(
        np.maximum((centred * centred).sum(axis=1) - (coordinates * coordinates).sum(axis=1), 0)
    )
    return TextBasis(
        kind=kind,
        fitted_on=fitted_on,
        n=int(scale_rows.shape[0]),
        mean=mean,
        directions=directions,
        whitening=whitening,
        offset=offset,
        residual_mean=float(residual.mean()),
        residual_sd=float(residual.std(ddof=1)),
    )


def _floats(values: Array) -> list[float]:
    """Seven significant digits: float32 embeddings carry no more."""
    return [float(f"{v:.7g}") for v in values.tolist()]
