"""Text preprocessing applied before every model, as the cardiffnlp model card does it."""

from __future__ import annotations


def preprocess(text: str) -> str:
    """Replace @mentions with `@user` and links with `http`, word by word.

    This is the rule of cardiffnlp/twitter-roberta-base-sentiment-latest's card (a word
    starting with `@` and longer than one character, a word starting with `http`), applied
    to every model so that user names and URLs never reach it. Runs of whitespace collapse
    to one space.
    """
    words = []
    for word in text.split():
        if word.startswith("@") and len(word) > 1:
            word = "@user"
        elif word.startswith("http"):
            word = "http"
        words.append(word)
    return " ".join(words)
