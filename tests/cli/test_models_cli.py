"""`modelyard models …` over a real registry on a local home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli._app import app
from modelyard.config import Settings
from modelyard.registry import open_registry

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "home"
    registry = open_registry(Settings(home=path))
    for _ in range(3):
        registry.create_version("churn", created_by="ana")
    registry.metadata.close()
    return path


def invoke(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_alias_moves_approvals_and_rollbacks_show_in_history(home: Path) -> None:
    invoke(home, "models", "protect", "churn", "champion")
    refused = runner.invoke(app, ["--home", str(home), "models", "alias", "churn", "champion", "1"])
    assert refused.exit_code != 0
    invoke(home, "models", "approve", "churn", "1", "--comment", "looks good")
    invoke(home, "models", "approve", "churn", "2")
    invoke(home, "models", "alias", "churn", "champion", "1", "--reason", "first")
    invoke(home, "models", "alias", "churn", "champion", "2", "--reason", "better")
    invoke(home, "models", "rollback", "churn", "champion", "--reason", "latency")
    events = json.loads(invoke(home, "models", "history", "churn", "--json"))
    assert [(e["kind"], e["from_version"], e["to_version"]) for e in events] == [
        ("approved", None, None),
        ("approved", None, None),
        ("set", None, 1),
        ("move", 1, 2),
        ("rollback", 2, 1),
    ]
    assert events[-1]["reason"] == "latency"
    table = invoke(home, "models", "history", "churn")
    assert "rollback" in table and "latency" in table
    models = json.loads(invoke(home, "models", "list", "--json"))
    assert models[0]["aliases"] == {"champion": 1}


def test_versions_list_and_archive(home: Path) -> None:
    invoke(home, "models", "alias", "churn", "staging", "3")
    held = runner.invoke(app, ["--home", str(home), "models", "archive", "churn", "3"])
    assert held.exit_code != 0
    invoke(home, "models", "archive", "churn", "1")
    versions = json.loads(invoke(home, "models", "versions", "churn", "--json"))
    assert [(v["version"], v["status"], v["aliases"]) for v in versions] == [
        (1, "archived", []),
        (2, "ready", []),
        (3, "ready", ["staging"]),
    ]
    invoke(home, "models", "unalias", "churn", "staging")
    assert "staging" not in invoke(home, "models", "versions", "churn")
