"""The drift report from the command line and over the REST API of a live server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from _drift_data import CHANGED, frame
from modelyard.cli._app import app

runner = CliRunner(env={"COLUMNS": "250"})


def test_the_cli_compares_two_files_and_writes_the_html_report(tmp_path: Path) -> None:
    frame(3_000, seed=1).to_parquet(tmp_path / "reference.parquet")
    frame(3_000, seed=2, changed=True).to_csv(tmp_path / "current.csv", index=False)
    html = tmp_path / "drift.html"
    args = ["monitor", "drift", str(tmp_path / "reference.parquet"), str(tmp_path / "current.csv")]
    result = runner.invoke(app, [*args, "--html", str(html), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["drifted_columns"]) == sorted(CHANGED)
    assert "Drift report" in html.read_text(encoding="utf-8")
    table = runner.invoke(app, [*args, "--no-multivariate"])
    assert table.exit_code == 0 and "DRIFTED" in table.stdout and "normal_b" in table.stdout


def test_the_cli_refuses_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    result = runner.invoke(app, ["monitor", "drift", str(tmp_path / "a.txt"), str(tmp_path)])
    assert "name it .parquet, .pq or .csv" in str(result.exception)


def test_the_rest_api_answers_a_drift_report_as_json_or_html(live_server: str) -> None:
    reference, current = frame(1_000, seed=1), frame(1_000, seed=2, changed=True)

    def table(data: object) -> dict[str, object]:
        split = json.loads(data.to_json(orient="split", index=False))  # type: ignore[attr-defined]
        return {"columns": split["columns"], "data": split["data"]}

    body = {"reference": table(reference), "current": table(current), "multivariate": False}
    answer = httpx.post(f"{live_server}/api/v1/monitoring/drift", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["drifted_columns"]) >= {"normal_b", "channel"}
    page = httpx.post(
        f"{live_server}/api/v1/monitoring/drift", params={"format": "html"}, json=body, timeout=60
    )
    assert page.headers["content-type"].startswith("text/html")
    bad = {**body, "current": {"columns": ["x"], "data": [[1.0]]}}
    refused = httpx.post(f"{live_server}/api/v1/monitoring/drift", json=bad, timeout=60)
    assert refused.status_code == 400
    assert "current lacks column" in refused.json()["error"]["message"]
