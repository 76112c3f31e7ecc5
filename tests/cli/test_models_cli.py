"""`modelyard models …` over a real registry on a local home."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli._app import app
from modelyard.config import Settings
from modelyard.errors import InvalidInput, NotFound
from modelyard.registry import RestRegistry, open_registry
from modelyard.tracking import Metric, RunSpec, open_local_backend
from modelyard.tracking._datasets import describe_dataset
from modelyard.tracking._entities import now_ms

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "home"
    registry = open_registry(Settings(home=path))
    for _ in range(3):
        registry.create_version("churn", created_by="ana")
    registry.close()
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


def test_models_are_created_updated_shown_and_versions_tagged(home: Path) -> None:
    invoke(home, "models", "create", "fraud", "--description", "card abuse", "--tag", "team=risk")
    invoke(home, "models", "update", "fraud", "--tag", "tier=1", "--delete-tag", "team")
    shown = json.loads(invoke(home, "models", "show", "fraud", "--json"))
    assert (shown["description"], shown["tags"]) == ("card abuse", {"tier": "1"})
    invoke(home, "models", "update", "fraud", "--description", "")
    assert json.loads(invoke(home, "models", "show", "fraud", "--json"))["description"] is None
    invoke(home, "models", "alias", "churn", "champion", "2")
    invoke(home, "models", "protect", "churn", "champion")
    table = invoke(home, "models", "show", "churn")
    assert "champion→2" in table and "3" in table and "protected aliases" in table
    out = invoke(home, "models", "tag", "churn", "2", "stage=prod", "owner=bo")
    assert "owner=bo, stage=prod" in out
    invoke(home, "models", "tag", "churn", "2", "--delete-tag", "owner")
    versions = json.loads(invoke(home, "models", "versions", "churn", "--json"))
    assert versions[1]["tags"] == {"stage": "prod"}
    bad = runner.invoke(app, ["--home", str(home), "models", "tag", "churn", "2", "oops"])
    assert bad.exit_code != 0 and "key=value" in bad.output


@pytest.fixture
def trained(home: Path) -> tuple[Path, str, str]:
    """churn 4 and 5 trained by runs on the dataset 'customers'; (home, run 4, digest)."""
    backend = open_local_backend(Settings(home=home))
    experiment = backend.get_experiment("churn", create=True)
    run_ids, digest = [], ""
    for seed, auc in ((1, 0.8), (2, 0.9)):
        run = backend.create_run(RunSpec(experiment.id, f"run-{seed}", "ana", now_ms()))
        backend.log_batch(run.id, params={"seed": str(seed)}, metrics=[Metric("auc", auc, 0, 1)])
        data = pd.DataFrame({"x": np.arange(seed, seed + 5)})
        dataset = describe_dataset(data, name="customers", role="training")
        backend.log_dataset(run.id, dataset)
        run_ids.append(run.id)
        digest = digest or dataset.digest
    backend.close()
    registry = open_registry(Settings(home=home))
    for run_id in run_ids:
        registry.create_version("churn", created_by="ana", run_id=run_id, flavor="sklearn")
    registry.close()
    return home, run_ids[0], digest


def test_lineage_and_trained_on(trained: tuple[Path, str, str]) -> None:
    home, run_id, digest = trained
    lineage = json.loads(invoke(home, "models", "lineage", "churn", "4", "--json"))
    assert lineage["run_id"] == run_id
    assert [d["digest"] for d in lineage["datasets"]] == [digest]
    table = invoke(home, "models", "lineage", "churn", "4")
    assert run_id in table and digest[:12] in table
    found = json.loads(invoke(home, "models", "trained-on", digest, "--json"))
    assert [(v["name"], v["version"]) for v in found] == [("churn", 4)]
    by_name = invoke(home, "models", "trained-on", "customers")
    assert "versions trained on customers" in by_name
    missing = runner.invoke(app, ["--home", str(home), "models", "trained-on", "nope"])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotFound)


def test_search_compare_and_card(trained: tuple[Path, str, str], tmp_path: Path) -> None:
    home, _, _ = trained
    found = json.loads(
        invoke(home, "models", "search", "metrics.auc > 0.5", "--order-by", "metrics.auc desc",
               "--json")
    )  # fmt: skip
    assert [v["version"] for v in found] == [5, 4]
    assert "sklearn" in invoke(home, "models", "search", "flavor = 'sklearn'", "--name", "churn")
    bad = runner.invoke(app, ["--home", str(home), "models", "search", "version >"])
    assert isinstance(bad.exception, InvalidInput) and "position 9" in str(bad.exception)
    comparison = json.loads(invoke(home, "models", "compare", "churn", "4", "5", "--json"))
    assert comparison["params"] == {"seed": ["1", "2"]}
    table = invoke(home, "models", "compare", "churn", "4", "5")
    assert "param seed" in table and "auc" in table
    card = invoke(home, "models", "card", "churn", "5")
    assert card.startswith("# churn — version 5\n") and "| auc | 0.9 |" in card
    target = tmp_path / "card.md"
    invoke(home, "models", "card", "churn", "5", "-o", str(target))
    assert target.read_text(encoding="utf-8") == card


def test_models_commands_use_the_server_named_by_tracking_uri(
    live_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    registry = RestRegistry(live_server)
    for _ in range(2):
        registry.create_version(name, created_by="ana")
    registry.close()

    def remote(*args: str) -> str:
        result = runner.invoke(app, ["--tracking-uri", live_server, "models", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    remote("alias", name, "champion", "1", "--reason", "first")
    remote("alias", name, "champion", "2")
    remote("rollback", name, "champion", "--reason", "latency")
    listed = {m["name"]: m for m in json.loads(remote("list", "--json"))}
    assert (listed[name]["latest_version"], listed[name]["aliases"]) == (2, {"champion": 1})
    events = json.loads(remote("history", name, "--json"))
    assert [(e["kind"], e["to_version"], e["reason"]) for e in events] == [
        ("set", 1, "first"),
        ("move", 2, None),
        ("rollback", 1, "latency"),
    ]
    assert "latency" in remote("history", name)
    missing = runner.invoke(app, ["--tracking-uri", live_server, "models", "show", "no-such"])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotFound)
    assert "'no-such' does not exist" in missing.exception.message
    assert not (tmp_path / ".modelyard").exists()  # nothing was written locally


def test_manifest_prints_what_log_model_stored(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import modelyard as my

    x, y = load_iris(return_X_y=True, as_frame=True)
    my.configure(home=tmp_path)
    try:
        with my.start_run():
            my.log_model(LogisticRegression(max_iter=500).fit(x, y), "iris", input_example=x[:5])
        my.registry.create_version("iris")
    finally:
        my.configure(home=tmp_path / "unused")
    manifest = json.loads(invoke(tmp_path, "models", "manifest", "iris", "1"))
    assert manifest["flavor"] == "sklearn"
    assert [f["path"] for f in manifest["files"]] == ["model.skops"]
    assert [c["name"] for c in manifest["signature"]["columns"]] == list(x.columns)
    missing = runner.invoke(app, ["--home", str(tmp_path), "models", "manifest", "iris", "2"])
    assert isinstance(missing.exception, NotFound) and "no stored model" in str(missing.exception)
