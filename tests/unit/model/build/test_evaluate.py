import pytest

from sentimon.model.build.evaluate import score

LABELS = ("negative", "neutral", "positive")


def test_known_answer() -> None:
    truth = [0, 0, 1, 1, 2, 2, 2, 2]
    predicted = [0, 1, 1, 2, 2, 2, 2, 0]
    s = score(LABELS, truth, predicted)
    assert s.n == 8
    assert s.accuracy == pytest.approx(5 / 8)
    assert s.confusion == [[1, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert s.f1 == pytest.approx({"negative": 0.5, "neutral": 0.5, "positive": 0.75})
    assert s.macro_f1 == pytest.approx((0.5 + 0.5 + 0.75) / 3)


def test_a_class_never_predicted_has_f1_zero() -> None:
    s = score(LABELS, [0, 1, 2], [0, 0, 2])
    assert s.f1["neutral"] == 0.0


def test_mismatched_or_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        score(LABELS, [0, 1], [0])
    with pytest.raises(ValueError, match="nothing to score"):
        score(LABELS, [], [])
