"""`modelyard predictions …` over a real prediction log (database or Parquet) on a local home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli._app import app
from modelyard.config import Settings
from modelyard.errors import Conflict, NotFound
from modelyard.serving import PredictionRow, new_ids, open_prediction_log

runner = CliRunner(env={"COLUMNS": "250"})
T0 = 1_714_563_000_000  # 2024-05-01 11:30 UTC


@pytest.fixture(params=["db", "parquet"])
def home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[str]]:
    """A home whose prediction log (database or Parquet) holds 30 predictions of churn,
    one a minute from T0, versions 1 and 2 alternating; and their ids, oldest first."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG", request.param)
    path = tmp_path / "home"
    log = open_prediction_log(Settings(home=path))
    rows = []
    for k in range(30):
        at = T0 + k * 60_000
        (prediction_id,) = new_ids(1, at)
        rows.append(
            PredictionRow(prediction_id, "churn", 1 + k % 2, at, 2.0, '{"x": 1}', f'{{"p": {k}}}')
        )
    log.write(rows)
    log.close()
    return path, [r.id for r in rows]


def invoke(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), "predictions", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_list_shows_the_most_recent_predictions(home: tuple[Path, list[str]]) -> None:
    path, ids = home
    listed = json.loads(invoke(path, "list", "churn", "--json"))
    assert [r["prediction_id"] for r in listed] == ids[-20:]
    assert listed[-1]["outputs"] == {"p": 29} and listed[-1]["at_ms"] == T0 + 29 * 60_000
    since = json.loads(
        invoke(path, "list", "churn", "--version", "1", "--since", "2024-05-01T11:50:00Z", "--json")
    )
    assert [r["prediction_id"] for r in since] == ids[20::2]
    table = invoke(path, "list", "churn", "--limit", "3")
    assert ids[-1] in table and ids[-4] not in table
    assert '{"p":29}' in table and "2.0 ms" in table and "2024-05-01 11:59:00" in table


def test_count(home: tuple[Path, list[str]]) -> None:
    path, _ = home
    assert invoke(path, "count", "churn").strip() == "30"
    assert invoke(path, "count", "churn", "--version", "2").strip() == "15"
    assert json.loads(invoke(path, "count", "other", "--json"))["count"] == 0


def test_feedback_takes_json_or_text_labels(home: tuple[Path, list[str]]) -> None:
    path, ids = home
    recorded = json.loads(invoke(path, "feedback", ids[0], "1", "--json"))
    assert (recorded["label"], recorded["model"], recorded["version"]) == (1, "churn", 1)
    assert "recorded [1,0] for" in invoke(path, "feedback", ids[1], "[1, 0]")
    invoke(path, "feedback", ids[2], "churned")
    invoke(path, "feedback", ids[3], '"2"')
    listed = json.loads(invoke(path, "feedback-list", "churn", "--json"))
    assert {r["prediction_id"]: r["label"] for r in listed} == {
        ids[0]: 1,
        ids[1]: [1, 0],
        ids[2]: "churned",
        ids[3]: "2",
    }
    assert [
        r["prediction_id"]
        for r in json.loads(invoke(path, "feedback-list", "churn", "--version", "2", "--json"))
    ] == [ids[1], ids[3]]
    assert "churned" in invoke(path, "feedback-list", "churn")


def test_feedback_errors_exit_non_zero(home: tuple[Path, list[str]]) -> None:
    path, ids = home
    base = ["--home", str(path), "predictions", "feedback"]
    missing = runner.invoke(app, [*base, new_ids(1)[0], "1"])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotFound)
    invoke(path, "feedback", ids[0], "1")
    again = runner.invoke(app, [*base, ids[0], "0"])
    assert again.exit_code != 0 and isinstance(again.exception, Conflict)
    bad_time = runner.invoke(
        app, ["--home", str(path), "predictions", "list", "churn", "--since", "yesterday"]
    )
    assert bad_time.exit_code != 0 and "ISO 8601" in bad_time.output
