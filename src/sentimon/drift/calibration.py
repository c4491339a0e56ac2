"""Calibration of the model's class probabilities, for the label-free accuracy estimate (CBPE).

CBPE estimates accuracy as the mean calibrated top probability, so the probabilities must be
calibrated on labelled data the model was not trained on. `fit_calibration` chooses:

- isotonic regression one-vs-rest (pool adjacent violators, own implementation) when every
  class has at least `ISOTONIC_MIN_ROWS` rows: each class's probability goes through its own
  non-decreasing map, then each row is divided by its sum. Flexible, but it may change which
  class is largest.
- temperature scaling otherwise: softmax(log p / T), with the one T in [0.05, 20] that
  minimises the negative log-likelihood (golden-section search on log T). One parameter, so
  it needs little data, and it never changes which class is largest.

Every float a `Calibration` holds is rounded to `DECIMALS` decimals when it is fitted, so
`Calibration.from_json(c.to_json()) == c` exactly, and `apply` computes what was measured.
Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

Method = Literal["temperature", "isotonic", "none"]
METHODS: tuple[Method, ...] = ("temperature", "isotonic", "none")

ISOTONIC_MIN_ROWS = 1000
"""Isotonic regression when every class has at least this many rows, else temperature."""
TEMPERATURE_RANGE = (0.05, 20.0)
"""The temperatures searched (bounds included)."""
ECE_BINS = 15
DECIMALS = 6
"""Fitted floats (temperature, isotonic maps, ECE) are rounded to this many decimals."""
_MIN_PROBABILITY = 1e-12
"""Probabilities are clipped to at least this before their log is taken."""
_SUM_TOLERANCE = 1e-3
"""How far from 1 a row of input probabilities may sum."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration map from the model's probabilities to calibrated ones."""

    method: Method
    temperature: float | None
    """softmax(log p / temperature); set for `method == "temperature"` only."""
    isotonic: dict[str, tuple[list[float], list[float]]] | None
    """Per label (one-vs-rest), the x and y points of its map for `np.interp` (constant
    outside them); set for `method == "isotonic"` only."""
    labels: tuple[str, ...]
    """The label of each probability column, in order."""
    ece_before: float | None
    """Top-label ECE (15 bins) of the raw probabilities, on the data it was fitted on."""
    ece_after: float | None
    """Top-label ECE of the calibrated probabilities, on the same (in-sample) data."""
    n: int
    """Rows it was fitted on."""
    fitted_on: str
    """What those rows were (e.g. the dataset, split and revision)."""
    _tables: tuple[tuple[FloatArray, FloatArray], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be at least two distinct names, got {self.labels}")
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if (self.method == "temperature") != (self.temperature is not None):
            raise ValueError("temperature must be set exactly when method is 'temperature'")
        if self.temperature is not None and not (
            TEMPERATURE_RANGE[0] <= self.temperature <= TEMPERATURE_RANGE[1]
        ):
            raise ValueError(
                f"temperature must be in [{TEMPERATURE_RANGE[0]}, {TEMPERATURE_RANGE[1]}], "
                f"got {self.temperature}"
            )
        if (self.method == "isotonic") != (self.isotonic is not None):
            raise ValueError("isotonic must be set exactly when method is 'isotonic'")
        tables: list[tuple[FloatArray, FloatArray]] = []
        if self.isotonic is not None:
            if sorted(self.isotonic) != sorted(self.labels):
                raise ValueError(
                    f"isotonic maps are for {sorted(self.isotonic)}, labels are "
                    f"{sorted(self.labels)}"
                )
            for label in self.labels:
                tables.append(_check_map(label, *self.isotonic[label]))
        object.__setattr__(self, "_tables", tuple(tables))

    def apply(self, probabilities: npt.NDArray[np.floating[Any]]) -> FloatArray:
        """The calibrated probabilities of `probabilities` (n, k): float64, rows sum to 1.

        Temperature scaling keeps each row's largest class; isotonic maps may not (each class
        has its own map). A row whose isotonic maps all give 0 is returned as it came in
        (normalised; an all-zero row becomes uniform), so the output is never NaN.
        `method == "none"` returns the input unchanged. Vectorised; runs on the serving path.
        """
        shape = np.shape(probabilities)
        if len(shape) != 2 or shape[1] != len(self.labels):
            raise ValueError(f"probabilities must have shape (n, {len(self.labels)}), got {shape}")
        if self.method == "none":
            return cast(FloatArray, probabilities)
        p = np.asarray(probabilities, dtype=np.float64)
        if self.temperature is not None:
            return _softmax_of_log(p, self.temperature)
        out = np.empty_like(p)
        for j, (xs, ys) in enumerate(self._tables):
            out[:, j] = np.interp(p[:, j], xs, ys)
        sums = out.sum(axis=1, keepdims=True)
        zero = sums[:, 0] <= 0.0
        if zero.any():
            out[zero] = np.maximum(p[zero], _MIN_PROBABILITY)
            sums[zero] = out[zero].sum(axis=1, keepdims=True)
        out /= sums
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `Calibration.from_json` reads it back to an equal object."""
        return {
            "method": self.method,
            "temperature": _round(self.temperature),
            "isotonic": None
            if self.isotonic is None
            else {
                label: {
                    "x": [round(v, DECIMALS) for v in xs],
                    "y": [round(v, DECIMALS) for v in ys],
                }
                for label, (xs, ys) in self.isotonic.items()
            },
            "labels": list(self.labels),
            "ece_before": _round(self.ece_before),
            "ece_after": _round(self.ece_after),
            "n": self.n,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        """Read what `to_json` wrote; ValueError when a field is missing or wrong."""
        missing = [
            key
            for key in ("method", "temperature", "isotonic", "labels", "n", "fitted_on")
            if key not in data
        ]
        if missing:
            raise ValueError(f"calibration is missing {', '.join(missing)}")
        raw_maps = data["isotonic"]
        try:
            isotonic = (
                None
                if raw_maps is None
                else {
                    str(label): ([float(v) for v in m["x"]], [float(v) for v in m["y"]])
                    for label, m in raw_maps.items()
                }
            )
            return cls(
                method=data["method"],
                temperature=_optional_float(data["temperature"]),
                isotonic=isotonic,
                labels=tuple(str(label) for label in data["labels"]),
                ece_before=_optional_float(data.get("ece_before")),
                ece_after=_optional_float(data.get("ece_after")),
                n=int(data["n"]),
                fitted_on=str(data["fitted_on"]),
            )
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"calibration is malformed: {exc!r}") from exc


def fit_calibration(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    label_names: Sequence[str],
    fitted_on: str,
) -> Calibration:
    """Fit a calibration of `probabilities` (n, k) to the true class indices `labels` (n,).

    Isotonic one-vs-rest when every class has at least `ISOTONIC_MIN_ROWS` rows, otherwise
    temperature scaling. `ece_before` and `ece_after` are measured on these same rows
    (in-sample: optimistic for isotonic); use `expected_calibration_error` on held-out rows.
    """
    p, y = _check_inputs(probabilities, labels)
    k = p.shape[1]
    if len(label_names) != k:
        raise ValueError(
            f"label_names has {len(label_names)} names, probabilities have {k} columns"
        )
    names = tuple(str(name) for name in label_names)
    counts = np.bincount(y, minlength=k)
    isotonic: dict[str, tuple[list[float], list[float]]] | None = None
    temperature: float | None = None
    if int(counts.min()) >= ISOTONIC_MIN_ROWS:
        isotonic = {name: _fit_isotonic(p[:, j], y == j) for j, name in enumerate(names)}
        method: Method = "isotonic"
    else:
        temperature = _fit_temperature(p, y)
        method = "temperature"
    fitted = Calibration(
        method=method,
        temperature=temperature,
        isotonic=isotonic,
        labels=names,
        ece_before=None,
        ece_after=None,
        n=len(y),
        fitted_on=fitted_on,
    )
    before = expected_calibration_error(p, y)
    after = expected_calibration_error(fitted.apply(p), y)
    return replace(fitted, ece_before=round(before, DECIMALS), ece_after=round(after, DECIMALS))


def expected_calibration_error(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """Top-label expected calibration error (Guo et al. 2017).

    Rows go by their top probability into `bins` equal-width bins ((0, 1/bins] first, 0 in
    it too); ECE = sum over bins of (rows in bin / n) * |accuracy - mean top probability|.
    The predicted class is the first largest column.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    p, y = _check_inputs(probabilities, labels)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gaps = np.bincount(index, weights=correct - confidence, minlength=bins)
    return float(np.abs(gaps).sum() / len(y))


def _softmax_of_log(p: FloatArray, temperature: float) -> FloatArray:
    z = np.log(np.maximum(p, _MIN_PROBABILITY)) / temperature
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _fit_temperature(p: FloatArray, y: npt.NDArray[np.int64]) -> float:
    """The T in `TEMPERATURE_RANGE` minimising the NLL of softmax(log p / T): golden-section
    search on log T (the NLL is convex in 1/T, so unimodal in log T)."""
    log_p = np.log(np.maximum(p, _MIN_PROBABILITY))
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        z = log_p / math.exp(log_t)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float((log_norm - z[rows, y]).mean())

    lo, hi = math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo + (1.0 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    while hi - lo > 1e-9:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1.0 - ratio) * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    t = round(math.exp((lo + hi) / 2.0), DECIMALS)
    return min(max(t, TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])


def _fit_isotonic(
    x: FloatArray, positive: npt.NDArray[np.bool_]
) -> tuple[list[float], list[float]]:
    """The non-decreasing least-squares fit of `positive` on `x`, as the first and last x of
    each constant block with its value (np.interp then interpolates linearly between blocks
    and holds the end values outside), rounded to `DECIMALS`."""
    order = np.argsort(x, kind="stable")
    xs, target = x[order], positive[order].astype(np.float64)
    unique, first, weight = np.unique(xs, return_index=True, return_counts=True)
    means = np.add.reduceat(target, first) / weight
    values, sizes = _pool_adjacent_violators(means, weight.astype(np.float64))
    ends = np.cumsum(sizes)
    starts = ends - sizes
    points_x = np.column_stack([unique[starts], unique[ends - 1]]).ravel()
    points_y = np.repeat(values, 2)
    return (
        [round(float(v), DECIMALS) for v in points_x],
        [round(float(v), DECIMALS) for v in points_y],
    )


def _pool_adjacent_violators(
    y: FloatArray, w: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Weighted isotonic (non-decreasing) regression of `y`: the blocks' values and sizes (in
    points of `y`). Each new point starts a block; while the last block's value is below the
    one before it, the two merge into their weighted mean."""
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        values.append(value)
        weights.append(weight)
        sizes.append(1)
        while len(values) > 1 and values[-2] >= values[-1]:
            total = weights[-2] + weights[-1]
            values[-2] = (values[-2] * weights[-2] + values[-1] * weights[-1]) / total
            weights[-2] = total
            sizes[-2] += sizes[-1]
            del values[-1], weights[-1], sizes[-1]
    return np.array(values), np.array(sizes, dtype=np.int64)


def _check_inputs(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must have shape (n, k) with k >= 2, got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("probabilities must have at least one row, got 0")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must have shape ({p.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= p.shape[1]))
    if bad.size:
        raise ValueError(
            f"labels must be in [0, {p.shape[1]}), got {int(y[bad[0]])} at row {int(bad[0])}"
        )
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must be finite and in [0, 1]")
    sums = p.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _SUM_TOLERANCE)
    if off.size:
        row = int(off[0])
        raise ValueError(
            f"probability rows must sum to 1 (within {_SUM_TOLERANCE}), row {row} sums to "
            f"{float(sums[row]):.6g}"
        )
    return p, y.astype(np.int64)


def _check_map(label: str, xs: list[float], ys: list[float]) -> tuple[FloatArray, FloatArray]:
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or x.shape != y.shape:
        raise ValueError(f"isotonic map of {label!r} needs as many x as y points, at least one")
    if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
        raise ValueError(f"isotonic map of {label!r} must be non-decreasing in x and y")
    if not (np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()):
        raise ValueError(f"isotonic map of {label!r} must have y values in [0, 1]")
    return x, y


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
