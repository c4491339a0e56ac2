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
