import pytest

from sentimon.model.labels import normalize_labels


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "neutral", "positive")),
        ({0: "negative", 1: "neutral", 2: "positive"}, ("negative", "neutral", "positive")),
        ({0: "Negative", 1: "Neutral", 2: "Positive"}, ("negative", "neutral", "positive")),
        ({0: "NEG", 1: "NEU", 2: "POS"}, ("negative", "neutral", "positive")),
        ({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive")),
        (
            {1: "Joy", 0: "Anger", 2: "Sadness", 3: "Optimism"},
            ("anger", "joy", "sadness", "optimism"),
        ),
        (
            {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"},
            ("label_0", "label_1", "label_2", "label_3"),
        ),
    ],
)
def test_labels_are_lower_case_with_generic_names_resolved(
    id2label: dict[int, str], expected: tuple[str, ...]
) -> None:
    assert normalize_labels(id2label) == expected


@pytest.mark.parametrize(
    ("id2label", "message"),
    [
        ({}, "the model config has no id2label mapping"),
        ({0: "a", 2: "b"}, "class ids must be 0..1, got [0, 2]"),
        ({0: "Pos", 1: "positive"}, "labels are not distinct after normalisation"),
        ({0: " ", 1: "x"}, "a label is empty"),
    ],
)
def test_unusable_label_sets_are_refused(id2label: dict[int, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        normalize_labels(id2label)
