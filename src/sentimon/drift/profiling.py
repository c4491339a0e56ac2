"""Build a reference profile for any served model from texts, labelled or not.

Label shares and the confidence and input-length buckets need only texts. The accuracy, the
confusion matrix (for the label-shift estimate) and the calibration need labels; without them
those parts are left out and the profile says so. The calibration is fitted on other texts
than the ones the profile describes (a validation split, or a third of a single labelled
file), and its effect is measured on the profile's own texts, which it never saw. The text-drift
basis is fitted on those same other texts and scaled on the profile's (`sentimon.drift.text`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentimon.drift.calibration import Calibration, expected_calibration_error, fit_calibration
from sentimon.drift.reference import (
    CONFIDENCE_HISTOGRAM,
    TOKENS_HISTOGRAM,
    CalibrationCheck,
    Labelled,
    ReferenceProfile,
    bucket_shares,
)
from sentimon.drift.text import TextBasis, embedding_kind, fit_basis
from sentimon.model.base import Prediction, SentimentModel, to_prediction

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
    return classify(model, texts, progress)[0]


def classify(
    model: SentimentModel, texts: Sequence[str], progress: Progress | None = None
) -> tuple[list[Prediction], npt.NDArray[np.float32]]:
    """Each text's prediction and sentence embedding (rows x hidden), in chunks."""
    labels = model.info.labels
    out: list[Prediction] = []
    embeddings = []
    for start in range(0, len(texts), CHUNK):
        ids = model.tokenize(texts[start : start + CHUNK])
        probs, pooled = model.infer_with_embeddings(ids)
        out += [to_prediction(labels, p, len(row)) for p, row in zip(probs, ids, strict=True)]
        embeddings.append(pooled)
        if progress:
            progress(len(out), len(texts))
    if not embeddings:
        return out, np.zeros((0, 0), dtype=np.float32)
    return out, np.concatenate(embeddings)


def text_bases(
    models: Sequence[SentimentModel],
    reference: Texts,
    calibration: Texts | None,
    first: npt.NDArray[np.float32] | None = None,
) -> tuple[dict[str, TextBasis], list[str]]:
    """A text-embedding basis per model (one per embedding kind): directions fitted on the
    calibration texts (else a third of the reference texts, by hash), scaled on the
    reference texts (the other two thirds). `first`: the first model's embeddings of the
    reference texts, already computed. Returns the bases and what was skipped, in words."""
    if calibration is not None and calibration.texts:
        fit, scale, reused = calibration, reference, True
    else:
        fit, scale = hold_out(Texts(reference.texts, None, reference.name))
        reused = False
    described = f"directions fitted on {_counted(fit)}, scaled on {_counted(scale)}"
    bases: dict[str, TextBasis] = {}
    skipped: list[str] = []
    for i, model in enumerate(models):
        kind = embedding_kind(model.info)
        if kind in bases:
            continue
        scale_rows = first if i == 0 and reused and first is not None else None
        if scale_rows is None:
            scale_rows = classify(model, scale.texts)[1]
        try:
            bases[kind] = fit_basis(
                classify(model, fit.texts)[1],
                scale_rows,
                kind,
                described,
            )
        except ValueError as exc:
            skipped.append(f"text drift ({kind}): {exc}")
    return bases, skipped


def _counted(texts: Texts) -> str:
    """The name with its number of texts, unless the name already ends with it."""
    count = f"({len(texts.texts)})"
    return texts.name if texts.name.endswith(count) else f"{texts.name} {count}"


def build_profile(
    model: SentimentModel,
    reference: Texts,
    calibration: Texts | None = None,
    description: str | None = None,
    progress: Progress | None = None,
    text_models: Sequence[SentimentModel] = (),
) -> ReferenceProfile:
    """The profile of `model` on `reference`; the calibration is fitted on `calibration`
    (labelled). `text_models`: the same model served with other arithmetic (int8 on this
    CPU, fp32), each adding its own text-embedding basis. Raises ValueError for labels the
    model does not have or no texts."""
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
    predictions, embeddings = classify(model, reference.texts, progress)
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
    bases, text_skipped = text_bases([model, *text_models], reference, calibration, embeddings)
    skipped += text_skipped
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
        text=bases,
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
