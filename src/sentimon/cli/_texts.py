"""Read texts (and optionally their labels) from a .txt, .csv or .jsonl file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sentimon.drift.profiling import Texts


class TextFileError(ValueError):
    """A file that cannot be read as texts, with the reason in words."""


def read_texts(path: Path, text_column: str = "text", label_column: str | None = None) -> Texts:
    """Texts of `path`: one per line (.txt), or the `text_column` of each CSV row or JSON
    line, with the `label_column` as labels when given. Blank texts are skipped."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            if label_column:
                raise TextFileError(f"{path}: a .txt file has no columns, so no labels")
            rows = [{text_column: line} for line in path.read_text().splitlines()]
        elif suffix == ".csv":
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        elif suffix in (".jsonl", ".ndjson"):
            rows = []
            for lineno, line in enumerate(path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise TextFileError(f"{path} line {lineno}: not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise TextFileError(f"{path} line {lineno}: not a JSON object")
                rows.append(row)
        else:
            raise TextFileError(f"{path}: expected a .txt, .csv or .jsonl file")
    except (OSError, UnicodeDecodeError) as exc:
        raise TextFileError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise TextFileError(f"{path} holds no texts")
    for column in (text_column, label_column):
        if column and column not in rows[0]:
            raise TextFileError(
                f"{path} has no column {column!r} (its columns: {', '.join(map(str, rows[0]))})"
            )
    texts: list[str] = []
    labels: list[str] = []
    for row in rows:
        text = row.get(text_column)
        if not isinstance(text, str) or not text.strip():
            continue
        texts.append(text)
        if label_column:
            labels.append(str(row.get(label_column, "")).strip().lower())
    if not texts:
        raise TextFileError(f"{path}: every {text_column!r} is empty")
    return Texts(texts, labels if label_column else None, path.name)
