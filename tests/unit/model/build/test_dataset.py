import pytest

from sentimon.model.build.dataset import (
    label_counts,
    label_for,
    parse_ground_truth,
    stratified_split,
)

CONTENT = "\r\n".join(
    f"{i}\t{rating}\t@anonymous text {i} http://url_removed"
    for i, rating in enumerate([2.5, -1.2, 0.1, 0.5, -0.5, -0.49, 0.49, 3.9, -3.0, 0.0], start=1)
)


@pytest.mark.parametrize(
    ("rating", "label"),
    [(0.5, 2), (0.49, 1), (-0.49, 1), (-0.5, 0), (4.0, 2), (-4.0, 0), (0.0, 1)],
)
def test_label_rule_thresholds(rating: float, label: int) -> None:
    assert label_for(rating) == label


def test_parse_reads_id_rating_text_and_preprocesses() -> None:
    examples = parse_ground_truth("tweets", CONTENT)
    assert len(examples) == 10
    first = examples[0]
    assert (first.domain, first.id, first.rating, first.label) == ("tweets", "1", 2.5, 2)
    assert first.text == "@user text 1 http"


def test_parse_rejects_malformed_lines() -> None:
    with pytest.raises(ValueError, match="tweets line 2: expected 3 tab-separated fields"):
        parse_ground_truth("tweets", "1\t0.5\tok\nbroken line")


def test_split_is_disjoint_complete_stratified_and_reproducible() -> None:
    content = "\n".join(f"{i}\t{(i % 9) - 4}\ttext {i}" for i in range(900))
    examples = parse_ground_truth("tweets", content)
    split = stratified_split(examples, test=0.2, validation=0.1, seed=0)
    ids = [{e.id for e in part} for part in (split.train, split.validation, split.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(s) for s in ids) == 900
    whole, test = label_counts(examples), label_counts(split.test)
    for label, n in whole.items():
        assert test[label] == round(n * 0.2)
    again = stratified_split(list(reversed(examples)), test=0.2, validation=0.1, seed=0)
    assert [e.id for e in again.test] == [e.id for e in split.test]
    other = stratified_split(examples, test=0.2, validation=0.1, seed=1)
    assert {e.id for e in other.test} != ids[2]
