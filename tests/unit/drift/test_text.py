"""The text-embedding basis: whitening on its own split, the residual, the file round trip,
and the test's false alarms and power on simulated embeddings (seeded, no model)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sentimon.drift.reference import load_profile
from sentimon.drift.stats import residual_z, text_critical_values, text_drift_chi2
from sentimon.drift.text import TextBasis, embedding_kind, fit_basis
from sentimon.model.base import Int8Info, ModelInfo
from tests.fakes import FakeModel

HIDDEN = 64


def embeddings(rng: np.random.Generator, n: int, shift: np.ndarray | None = None) -> np.ndarray:
    """Correlated Gaussian rows with a decaying spectrum, like a sentence embedding's."""
    mixing = np.random.default_rng(99).normal(size=(HIDDEN, HIDDEN))
    scales = np.linspace(3.0, 0.2, HIDDEN)
    rows: np.ndarray = (rng.normal(size=(n, HIDDEN)) * scales) @ mixing / np.sqrt(HIDDEN)
    return rows + (shift if shift is not None else 0.0)


@pytest.fixture
def basis() -> TextBasis:
    rng = np.random.default_rng(0)
    return fit_basis(embeddings(rng, 400), embeddings(rng, 800), "fp32", "simulated")


def test_scores_are_whitened_on_the_scaling_split() -> None:
    rng = np.random.default_rng(1)
    scale = embeddings(rng, 800)
    basis = fit_basis(embeddings(rng, 400), scale, "fp32", "simulated")
    z, residual = basis.scorer().score(scale.astype(np.float32))
    assert basis.components == 32 and basis.n == 800
    assert np.abs(z.mean(axis=0)).max() < 1e-4
    assert np.abs(np.cov(z, rowvar=False) - np.eye(32)).max() < 1e-3
    assert residual.mean() == pytest.approx(basis.residual_mean, rel=1e-5)
    assert residual.std(ddof=1) == pytest.approx(basis.residual_sd, rel=1e-4)


def test_the_residual_is_what_the_directions_leave_out(basis: TextBasis) -> None:
    x = embeddings(np.random.default_rng(2), 5)
    centred = x - basis.mean
    outside = centred - centred @ basis.directions.T @ basis.directions
    _, residual = basis.scorer().score(x.astype(np.float32))
    assert residual == pytest.approx(np.linalg.norm(outside, axis=1), rel=1e-4)


def test_components_shrink_with_small_splits_and_too_few_texts_are_refused() -> None:
    rng = np.random.default_rng(3)
    assert fit_basis(embeddings(rng, 100), embeddings(rng, 200), "fp32", "x").components == 20
    with pytest.raises(ValueError) as error:
        fit_basis(embeddings(rng, 99), embeddings(rng, 500), "fp32", "x")
    assert str(error.value) == (
        "a text-embedding basis needs >= 100 texts to fit and >= 200 to scale on, got 99 and 500"
    )


def test_a_profile_keeps_its_bases_through_the_file(tmp_path: Path) -> None:
    from sentimon.drift.profiling import Texts, build_profile

    texts = [f"word{i % 37} other{i % 11} thing{i}" for i in range(450)]
    profile = build_profile(FakeModel(), Texts(texts))
    # Unlabelled texts and no calibration split: a third (by hash) fits, the rest scales.
    assert set(profile.text) == {"fp32"} and profile.text["fp32"].n == 312
    assert profile.text["fp32"].fitted_on == (
        "directions fitted on texts, calibration third (138), scaled on texts, the other two "
        "thirds (312)"
    )
    path = tmp_path / "p.json"
    profile.write(path)
    loaded = load_profile(path)
    assert loaded.text == profile.text
    rows = embeddings(np.random.default_rng(4), 3)[:, :48].astype(np.float32)
    before, after = profile.text["fp32"].scorer(), loaded.text["fp32"].scorer()
    np.testing.assert_allclose(before.score(rows)[0], after.score(rows)[0], atol=1e-4)


def test_the_embedding_kind_names_the_arithmetic() -> None:
    info = FakeModel().info
    assert embedding_kind(info) == "fp32"
    int8 = Int8Info("5", 7, "no-vnni", "avx2", "7-bit weights")
    assert embedding_kind(dataclasses.replace(info, int8=int8)) == "int8-5"
    on_vnni = dataclasses.replace(int8, cpu_class="vnni", kernel="avx512-vnni")
    assert embedding_kind(dataclasses.replace(info, int8=on_vnni)) == "int8-5"
    assert isinstance(info, ModelInfo)


def flagged(basis: TextBasis, rows: np.ndarray, alpha: float) -> bool:
    z, residual = basis.scorer().score(rows.astype(np.float32))
    n = len(rows)
    chi2 = text_drift_chi2(z.mean(axis=0).tolist(), n, basis.n)
    rz = residual_z(float(residual.mean()), n, basis.residual_mean, basis.residual_sd, basis.n)
    chi2_critical, z_critical = text_critical_values(alpha, basis.components)
    return chi2 > chi2_critical or abs(rz) > z_critical


def test_false_alarms_stay_at_the_level_and_a_new_topic_is_found() -> None:
    """Fresh reference splits per stream: the level holds for the reference's own noise too
    (scaling on the fitting split, or leaving out 1/n_reference, would not)."""
    rng = np.random.default_rng(5)
    topic = np.random.default_rng(6).normal(size=HIDDEN) * 3.0
    alarms = found = 0
    streams = 150
    for _ in range(streams):
        basis = fit_basis(embeddings(rng, 400), embeddings(rng, 800), "fp32", "simulated")
        alarms += flagged(basis, embeddings(rng, 1000), 0.01)
        mixed = np.concatenate([embeddings(rng, 900), embeddings(rng, 100, topic)])
        found += flagged(basis, mixed, 0.01)
    assert alarms / streams <= 0.03
    assert found / streams >= 0.9
