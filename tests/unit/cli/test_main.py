import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentimon.cli.main import app
from sentimon.config import Settings

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "predict", "model"):
        assert command in result.output


def test_serve_has_a_flag_for_every_setting_showing_its_env_var() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')} " in result.output, name
        assert f"(env: SENTIMON_{name.upper()})" in result.output, name


def test_out_of_range_flags_are_refused_with_the_reason() -> None:
    result = runner.invoke(app, ["serve", "--port", "70000"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "port: Input should be less than or equal to 65535" in result.output


@pytest.mark.slow
def test_predict_prints_a_table(tiny_roberta_cli: Path) -> None:
    result = runner.invoke(
        app,
        ["predict", "good day", "bad day", "--model", str(tiny_roberta_cli)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "good day" in result.output and "negative" in result.output


def test_predict_reports_an_unloadable_model() -> None:
    result = runner.invoke(app, ["predict", "hi", "--model", "/no/such"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "SENTIMON_MODEL='/no/such': no such folder" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_scores_a_file_into_csv_or_jsonl(
    tiny_roberta_cli: Path, tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "in.csv"
    texts = [f"text number {i}, with a comma" for i in range(150)]
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "body"])
        writer.writerows([i, t] for i, t in enumerate(texts))
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(
        app,
        ["predict", "--file", str(source), "--text-column", "body", "--output", str(out)],
        env={"COLUMNS": "200", "SENTIMON_MODEL": str(tiny_roberta_cli)},
    )
    assert result.exit_code == 0, result.output
    # The tiny model's LABEL_0..2 are read as negative, neutral, positive.
    assert "150 texts classified (negative " in result.output and str(out) in result.output
    if suffix == ".csv":
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    labels = ["negative", "neutral", "positive"]
    assert list(rows[0]) == ["text", "label", "score", *labels]
    for row in rows:
        probs = [float(row[label]) for label in labels]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
        assert float(row["score"]) == pytest.approx(max(probs), abs=1e-6)
        assert row["label"] == labels[probs.index(max(probs))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: give texts as arguments or --file, not both or neither"),
        (["a text", "--file", "{file}"], "not both or neither"),
        (["--file", "{file}", "--output", "out.xlsx"], "--output must end in .csv or .jsonl, got"),
        (["--file", "{file}", "--text-column", "body"], "has no column 'body' (its columns: text)"),
    ],
)
def test_predict_refuses_unclear_input_before_loading_a_model(
    tmp_path: Path, args: list[str], message: str
) -> None:
    file = tmp_path / "in.csv"
    file.write_text("text\nhello\n")
    result = runner.invoke(
        app,
        ["predict", *(a.replace("{file}", str(file)) for a in args), "--model", "/no/such"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 2
    assert message in result.output


@pytest.fixture(scope="module")
def tiny_roberta_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import build_tiny_roberta

    return build_tiny_roberta(
        tmp_path_factory.mktemp("cli-roberta"), {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    )


def test_traffic_refuses_a_remote_target_without_the_flag() -> None:
    result = runner.invoke(
        app, ["traffic", "--url", "http://10.0.0.1:8000"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "10.0.0.1 is not a loopback address" in result.output


def test_traffic_wants_one_load_mode() -> None:
    result = runner.invoke(app, ["traffic", "--rate", "5", "--concurrency", "2"])
    assert result.exit_code == 2
    assert "choose --rate (open loop) or --concurrency, not both" in result.output


def test_traffic_says_when_nothing_answers() -> None:
    result = runner.invoke(
        app,
        ["traffic", "--url", "http://127.0.0.1:1", "--rate", "20", "--duration", "0.3"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "connection failed" in result.output
    assert "no request reached http://127.0.0.1:1; is the API running?" in result.output
