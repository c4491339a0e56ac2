"""Checks on texts that depend on Settings (types and shapes are checked by the schemas)."""

from __future__ import annotations

from collections.abc import Sequence

from sentimon.config import Settings
from sentimon.errors import BatchTooLarge, EmptyBatch, EmptyText, InvalidInput, TextTooLong


def check_text(text: str, settings: Settings, field: str = "text") -> str:
    """Refuse texts the model must not see: blank, over the limit, or not encodable."""
    if not text.strip():
        raise EmptyText(f"{field} must not be empty or whitespace only")
    if len(text) > settings.max_text_chars:
        raise TextTooLong(
            f"{field} has {len(text)} characters; the limit is {settings.max_text_chars}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{field} contains an unpaired surrogate (\\ud800-\\udfff) and is not valid Unicode"
        ) from None
    return text


def check_batch(texts: Sequence[str], settings: Settings) -> list[str]:
    if not texts:
        raise EmptyBatch("texts must hold at least one text")
    if len(texts) > settings.max_batch_items:
        raise BatchTooLarge(
            f"texts holds {len(texts)} items; the limit is {settings.max_batch_items}"
        )
    return [check_text(t, settings, f"texts[{i}]") for i, t in enumerate(texts)]
