"""`modelyard serve` refuses what it cannot serve before it binds a port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli._app import app
from modelyard.errors import InvalidInput, NotFound, PermissionDenied
from modelyard.serving import ModelRef

runner = CliRunner(env={"COLUMNS": "250"})


def test_a_missing_model_fails_with_its_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "serve", "nope@champion"])
    assert isinstance(result.exception, NotFound)
    assert "nope" in str(result.exception)


def test_only_loopback_addresses_are_bound(tmp_path: Path) -> None:
    args = ["--home", str(tmp_path), "serve", "churn", "--host", "0.0.0.0"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, PermissionDenied)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path), "serve", "churn", "--runtime", "gpu"])
    assert result.exit_code != 0 and "--runtime" in result.output
    result = runner.invoke(app, ["--home", str(tmp_path), "serve", "churn", "--workers", "0"])
    assert result.exit_code != 0


def test_the_command_line_prints_the_error_on_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "--home", str(tmp_path), "serve", "a=b=c"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "not a model reference: 'a=b=c'" in done.stderr


@pytest.mark.parametrize(
    ("text", "served", "uri", "moves"),
    [
        ("churn@champion", "churn", "models:/churn@champion", True),
        ("models:/churn/3", "churn", "models:/churn/3", False),
        ("churn", "churn", "models:/churn", True),
        ("next=churn@challenger", "next", "models:/churn@challenger", True),
    ],
)
def test_model_references(text: str, served: str, uri: str, moves: bool) -> None:
    ref = ModelRef.parse(text)
    assert (ref.served_name, ref.uri, ref.moves) == (served, uri, moves)


@pytest.mark.parametrize("text", ["", "@champion", "churn/x", "churn@a@b", "a=b=c", "=churn"])
def test_bad_model_references(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a model reference"):
        ModelRef.parse(text)
