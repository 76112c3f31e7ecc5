"""`modelyard data …` on a home holding two versions of a dataset, a model trained on the
first and a deployment of it: every command in JSON and for people; a file that breaks the
schema prints its violations and exits 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner, Result

import modelyard as my
from _monitored import configured
from modelyard.cli._app import app

runner = CliRunner(env={"COLUMNS": "250"})


def frame(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"total": rng.normal(size=rows), "months": rng.integers(1, 60, rows)})
    data["plan"] = rng.choice(["basic", "pro"], rows)
    return data


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data-cli") / "home"
    with configured(path):
        train = frame()
        my.data.log_dataset(train, name="train", lineage={"feature_views": [{"name": "spend"}]})
        my.data.log_dataset(frame(seed=1).assign(months=lambda f: f["months"] * 2), name="train")
        with my.start_run("fit") as run:
            run.log_dataset(train, "train")
            model = LogisticRegression().fit(train[["total", "months"]], train["plan"] == "pro")
            my.log_model(model, "churn", run=run, input_example=train[["total", "months"]])
        my.rollout.deploy("live", strategy="single", model="churn/1")
    return path


def invoke(home: Path, *args: str) -> Result:
    result = runner.invoke(app, ["--home", str(home), "data", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cli(home: Path, *args: str) -> str:
    result = invoke(home, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(cli(home, *args, "--json"))


def test_list_shows_latest_versions_and_every_version_of_one(home: Path) -> None:
    assert [(d["name"], d["version"]) for d in cli_json(home, "list")] == [("train", 2)]
    assert [d["version"] for d in cli_json(home, "list", "train")] == [1, 2]
    assert "train" in cli(home, "list")


def test_show_prints_the_schema_with_ranges(home: Path) -> None:
    shown = cli_json(home, "show", "train@1")
    assert [c["name"] for c in shown["schema"]] == ["total", "months", "plan"]
    assert shown["lineage"] == {"feature_views": [{"name": "spend"}]}
    assert "profile" in shown
    text = cli(home, "show", "train@1")
    assert "train@1: 120 rows, 3 columns" in text and "basic, pro" in text


def test_compare_shows_range_changes_and_drift(home: Path) -> None:
    compared = cli_json(home, "compare", "train", "1", "2")
    assert any("column 'months': range" in line for line in compared["changes"])
    assert compared["drift"]["months"]["mean_change"] > 20
    assert "train 1 → 2: rows 120 → 120" in cli(home, "compare", "train", "1", "2")


def test_validate_prints_violations_and_exits_1(home: Path, tmp_path: Path) -> None:
    bad = frame(10).drop(columns=["plan"])
    bad.loc[[0, 1], "months"] = 500
    bad.to_csv(tmp_path / "bad.csv", index=False)
    result = invoke(home, "validate", str(tmp_path / "bad.csv"), "--against", "train@1")
    assert result.exit_code == 1
    assert "2 violation(s)" in result.stdout
    assert "missing_column" in result.stdout and "range" in result.stdout
    as_json = invoke(home, "validate", str(tmp_path / "bad.csv"), "--against", "train@1", "--json")
    kinds = {(v["column"], v["kind"], v["count"]) for v in json.loads(as_json.stdout)["violations"]}
    assert kinds == {("plan", "missing_column", 10), ("months", "range", 2)}
    frame(10).to_parquet(tmp_path / "good.parquet")
    assert "ok" in cli(home, "validate", str(tmp_path / "good.parquet"), "--against", "train@1")


def test_lineage_of_a_model_and_of_a_dataset(home: Path) -> None:
    graph = cli_json(home, "lineage", "churn", "1")
    ids = {n["id"] for n in graph["nodes"]}
    assert {"dataset_version:train@1", "feature_view:spend", "deployment:live"} <= ids
    text = cli(home, "lineage", "churn", "1")
    assert text.startswith("model_version churn/1")
    assert "used → dataset_version train@1" in text
    by_dataset = cli_json(home, "lineage", "train@1", "--dataset")
    assert "model_version:churn/1" in {n["id"] for n in by_dataset["nodes"]}


def test_log_stores_a_file_once(home: Path, tmp_path: Path) -> None:
    frame(30, seed=5).to_parquet(tmp_path / "new.parquet")
    first = cli_json(home, "log", str(tmp_path / "new.parquet"), "--name", "fresh")
    again = cli_json(home, "log", str(tmp_path / "new.parquet"), "--name", "fresh")
    assert first["version"] == again["version"] == 1
    args = ["log", str(tmp_path / "new.parquet"), "--name", "x", "--lineage", "[1]"]
    result = runner.invoke(app, ["--home", str(home), "data", *args])
    assert result.exit_code != 0 and "must be a JSON object" in str(result.exception)
