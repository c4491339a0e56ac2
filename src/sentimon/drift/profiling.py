"""Build a reference profile for any served model from texts, labelled or not.

Label shares and the confidence and input-length buckets need only texts. The accuracy, the
confusion matrix (for the label-shift estimate) and the calibration need labels; without them
those parts are left out and the profile says so. The calibration is fitted on other texts
than the ones the profile describes (a validation split, or a third of a single labelled
file), and its effect is measured on the profile's own texts, which it never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sentimon.drift.calibration import Calibration, expected_calibration_error, fit_calibration
from sentimon.drift.reference import (
    CONFIDENCE_HISTOGRAM,
    TOKENS_HISTOGRAM,
    CalibrationCheck,
    Labelled,
    ReferenceProfile,
    bucket_shares,
)
from sentimon.model.base import Prediction, SentimentModel

CHUNK = 64
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    labels: list[str] | None = None
    """The right label of each text, or None for unlabelled texts."""
    name: str = "texts"


def hold_out(texts: Texts, share: float = 1 / 3) -> tuple[Texts, Texts]:
    """Split labelled texts into (calibration, reference) by a hash of each text, so the
    same file always splits the same way and a text never lands on both sides."""
    calibration, reference = (
        Texts([], [], f"{texts.name}, calibration third"),
        Texts([], [], f"{texts.name}, the other two thirds"),
    )
    labels = texts.labels or [""] * len(texts.texts)
    for text, label in zip(texts.texts, labels, strict=True):
        digest = hashlib.sha256(text.encode()).digest()
        side = calibration if digest[0] < 256 * share else reference
        side.texts.append(text)
        assert side.labels is not None
        side.labels.append(label)
    return calibration, reference


def predict_all(
    model: SentimentModel, texts: Sequence[str], progress: Progress | None = None
) -> list[Prediction]:
    out: list[Prediction] = []
    for start in range(0, len(texts), CHUNK):
        out.extend(model.predict(texts[start : start + CHUNK]))
        if progress:
            progress(len(out), len(texts))
    return out


def build_profile(
    model: SentimentModel,
    reference: Texts,
    calibration: Texts | None = None,
    description: str | None = None,
    progress: Progress | None = None,
) -> ReferenceProfile:
    """The profile of `model` on `reference`; the calibration is fitted on `calibration`
    (labelled). Raises ValueError for labels the model does not have or no texts."""
    info = model.info
    labels = info.labels
    if not reference.texts:
        raise ValueError("no texts to build a reference profile from")
    for part in (reference, calibration):
        if part is not None and part.labels is not None:
            unknown = sorted(set(part.labels) - set(labels))
            if unknown:
                raise ValueError(
                    f"{part.name}: labels {unknown} are not the model's labels {list(labels)}"
                )
    predictions = predict_all(model, reference.texts, progress)
    n = len(predictions)
    skipped = []
    labelled = None
    if reference.labels is not None:
        labelled = _labelled(labels, predictions, reference.labels)
    else:
        skipped.append(
            "accuracy, confusion matrix and label-shift estimate: the texts have no labels"
        )
    fitted: Calibration | None = None
    check = None
    if calibration is not None and calibration.labels is not None and calibration.texts:
        calibration_predictions = predict_all(model, calibration.texts)
        fitted = fit_calibration(
            _probabilities(labels, calibration_predictions),
            np.array([labels.index(label) for label in calibration.labels]),
            labels,
            fitted_on=f"{calibration.name} ({len(calibration.texts)} texts)",
        )
        if reference.labels is not None:
            probs = _probabilities(labels, predictions)
            truth = np.array([labels.index(label) for label in reference.labels])
            check = CalibrationCheck(
                n=n,
                ece_before=expected_calibration_error(probs, truth),
                ece_after=expected_calibration_error(fitted.apply(probs), truth),
            )
    else:
        skipped.append(
            "calibration (the accuracy estimate uses raw probabilities): no labelled "
            "texts to fit it on"
        )
    return ReferenceProfile(
        model=info.name,
        revision=info.revision,
        labels=labels,
        n=n,
        description=description or f"predictions of this model on {reference.name}",
        label_shares={label: sum(p.label == label for p in predictions) / n for label in labels},
        histograms={
            CONFIDENCE_HISTOGRAM: bucket_shares(
                [p.score for p in predictions], CONFIDENCE_HISTOGRAM
            ),
            TOKENS_HISTOGRAM: bucket_shares(
                [float(p.tokens) for p in predictions], TOKENS_HISTOGRAM
            ),
        },
        calibration=fitted,
        labelled=labelled,
        skipped=tuple(skipped),
        calibration_check=check,
    )


def _labelled(
    labels: Sequence[str], predictions: Sequence[Prediction], truth: Sequence[str]
) -> Labelled:
    n = len(predictions)
    cells = {(p, a): 0 for p in labels for a in labels}
    for prediction, actual in zip(predictions, truth, strict=True):
        cells[(prediction.label, actual)] += 1
    correct = sum(cells[(label, label)] for label in labels)
    return Labelled(
        n=n, accuracy=correct / n, confusion={cell: count / n for cell, count in cells.items()}
    )


def _probabilities(labels: Sequence[str], predictions: Sequence[Prediction]) -> np.ndarray:
    return np.array(
        [[p.probabilities[label] for label in labels] for p in predictions], dtype=np.float64
    )
