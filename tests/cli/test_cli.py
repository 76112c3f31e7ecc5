"""The `modelyard` command as a user runs it: in-process with CliRunner, and end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import modelyard as my
from modelyard import __version__
from modelyard.cli._app import app
from modelyard.config import Settings
from modelyard.store import HEAD, ArtifactStore
from modelyard.tracking import _environment

# Wide enough that Rich never folds a run id or a digest across lines.
runner = CliRunner(env={"COLUMNS": "250"})

MODEL_BYTES = b"weights: 0.25, 0.5, 0.25\n" * 10


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No MODELYARD_* settings from outside; runs capture the git state of the working
    folder, so keep it out of this repository."""
    for name in [n for n in os.environ if n.startswith("MODELYARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A modelyard home the SDK logs into, and the CLI reads with `--home`."""
    path = tmp_path / "home"
    my.configure(home=path)
    yield path
    my.configure(home=tmp_path / "unused")


@dataclass(frozen=True)
class Seeded:
    home: Path
    lr_a: str
    lr_b: str
    rf: str
    other: str


@pytest.fixture
def seeded(home: Path, tmp_path: Path) -> Seeded:
    """Experiment `iris` (lr-a, lr-b, rf; rf has a NaN metric, lr-a an artifact), and `other`."""
    model = tmp_path / "model.txt"
    model.write_bytes(MODEL_BYTES)
    with my.start_run("iris", "lr-a") as lr_a:
        lr_a.log_params({"C": 1, "penalty": "l2"})
        lr_a.log_metrics({"auc": 0.81, "loss": 0.5})
        lr_a.log_artifact(model, "model")
    time.sleep(0.002)  # start times are in ms: runs started within one are ordered by id
    with my.start_run("iris", "lr-b") as lr_b:
        lr_b.log_params({"C": 10, "penalty": "l2"})
        lr_b.log_metrics({"auc": 0.92, "loss": 0.5})
    time.sleep(0.002)
    with my.start_run("iris", "rf") as rf:
        rf.log_params({"n_estimators": 100})
        rf.log_metrics({"auc": 0.88, "ece": float("nan")})
    with my.start_run("other", "x") as other:
        other.log_metric("auc", 0.99)
    return Seeded(home, lr_a.id, lr_b.id, rf.id, other.id)


def cli(home: Path, *args: str) -> Result:
    """`modelyard --home <home> args…` in this process; fails the test on a crash."""
    result = runner.invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cli_json(home: Path, *args: str) -> object:
    result = cli(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_modelyard(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m modelyard args…` in a fresh process, as a shell would run it (not a TTY)."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_") and k != "COLUMNS"
    }
    environment = {**inherited, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(process: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed: exactly one line on stderr, starting with 'error:'."""
    assert process.returncode != 0, process.stdout
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{process.stderr}"
    assert lines[0].startswith("error:"), process.stderr
    return lines[0]


def names(runs: object) -> list[str]:
    assert isinstance(runs, dict)
    return [run["name"] for run in runs["runs"]]


# -- version and info --------------------------------------------------------------------


def test_version_flag_prints_the_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"modelyard {__version__}\n"


def test_info_shows_schema_revision_store_urls_and_health(home: Path) -> None:
    result = cli(home, "info")
    assert result.exit_code == 0, result.output
    for expected in (
        "schema_revision",
        HEAD,
        Settings(home=home).resolved_db_url,
        Settings(home=home).resolved_artifacts_url,
        "health",
        "ok",
    ):
        assert expected in result.stdout


def test_info_json_shows_schema_revision_store_urls_and_health(home: Path) -> None:
    details = cli_json(home, "info")
    assert isinstance(details, dict)
    settings = Settings(home=home)
    assert details["schema_revision"] == HEAD
    assert details["db_url"] == settings.resolved_db_url
    assert details["artifacts"] == settings.resolved_artifacts_url
    assert details["health"] == "ok"
    assert details["version"] == __version__


# -- experiments ---------------------------------------------------------------------------


def test_experiments_list_shows_active_experiments(seeded: Seeded) -> None:
    result = cli(seeded.home, "experiments", "list")
    assert result.exit_code == 0, result.output
    assert "iris" in result.stdout and "other" in result.stdout
    listed = cli_json(seeded.home, "experiments", "list")
    assert isinstance(listed, list)
    assert [e["name"] for e in listed] == ["iris", "other"]
    assert {e["lifecycle"] for e in listed} == {"active"}


def test_experiments_list_view_deleted_shows_only_deleted_experiments(seeded: Seeded) -> None:
    my.delete_experiment("other")
    active = cli_json(seeded.home, "experiments", "list")
    deleted = cli_json(seeded.home, "experiments", "list", "--view", "deleted")
    every = cli_json(seeded.home, "experiments", "list", "--view", "all")
    assert isinstance(active, list) and isinstance(deleted, list) and isinstance(every, list)
    assert [e["name"] for e in active] == ["iris"]
    assert [(e["name"], e["lifecycle"]) for e in deleted] == [("other", "deleted")]
    assert [e["name"] for e in every] == ["iris", "other"]


# -- runs list -----------------------------------------------------------------------------


def test_runs_list_shows_runs_newest_first_with_their_metrics(seeded: Seeded) -> None:
    result = cli(seeded.home, "runs", "list", "-e", "iris")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index(seeded.rf) < out.index(seeded.lr_b) < out.index(seeded.lr_a)
    assert seeded.other not in out
    assert "auc" in out and "0.92" in out


def test_runs_list_experiment_option_is_repeatable_and_takes_names_or_ids(seeded: Seeded) -> None:
    iris_id = str(my.get_experiment("iris").id)
    assert sorted(names(cli_json(seeded.home, "runs", "list", "-e", iris_id))) == [
        "lr-a",
        "lr-b",
        "rf",
    ]
    both = cli_json(seeded.home, "runs", "list", "-e", "iris", "-e", "other")
    assert sorted(names(both)) == ["lr-a", "lr-b", "rf", "x"]


def test_runs_list_filter_keeps_matching_runs(seeded: Seeded) -> None:
    good = cli_json(seeded.home, "runs", "list", "-e", "iris", "--filter", "metrics.auc > 0.85")
    assert sorted(names(good)) == ["lr-b", "rf"]
    l2 = cli_json(seeded.home, "runs", "list", "-f", "params.penalty = 'l2' and params.C = '10'")
    assert names(l2) == ["lr-b"]


def test_runs_list_order_by_sorts_by_a_metric(seeded: Seeded) -> None:
    ascending = cli_json(seeded.home, "runs", "list", "-e", "iris", "--order-by", "metrics.auc")
    assert names(ascending) == ["lr-a", "rf", "lr-b"]
    descending = cli_json(seeded.home, "runs", "list", "-o", "metrics.auc desc")
    assert names(descending) == ["x", "lr-b", "rf", "lr-a"]


def test_runs_list_json_pages_with_next_page_token(seeded: Seeded) -> None:
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        extra = ["--page-token", token] if token else []
        page = cli_json(seeded.home, "runs", "list", "-o", "metrics.auc desc", "-n", "3", *extra)
        assert isinstance(page, dict)
        seen += names(page)
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
        assert len(page["runs"]) == 3
    assert pages == 2
    assert seen == ["x", "lr-b", "rf", "lr-a"]


def test_runs_list_table_prints_the_command_for_the_next_page(seeded: Seeded) -> None:
    first = cli(seeded.home, "runs", "list", "-e", "iris", "-n", "2")
    assert first.exit_code == 0, first.output
    match = re.search(r"more: --page-token (\S+)", first.stdout)
    assert match is not None, first.stdout
    assert seeded.rf in first.stdout and seeded.lr_b in first.stdout
    assert seeded.lr_a not in first.stdout
    second = cli(
        seeded.home, "runs", "list", "-e", "iris", "-n", "2", "--page-token", match.group(1)
    )
    assert second.exit_code == 0, second.output
    assert seeded.lr_a in second.stdout
    assert seeded.rf not in second.stdout
    assert "more:" not in second.stdout


def test_runs_list_json_parses_and_writes_nan_metrics_as_the_string_nan(seeded: Seeded) -> None:
    page = cli_json(seeded.home, "runs", "list", "-e", "iris")
    assert isinstance(page, dict)
    by_name = {run["name"]: run for run in page["runs"]}
    assert by_name["rf"]["metrics"]["ece"]["value"] == "NaN"
    assert by_name["rf"]["metrics"]["auc"]["value"] == 0.88
    assert page["next_page_token"] is None


# -- runs show -------------------------------------------------------------------------------


def test_runs_show_prints_params_metrics_and_how_to_rerun(seeded: Seeded) -> None:
    result = cli(seeded.home, "runs", "show", seeded.lr_a)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        f"run {seeded.lr_a}",
        "lr-a",
        "params",
        "penalty",
        "l2",
        "metrics (final)",
        "auc",
        "0.81",
        "artifacts",
        "model/model.txt",
        "re-run",
        f"modelyard runs show {seeded.lr_a} --requirements > requirements.txt",
    ):
        assert expected in out, expected


def test_runs_show_json_has_the_run_and_its_artifacts(seeded: Seeded) -> None:
    shown = cli_json(seeded.home, "runs", "show", seeded.lr_a)
    assert isinstance(shown, dict)
    assert shown["run"]["id"] == seeded.lr_a
    assert shown["run"]["params"] == {"C": "1", "penalty": "l2"}
    assert [a["path"] for a in shown["artifacts"]] == ["model/model.txt"]


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.email=test@example.com", "-c", "user.name=Test", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout with one committed file, as the working folder."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(path)
    return path


def test_runs_show_tells_how_to_rerun_from_the_recorded_commit_and_diff(
    home: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = git(repo, "rev-parse", "HEAD").strip()
    monkeypatch.setattr(_environment, "_git", None)  # git state is cached for a few seconds
    with my.start_run("repro", "clean") as clean:
        clean.log_param("lr", 0.1)
    (repo / "train.py").write_text("print('train')\nprint('changed')\n")
    monkeypatch.setattr(_environment, "_git", None)
    with my.start_run("repro", "dirty") as dirty:
        dirty.log_param("lr", 0.1)

    clean_out = cli(home, "runs", "show", clean.id).stdout
    assert "re-run" in clean_out
    assert f"git checkout {commit}" in clean_out
    assert "git apply" not in clean_out

    dirty_out = cli(home, "runs", "show", dirty.id).stdout
    assert f"git checkout {commit}" in dirty_out
    assert f"modelyard runs show {dirty.id} --diff | git apply" in dirty_out
    assert "(dirty)" in dirty_out

    diff = cli(home, "runs", "show", dirty.id, "--diff").stdout
    assert "diff --git a/train.py b/train.py" in diff
    assert "+print('changed')" in diff
    assert cli(home, "runs", "show", clean.id, "--diff").stdout == ""

    # The recorded diff applied to the commit gives back the tree the run ran on.
    git(repo, "checkout", "--", "train.py")
    subprocess.run(["git", "apply"], cwd=repo, input=diff, text=True, check=True, timeout=30)
    assert (repo / "train.py").read_text() == "print('train')\nprint('changed')\n"


def test_runs_show_requirements_prints_pinned_packages(seeded: Seeded) -> None:
    result = cli(seeded.home, "runs", "show", seeded.lr_a, "--requirements")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"pytest=={pytest.__version__}" in lines
    assert all(re.fullmatch(r"[a-z0-9_.\-]+==\S+", line) for line in lines), lines


# -- runs compare --------------------------------------------------------------------------


def test_runs_compare_marks_differing_keys(seeded: Seeded) -> None:
    result = cli(seeded.home, "runs", "compare", seeded.lr_a, seeded.lr_b)
    assert result.exit_code == 0, result.output
    rows = {
        key: line
        for line in result.stdout.splitlines()
        for key in ("param.C", "param.penalty", "metric.auc", "metric.loss")
        if f" {key} " in line
    }
    assert "≠" in rows["param.C"] and "≠" in rows["metric.auc"]
    assert "≠" not in rows["param.penalty"] and "≠" not in rows["metric.loss"]


def test_runs_compare_json_lists_differing_params_and_metrics(seeded: Seeded) -> None:
    compared = cli_json(seeded.home, "runs", "compare", seeded.lr_a, seeded.lr_b, seeded.rf)
    assert isinstance(compared, dict)
    assert [r["name"] for r in compared["runs"]] == ["lr-a", "lr-b", "rf"]
    assert compared["differing_params"] == ["C", "n_estimators", "penalty"]
    assert compared["differing_metrics"] == ["auc", "ece", "loss"]
    assert compared["params"]["C"] == ["1", "10", None]
    assert compared["metrics"]["ece"] == [None, None, "NaN"]


# -- delete, restore, artifacts ------------------------------------------------------------


def test_runs_delete_and_restore_round_trip(seeded: Seeded) -> None:
    deleted = cli(seeded.home, "runs", "delete", seeded.lr_b)
    assert deleted.exit_code == 0, deleted.output
    assert my.get_run(seeded.lr_b).lifecycle == "deleted"
    assert names(cli_json(seeded.home, "runs", "list", "-e", "iris")) == ["rf", "lr-a"]
    in_bin = cli_json(seeded.home, "runs", "list", "--view", "deleted")
    assert names(in_bin) == ["lr-b"]

    restored = cli(seeded.home, "runs", "restore", seeded.lr_b)
    assert restored.exit_code == 0, restored.output
    assert my.get_run(seeded.lr_b).lifecycle == "active"
    assert names(cli_json(seeded.home, "runs", "list", "-e", "iris")) == ["rf", "lr-b", "lr-a"]


def test_runs_artifacts_lists_paths_sizes_and_digests(seeded: Seeded) -> None:
    digest = hashlib.sha256(MODEL_BYTES).hexdigest()
    table = cli(seeded.home, "runs", "artifacts", seeded.lr_a)
    assert table.exit_code == 0, table.output
    assert "model/model.txt" in table.stdout and digest in table.stdout
    listed = cli_json(seeded.home, "runs", "artifacts", seeded.lr_a)
    assert isinstance(listed, list)
    assert [(a["path"], a["size"], a["digest"]) for a in listed] == [
        ("model/model.txt", len(MODEL_BYTES), digest)
    ]


def test_runs_download_writes_the_original_content(seeded: Seeded, tmp_path: Path) -> None:
    into_folder = tmp_path / "downloads"
    into_folder.mkdir()
    result = cli(seeded.home, "runs", "download", seeded.lr_a, "model/model.txt", str(into_folder))
    assert result.exit_code == 0, result.output
    assert (into_folder / "model.txt").read_bytes() == MODEL_BYTES
    as_file = tmp_path / "renamed.bin"
    cli(seeded.home, "runs", "download", seeded.lr_a, "model/model.txt", str(as_file))
    assert as_file.read_bytes() == MODEL_BYTES


# -- errors, end to end --------------------------------------------------------------------


def test_unknown_run_id_exits_1_with_one_error_line(seeded: Seeded, tmp_path: Path) -> None:
    unknown = "0" * 32
    process = run_modelyard("--home", str(seeded.home), "runs", "show", unknown, cwd=tmp_path)
    assert process.returncode == 1
    line = one_line_error(process)
    assert unknown in line
    assert process.stdout == ""


def test_malformed_filter_exits_non_zero_and_points_at_the_position(
    seeded: Seeded, tmp_path: Path
) -> None:
    text = "metrics.auc >> 0.9"
    process = run_modelyard(
        "--home", str(seeded.home), "runs", "list", "--filter", text, cwd=tmp_path
    )
    line = one_line_error(process)
    assert line.startswith("error: malformed filter")
    assert "position 12" in line and "'>>'" in line


def test_a_tracking_uri_that_is_not_http_is_refused(tmp_path: Path) -> None:
    process = run_modelyard("--tracking-uri", "ftp://x", "info", cwd=tmp_path)
    line = one_line_error(process)
    assert "http://" in line and "https://" in line and "ftp://x" in line


@pytest.mark.parametrize(
    "args",
    [["runs", "list", "--view", "bogus"], ["runs", "show"], ["--no-such-option"]],
    ids=["bad-value", "missing-argument", "unknown-option"],
)
def test_usage_errors_print_a_message_not_a_traceback(
    args: list[str], home: Path, tmp_path: Path
) -> None:
    process = run_modelyard("--home", str(home), *args, cwd=tmp_path)
    assert "Traceback" not in process.stderr, process.stderr[-300:]
    assert process.returncode == 2
    assert process.stderr.strip()


def test_server_refuses_to_bind_beyond_loopback_without_authentication(tmp_path: Path) -> None:
    process = run_modelyard(
        "--home",
        str(tmp_path / "home"),
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "1",
        cwd=tmp_path,
        timeout=30,
    )
    line = one_line_error(process)
    assert "authentication" in line and "0.0.0.0" in line
    assert "modelyard server on" not in process.stdout


def test_error_messages_show_user_input_verbatim(home: Path, tmp_path: Path) -> None:
    process = run_modelyard("--home", str(home), "runs", "list", "-e", "cnn[v2]", cwd=tmp_path)
    line = one_line_error(process)
    assert "'cnn[v2]'" in line


def test_tables_show_names_and_values_verbatim(home: Path) -> None:
    with my.start_run("cnn[v2]", "net[bold]") as run:
        run.log_params({"layers": "[conv, pool]"})
    shown = cli(home, "runs", "show", run.id).stdout
    assert "net[bold]" in shown and "cnn[v2]" in shown and "[conv, pool]" in shown
    listed = cli(home, "runs", "list").stdout
    assert "net[bold]" in listed and "cnn[v2]" in listed


def test_runs_compare_highlights_differing_rows_on_a_color_terminal(
    seeded: Seeded, tmp_path: Path
) -> None:
    process = run_modelyard(
        "--home",
        str(seeded.home),
        "runs",
        "compare",
        seeded.lr_a,
        seeded.lr_b,
        cwd=tmp_path,
        env={"FORCE_COLOR": "1", "COLUMNS": "200"},
    )
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    differing = next(line for line in lines if "param.C" in line)
    same = next(line for line in lines if "param.penalty" in line)
    assert "33m" in differing  # yellow
    assert "33m" not in same


# -- gc --------------------------------------------------------------------------------------


@pytest.fixture
def orphan(seeded: Seeded) -> str:
    """The digest of a blob put straight into the artifact store, referenced by nothing."""
    store = ArtifactStore(Settings(home=seeded.home).resolved_artifacts_url)
    return store.put_bytes(b"orphan").digest


def test_gc_keeps_fresh_unreferenced_blobs_by_default(seeded: Seeded, orphan: str) -> None:
    result = cli(seeded.home, "gc")
    assert result.exit_code == 0, result.output
    assert "0 unreferenced blob(s)" in result.stdout
    assert "1 too young to judge" in result.stdout
    assert orphan not in result.stdout
    report = cli_json(seeded.home, "gc", "--apply")
    assert isinstance(report, dict)
    assert report["unreferenced"] == [] and report["young"] == 1
    assert ArtifactStore(Settings(home=seeded.home).resolved_artifacts_url).exists(orphan)


def test_gc_dry_run_lists_the_orphan_and_removes_nothing(seeded: Seeded, orphan: str) -> None:
    store = ArtifactStore(Settings(home=seeded.home).resolved_artifacts_url)
    result = cli(seeded.home, "gc", "--grace", "0")
    assert result.exit_code == 0, result.output
    assert orphan in result.stdout
    assert "1 unreferenced blob(s)" in result.stdout and "dry run" in result.stdout
    assert store.exists(orphan)
    report = cli_json(seeded.home, "gc", "--grace", "0")
    assert isinstance(report, dict)
    assert [b["digest"] for b in report["unreferenced"]] == [orphan]
    assert report["applied"] is False and report["freed_bytes"] == 0


def test_gc_apply_removes_only_the_orphan(seeded: Seeded, orphan: str, tmp_path: Path) -> None:
    store = ArtifactStore(Settings(home=seeded.home).resolved_artifacts_url)
    before = {blob.digest for blob in store.list_blobs()}
    result = cli(seeded.home, "gc", "--grace", "0", "--apply")
    assert result.exit_code == 0, result.output
    assert "removed" in result.stdout and orphan in result.stdout
    assert {blob.digest for blob in store.list_blobs()} == before - {orphan}
    cli(seeded.home, "runs", "download", seeded.lr_a, "model/model.txt", str(tmp_path / "m"))
    assert (tmp_path / "m").read_bytes() == MODEL_BYTES
    again = cli_json(seeded.home, "gc", "--grace", "0", "--apply")
    assert isinstance(again, dict)
    assert again["unreferenced"] == [] and again["missing"] == [] and again["applied"] is True


# -- demo ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_trains_tracks_and_compares_real_models(tmp_path: Path) -> None:
    demo_home = tmp_path / "demo"
    process = run_modelyard(
        "demo", "--home", str(demo_home), cwd=tmp_path, env={"COLUMNS": "200"}, timeout=180
    )
    assert process.returncode == 0, process.stderr
    for expected in ("comparison", "logreg-C1", "gbm-150"):
        assert expected in process.stdout
    page = cli_json(demo_home, "runs", "list", "-e", "demo-breast-cancer")
    assert isinstance(page, dict)
    runs = page["runs"]
    assert len(runs) == 5
    parents = [run for run in runs if run["parent_id"] is None]
    assert [run["name"] for run in parents] == ["model-selection"]
    children = [run for run in runs if run["parent_id"] == parents[0]["id"]]
    assert sorted(run["name"] for run in children) == [
        "forest-200",
        "gbm-150",
        "logreg-C0.1",
        "logreg-C1",
    ]
    _the_demo_monitor_flags_only_the_shifted_windows(demo_home, process.stdout)
    _the_demo_canary_is_rolled_back_and_its_ab_test_decided(demo_home, process.stdout)
    _the_demo_serves_a_model_from_entity_keys(demo_home, process.stdout)


def _the_demo_serves_a_model_from_entity_keys(demo_home: Path, stdout: str) -> None:
    """Features applied, a training frame, a model logged with the service, served online."""
    assert "training frame: 3,000 label rows" in stdout
    assert '{"entities": {"driver_id": [3, 14, 159]}}' in stdout
    assert "against the offline join: no mismatch" in stdout
    listed = cli_json(demo_home, "features", "list")
    assert isinstance(listed, list)
    assert sorted((d["kind"], d["name"]) for d in listed) == [
        ("entity", "driver"),
        ("service", "churn_v1"),
        ("view", "driver_stats"),
    ]
    shown = cli(demo_home, "models", "manifest", "driver-churn", "1")
    assert shown.exit_code == 0, shown.output
    manifest = json.loads(shown.stdout)
    assert manifest["features"]["service"] == "churn_v1"
    assert manifest["features"]["join_keys"] == ["driver_id"]


def _the_demo_monitor_flags_only_the_shifted_windows(demo_home: Path, stdout: str) -> None:
    """Two windows of normal traffic, then two shifted: drift, an alert, a webhook, a report."""
    shares = cli_json(
        demo_home, "monitor", "history", "demo-monitor",
        "--check", "data_drift", "--metric", "drift_share", "--column", "",
    )  # fmt: skip
    assert isinstance(shares, list)
    assert [(r["rows"], r["flagged"]) for r in shares] == [
        (120, False),
        (120, False),
        (120, True),
        (120, True),
    ]
    assert [r["value"] for r in shares[:2]] == [0.0, 0.0]
    assert all(r["value"] > 0.2 for r in shares[2:])
    events = cli_json(demo_home, "alerts", "list", "--events")
    assert isinstance(events, list)
    assert [(e["rule"], e["state"]) for e in events] == [("demo-drift", "firing")]
    fired_on = dt.datetime.fromisoformat(events[0]["window_start"])
    assert fired_on == dt.datetime.fromisoformat(shares[2]["window_start"])
    assert "the webhook received: state firing, rule demo-drift" in stdout
    report = demo_home / "reports" / "drift.html"
    assert "<html" in report.read_text(encoding="utf-8")


def _the_demo_canary_is_rolled_back_and_its_ab_test_decided(demo_home: Path, stdout: str) -> None:
    """The shuffled-label version fails a guardrail and is rolled back automatically; the A/B
    test of two sound versions ends with a recorded verdict of its sequential test."""
    canary = cli_json(demo_home, "deploy", "history", "demo-canary")
    assert isinstance(canary, list)
    assert [e["kind"] for e in canary] == ["created", "rollback"]
    rollback = canary[-1]
    assert (rollback["actor"], rollback["split"]) == ("modelyard", {"primary": 1.0})
    failed = [g for g in rollback["evidence"]["guardrails"] if g["verdict"] == "fail"]
    assert failed
    for guardrail in failed:  # a failing guardrail's whole interval is beyond its limit
        assert guardrail["interval"][0] > guardrail["limit"]
        assert guardrail["name"] in rollback["reason"]
    assert "canary demo-canary: rollback" in stdout
    ab = cli_json(demo_home, "deploy", "history", "demo-ab")
    assert isinstance(ab, list)
    verdict = ab[-1]
    assert ab[0]["kind"] == "created"
    assert (verdict["kind"], verdict["actor"]) in {
        ("promote", "modelyard"),
        ("rollback", "modelyard"),
    }
    evidence = verdict["evidence"]
    low, high = evidence["effect"]["interval"]
    assert low <= evidence["effect"]["value"] <= high
    test = evidence["sequential"]
    assert 0.0 <= test["p_value"] <= 1.0
    assert test["decided"] or test["n"] >= evidence["planned_total"] == 300
    assert f"A/B test demo-ab: {verdict['kind']}" in stdout
    assert "always-valid p" in stdout


def test_experiments_can_be_created_deleted_and_restored(home: Path) -> None:
    created = cli(home, "experiments", "create", "churn", "--description", "d", "--tag", "a=1")
    assert created.exit_code == 0, created.output
    listed = cli_json(home, "experiments", "list")
    assert [(e["name"], e["tags"]) for e in listed] == [("churn", {"a": "1"})]
    assert cli(home, "experiments", "delete", "churn").exit_code == 0
    assert cli_json(home, "experiments", "list") == []
    assert [e["name"] for e in cli_json(home, "experiments", "list", "--view", "deleted")] == [
        "churn"
    ]
    assert cli(home, "experiments", "restore", "churn").exit_code == 0
    assert [e["name"] for e in cli_json(home, "experiments", "list")] == ["churn"]
    assert cli(home, "experiments", "create", "x", "--tag", "novalue").exit_code != 0
