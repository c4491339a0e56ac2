"""`sentimon model profile` builds a usable reference profile for any model, labelled or not."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from sentimon.cli.main import app
from sentimon.drift.reference import load_profile

runner = CliRunner()
WORDS = ["good", "bad", "fine", "awful", "great", "meh", "love", "hate", "ok", "sad"]


def _csv(path: Path, n: int, labelled: bool = True) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"] if labelled else ["text"])
        for i in range(n):
            text = f"{WORDS[i % 10]} day number {i} with {WORDS[(i * 7) % 10]} news"
            label = ("negative", "neutral", "positive")[i % 3]
            writer.writerow([text, label] if labelled else [text])
    return path


def _profile(*args: str) -> tuple[int, str]:
    env = {"HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    result = runner.invoke(app, ["model", "profile", "--backend", "transformers", *args], env=env)
    return result.exit_code, result.output


def test_a_labelled_file_gives_accuracy_and_a_held_out_calibration(
    tiny_roberta: Path, tmp_path: Path
) -> None:
    texts = _csv(tmp_path / "texts.csv", 150)
    out = tmp_path / "profile.json"
    code, output = _profile(
        "--texts",
        str(texts),
        "--label-column",
        "label",
        "--model",
        str(tiny_roberta),
        "--out",
        str(out),
    )
    assert code == 0, output
    profile = load_profile(out)
    assert profile.labels == ("negative", "neutral", "positive")
    assert profile.labelled is not None and profile.calibration is not None
    assert profile.calibration_check is not None
    # A third of the texts (by a hash of each) fits the calibration, the rest is the profile.
    assert profile.n + profile.calibration.n == 150
    assert 70 <= profile.n <= 130
    assert profile.calibration.fitted_on.startswith("texts.csv, calibration third (")
    assert (
        sum(profile.histograms["sentiment_input_tokens"]) == 1.0
        or abs(sum(profile.histograms["sentiment_input_tokens"]) - 1) < 1e-9
    )
    assert f"{out}: {profile.summary()}" in " ".join(output.split())
    assert "calibration on the" in output


def test_unlabelled_texts_give_a_profile_that_says_what_it_lacks(
    tiny_roberta: Path, tmp_path: Path
) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"text number {i}"}) + "\n" for i in range(30)))
    out = tmp_path / "profile.json"
    code, output = _profile("--texts", str(texts), "--model", str(tiny_roberta), "--out", str(out))
    assert code == 0, output
    profile = load_profile(out)
    assert profile.n == 30
    assert profile.labelled is None and profile.calibration is None
    assert "skipped accuracy, confusion matrix and label-shift estimate" in " ".join(output.split())


def test_labels_the_model_does_not_have_are_refused(tiny_roberta: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\nhello there,joy\nhi,positive\nbye,negative\n")
    code, output = _profile(
        "--texts",
        str(texts),
        "--label-column",
        "label",
        "--model",
        str(tiny_roberta),
        "--calibration-texts",
        str(texts),
        "--out",
        str(tmp_path / "p.json"),
    )
    assert code == 2
    assert (
        "error: texts.csv: labels ['joy'] are not the model's labels "
        "['negative', 'neutral', 'positive']" in " ".join(output.split())
    )
    assert not (tmp_path / "p.json").exists()


def test_a_missing_column_names_the_columns_there_are(tiny_roberta: Path, tmp_path: Path) -> None:
    texts = _csv(tmp_path / "texts.csv", 5)
    code, output = _profile(
        "--texts",
        str(texts),
        "--label-column",
        "sentiment",
        "--model",
        str(tiny_roberta),
    )
    assert code == 2
    assert f"error: {texts} has no column 'sentiment' (its columns: text, label)" in " ".join(
        output.split()
    )
