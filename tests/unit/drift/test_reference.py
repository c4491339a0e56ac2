"""The reference profile: its file format, its checks, and its merged buckets."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from sentimon.drift.reference import (
    CONFIDENCE_HISTOGRAM,
    PROFILE_FILE,
    TOKENS_HISTOGRAM,
    Bin,
    ProfileError,
    bucket_shares,
    check_matches,
    find_profile,
    load_profile,
)
from sentimon.model.base import ModelInfo

BUNDLED = Path(__file__).resolve().parents[3] / "src" / "sentimon" / "bundled_model"


def _info(**changes: object) -> ModelInfo:
    info = ModelInfo(
        name="sentimon-minilm-vader",
        revision="v1-2f5e9f7192f5",
        backend="onnx-int8",
        labels=("negative", "neutral", "positive"),
        max_tokens=128,
        source=str(BUNDLED),
    )
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


def test_the_bundled_profile_loads_and_matches_the_bundled_model() -> None:
    profile = find_profile(_info(), None)
    assert profile.path == BUNDLED / PROFILE_FILE
    assert profile.n == 840
    assert profile.label_shares == pytest.approx(
        {"negative": 0.278571, "neutral": 0.161905, "positive": 0.559524}
    )
    assert profile.labelled is not None
    assert sum(profile.labelled.confusion.values()) == pytest.approx(1.0, abs=1e-5)
    diagonal = sum(profile.labelled.confusion[(c, c)] for c in profile.labels)
    assert diagonal == pytest.approx(profile.labelled.accuracy, abs=1e-5)
    assert profile.calibration is not None and profile.calibration.method == "temperature"
    assert profile.skipped == ()


def test_merged_bins_hold_at_least_two_percent_and_cover_every_bucket() -> None:
    profile = load_profile(BUNDLED / PROFILE_FILE)
    for histogram in (CONFIDENCE_HISTOGRAM, TOKENS_HISTOGRAM):
        bins = profile.bins(histogram)
        assert bins[0].lower == "-Inf"
        assert bins[-1].le == "+Inf"
        assert all(b.share >= 0.02 for b in bins)
        assert all(a.le == b.lower for a, b in zip(bins, bins[1:], strict=False))
        assert sum(b.share for b in bins) == pytest.approx(1.0, abs=1e-5)
    # Nothing below 0.5 or above 0.99 in the reference: the tails merge into their neighbours.
    assert profile.bins(CONFIDENCE_HISTOGRAM)[0] == Bin("-Inf", "0.6", 0.097619)
    assert profile.bins(CONFIDENCE_HISTOGRAM)[-1] == Bin("0.95", "+Inf", 0.475)


def test_bucket_shares_follow_prometheus_le_semantics() -> None:
    # A value equal to an edge belongs to that edge's bucket, as `observe()` puts it.
    shares = bucket_shares([4.0, 4.5, 8.0, 600.0], TOKENS_HISTOGRAM)
    assert shares[:3] == (0.25, 0.5, 0.0)
    assert shares[-1] == 0.25
    assert math.fsum(shares) == 1.0


def test_a_round_trip_through_the_file_changes_nothing(tmp_path: Path) -> None:
    profile = load_profile(BUNDLED / PROFILE_FILE)
    profile.write(tmp_path / PROFILE_FILE)
    again = load_profile(tmp_path / PROFILE_FILE)
    assert dataclasses.replace(again, path=None) == dataclasses.replace(profile, path=None)


def _write(tmp_path: Path, change: dict[str, object]) -> Path:
    data = json.loads((BUNDLED / PROFILE_FILE).read_text())
    data.update(change)
    path = tmp_path / PROFILE_FILE
    path.write_text(json.dumps(data))
    return path


def test_an_old_profile_is_refused_with_the_command_that_rebuilds_it(tmp_path: Path) -> None:
    path = _write(tmp_path, {"version": 1})
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value) == (
        f"{path} is a version 1 profile; drift needs version 2: "
        "rebuild it with `sentimon model profile`"
    )


def test_a_profile_on_other_bucket_edges_is_refused(tmp_path: Path) -> None:
    data = json.loads((BUNDLED / PROFILE_FILE).read_text())
    data["histograms"][TOKENS_HISTOGRAM]["le"][0] = "5.0"
    path = tmp_path / PROFILE_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="sentiment_input_tokens shares are on the edges"):
        load_profile(path)


def test_unreadable_and_malformed_profiles_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path / "missing.json")
    assert str(err.value) == f"no reference profile at {tmp_path / 'missing.json'}"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ProfileError, match="cannot read the reference profile"):
        load_profile(broken)
    path = _write(tmp_path, {"labels": None})
    with pytest.raises(ProfileError, match="malformed reference profile"):
        load_profile(path)


def test_a_profile_of_another_revision_or_labels_is_refused() -> None:
    profile = load_profile(BUNDLED / PROFILE_FILE)
    with pytest.raises(ProfileError) as err:
        check_matches(profile, _info(revision="v2-abc"))
    assert str(err.value) == (
        f"the reference profile {BUNDLED / PROFILE_FILE} was built for sentimon-minilm-vader "
        "revision v1-2f5e9f7192f5, but revision v2-abc is serving: rebuild it with "
        "`sentimon model profile`"
    )
    with pytest.raises(ProfileError, match="has labels"):
        check_matches(profile, _info(labels=("neg", "pos")))


def test_a_hub_model_needs_a_configured_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        find_profile(_info(source="cardiffnlp/twitter-roberta-base-sentiment-latest"), None)
    assert str(err.value) == (
        "no reference profile: cardiffnlp/twitter-roberta-base-sentiment-latest is a hub "
        "model; build one with `sentimon model profile` and set SENTIMON_REFERENCE_PROFILE"
    )
    configured = tmp_path / "elsewhere.json"
    configured.write_text((BUNDLED / PROFILE_FILE).read_text())
    assert find_profile(_info(source="some/hub-id"), configured).path == configured


def test_bbse_weights_reproduce_the_reference_accuracy_at_the_reference_mix() -> None:
    profile = load_profile(BUNDLED / PROFILE_FILE)
    weights = profile.bbse_weights()
    assert profile.labelled is not None
    estimate = sum(weights[c] * profile.label_shares[c] for c in profile.labels)
    assert estimate == pytest.approx(profile.labelled.accuracy, abs=1e-4)
