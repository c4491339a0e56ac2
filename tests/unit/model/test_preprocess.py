import pytest

from sentimon.model.preprocess import preprocess


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@anonymous thanks!", "@user thanks!"),
        ("see http://url_removed now", "see http now"),
        ("https://t.co/abc and @a_b:", "http and @user"),
        ("a lone @ sign", "a lone @ sign"),
        ("email me: x@y.com", "email me: x@y.com"),
        ("  spaced \t out \n text ", "spaced out text"),
        ("no change", "no change"),
    ],
)
def test_mentions_and_links_are_replaced_as_cardiffnlp_does(text: str, expected: str) -> None:
    assert preprocess(text) == expected
