"""`modelyard deploy …` on a home holding versions 1..3 of a real model: every command in
JSON for scripts and in words and tables for people, and bad input answered with one line,
a non-zero exit and nothing changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from _deployed import log_versions, serve_traffic, stored
from _monitored import configured
from modelyard.cli import main
from modelyard.cli._app import app
from modelyard.rollout import STRATEGIES, STRATEGY_HELP
from modelyard.store import MetadataStore
from modelyard.tracking._environment import current_user

runner = CliRunner(env={"COLUMNS": "250"})
CANARY = ["--strategy", "canary", "--model", "churn@champion", "--candidate", "churn@challenger"]


def cli(home: Path, *args: str) -> str:
    """What `modelyard --home HOME ARGS` prints; fails the test unless it succeeds."""
    result = runner.invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(cli(home, *args, "--json"))


def snapshot(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    metadata = MetadataStore(f"sqlite:///{home / 'modelyard.db'}")
    try:
        return stored(metadata)
    finally:
        metadata.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`churn` versions 1..3, champion on 1 and challenger on 2."""
    path = tmp_path_factory.mktemp("deploy-cli") / "home"
    with configured(path):
        log_versions()
    return path


def test_create_help_lists_every_strategy_with_its_line(home: Path) -> None:
    shown = cli(home, "deploy", "create", "--help")
    for strategy in STRATEGIES:
        assert f"{strategy}: {STRATEGY_HELP[strategy]}" in shown
    assert "--candidate" in shown and "--option" in shown and "--policy" in shown


def test_create_prints_the_stored_deployment(home: Path) -> None:
    created = cli_json(home, "deploy", "create", "bird", *CANARY,
                       "--policy", '{"steps": [0.1, 0.5, 1.0], "min_samples": 300}',
                       "--option", "sticky=field:customer", "--option", "min_samples=500",
                       "--option", "auto=false")  # fmt: skip
    assert isinstance(created.pop("created_at"), int)
    assert created.pop("updated_at") == created.pop("step_started_at")
    assert created == {
        "name": "bird",
        "model": "churn",
        "strategy": "canary",
        "alias": "champion",
        "variants": [
            {"name": "primary", "role": "primary", "ref": "churn@champion", "version": 1},
            {"name": "candidate", "role": "candidate", "ref": "churn@challenger", "version": 2},
        ],
        "split": {"primary": 0.9, "candidate": 0.1},
        "policy": {
            "auto": False,
            "sticky": "field:customer",
            "metric": "accuracy",
            "alpha": 0.05,
            "min_samples": 500,  # --option over --policy
            "steps": [0.1, 0.5, 1.0],
            "max_error_rate_increase": 0.01,
            "max_p99_ratio": 1.2,
            "max_prediction_shift": 0.1,
            "max_metric_drop": 0.02,
        },
        "status": "running",
        "step": 0,
        "revision": 1,
        "created_by": current_user(),
    }
    shown = cli(home, "deploy", "create", "duel", "--strategy", "champion_challenger",
                "--model", "churn/1", "--candidate", "churn/2", "--candidate", "churn/3",
                "--alias", "prod")  # fmt: skip
    assert (
        "deployment 'duel' created: champion_challenger of primary churn/1, challenger-1 "
        "churn/2, challenger-2 churn/3; running, split primary 100 %, promotes churn@prod"
    ) in shown
    rows = [" ".join(line.split()) for line in shown.splitlines() if line.startswith("│")]
    assert "│ challenger-2 │ challenger │ 3 │ churn/3 │ mirrored │" in rows


def test_list_shows_every_deployment_or_only_the_live_ones(home: Path) -> None:
    cli(home, "deploy", "create", "listed", "--strategy", "single", "--model", "churn/3")
    cli(home, "deploy", "create", "ended", "--strategy", "single", "--model", "churn/3")
    cli(home, "deploy", "rollback", "ended")
    listed = cli_json(home, "deploy", "list")
    assert [d["name"] for d in listed] == sorted(d["name"] for d in listed)
    assert {"listed", "ended"} <= {d["name"] for d in listed}
    running = cli_json(home, "deploy", "list", "--running")
    assert "listed" in {d["name"] for d in running} and "ended" not in {d["name"] for d in running}
    assert all(d["status"] in ("running", "paused") for d in running)
    by_name = {d["name"]: d for d in listed}
    assert by_name["listed"] == cli_json(home, "deploy", "status", "listed")["deployment"]
    shown = cli(home, "deploy", "list")
    assert "listed" in shown and "rolled back" in shown and "primary 3" in shown


def test_status_shows_the_split_variants_live_numbers_and_the_latest_decision(home: Path) -> None:
    cli(home, "deploy", "create", "ab", "--strategy", "ab", "--model", "churn@champion",
        "--candidate", "churn/3", "--option", "split=0.25",
        "--option", "min_samples=20")  # fmt: skip
    with configured(home):
        serve_traffic("ab", {"primary": 1, "candidate": 3}, per_variant=40)
    fresh = cli_json(home, "deploy", "status", "ab")
    assert fresh["decision"] is None and fresh["events"] == 1  # the look recorded nothing
    assert fresh["deployment"]["split"] == {"primary": 0.75, "candidate": 0.25}
    live = fresh["live"]
    assert live["action"] in ("continue", "promote", "wait") and live["reason"]
    assert [(s["requests"], s["labelled"]) for s in live["variants"].values()] == [(40, 40)] * 2
    assert live["variants"]["candidate"]["metric"]["value"] == 1.0
    shown = cli(home, "deploy", "status", "ab")
    assert (
        "deployment 'ab': ab of churn, running (step 0, revision 1); promotes churn@champion"
        in (shown)
    )
    assert "split: primary 75 % / candidate 25 %" in shown
    assert 'policy: auto=true, sticky=null, metric="accuracy", alpha=0.05, min_samples=20, ' in (
        shown
    )
    assert "split=0.25, mde=0.02, power=0.8, max_samples=null" in shown
    assert f"now: {live['action']}: " in shown and "latest decision: none yet" in shown
    rows = [" ".join(line.split()) for line in shown.splitlines() if line.startswith("│")]
    assert "│ primary │ primary │ 1 │ churn@champion │ 75 % │" in rows
    assert "│ candidate │ candidate │ 3 │ churn/3 │ 25 % │" in rows
    assert "per variant" in shown and "accuracy" in shown
    assert any(row.startswith("│ primary │ 40 │ 0 │ 0 [0,") for row in rows), rows
    assert "sample_ratio.p_value" in shown

    cli(home, "deploy", "pause", "ab", "--reason", "wait for the holiday to pass")
    paused = cli_json(home, "deploy", "status", "ab")
    decision = paused["decision"]
    assert (decision["kind"], decision["actor"], decision["reason"]) == (
        "pause",
        current_user(),
        "wait for the holiday to pass",
    )
    assert paused["deployment"]["status"] == "paused" and paused["events"] == 2
    assert paused["live"]["action"] == "wait" and "is paused" in paused["live"]["reason"]
    cli(home, "deploy", "resume", "ab")
    cli(home, "deploy", "promote", "ab", "--reason", "B wins")
    shown = cli(home, "deploy", "status", "ab")
    assert f"latest decision: promote by {current_user()} at " in shown and ": B wins" in shown
    assert "│ winner │ candidate (version 3) │" in [" ".join(x.split()) for x in shown.splitlines()]


def test_history_lists_every_event_with_its_evidence(home: Path) -> None:
    cli(home, "deploy", "create", "steps", *CANARY)
    cli(home, "deploy", "split", "steps", "primary=75%", "candidate=25%", "--reason", "step 2")
    cli(home, "deploy", "rollback", "steps", "--reason", "errors doubled")
    events = cli_json(home, "deploy", "history", "steps")
    assert [(e["kind"], e["reason"], e["split"]) for e in events] == [
        ("created", "canary of churn@champion, churn@challenger",
         {"primary": 0.95, "candidate": 0.05}),
        ("split", "step 2", {"primary": 0.75, "candidate": 0.25}),
        ("rollback", "errors doubled", {"primary": 1.0}),
    ]  # fmt: skip
    assert events[0]["evidence"]["policy"]["steps"] == [0.05, 0.25, 0.5, 1.0]
    assert all(e["deployment"] == "steps" and e["actor"] == current_user() for e in events)
    shown = cli(home, "deploy", "history", "steps")
    assert "history of steps" in shown and "errors doubled" in shown
    assert "primary 75 % / candidate 25 %" in shown and "errors doubled" in shown


def test_changes_print_the_deployment_after_them(home: Path) -> None:
    cli(home, "deploy", "create", "moves", *CANARY)
    split = cli_json(home, "deploy", "split", "moves", "primary=0.5", "candidate=0.5")
    assert (split["split"], split["revision"]) == ({"primary": 0.5, "candidate": 0.5}, 2)
    assert cli_json(home, "deploy", "pause", "moves")["status"] == "paused"
    assert "deployment 'moves' resumed: canary of" in cli(home, "deploy", "resume", "moves")
    promoted = cli_json(home, "deploy", "promote", "moves", "--variant", "candidate")
    assert (promoted["status"], promoted["split"], promoted["revision"]) == (
        "promoted",
        {"candidate": 1.0},
        5,
    )
    models = cli_json(home, "models", "show", "churn")
    assert models["aliases"]["champion"] == 2
    assert cli_json(home, "deploy", "history", "moves")[-1]["reason"] == "promoted by hand"
    cli(home, "models", "alias", "churn", "champion", "1")  # back, for the other tests

    cli(home, "deploy", "create", "doomed", "--strategy", "single", "--model", "churn/1")
    assert "deployment 'doomed' deleted" in cli(home, "deploy", "delete", "doomed")
    assert "doomed" not in [d["name"] for d in cli_json(home, "deploy", "list")]


def exit_code(home: Path, *args: str) -> object:
    """How `modelyard --home HOME ARGS` exits, run as the `modelyard` command runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["modelyard", "--home", str(home), *args])
        with pytest.raises(SystemExit) as exited:
            main()
    return exited.value.code


@pytest.fixture(scope="module")
def settled(home: Path) -> Path:
    """`live` running, `held` paused, `over` rolled back, for the refusals."""
    cli(home, "deploy", "create", "live", *CANARY)
    cli(home, "deploy", "create", "held", *CANARY)
    cli(home, "deploy", "pause", "held")
    cli(home, "deploy", "create", "over", *CANARY)
    cli(home, "deploy", "rollback", "over")
    return home


NEW = ["deploy", "create", "x"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([*NEW, "--strategy", "canary", "--model", "churn/9", "--candidate", "churn/2"],
         "model 'churn' has no version 9"),
        ([*NEW, "--strategy", "canary", "--model", "churn@gone", "--candidate", "churn/2"],
         "model 'churn' has no alias 'gone'"),
        ([*NEW, "--strategy", "rainbow", "--model", "churn/1"], "unknown strategy 'rainbow'"),
        ([*NEW, "--strategy", "canary", "--model", "churn/1"],
         "strategy 'canary' takes 1 candidate(s), got 0"),
        ([*NEW, *CANARY, "--policy", "{nope"], "--policy '{nope' is not JSON"),
        ([*NEW, *CANARY, "--policy", "[1]"], "must be a JSON object of options"),
        ([*NEW, *CANARY, "--option", "steps"], "--option takes key=value, got 'steps'"),
        ([*NEW, *CANARY, "--option", "colour=red"], "has no option(s) colour"),
        ([*NEW, *CANARY, "--option", "steps=[0.5,0.2,1]"], "steps must increase"),
        (["deploy", "create", "live", *CANARY], "a deployment named 'live' exists"),
        (["deploy", "create", "churn", *CANARY], "'churn' names a registered model"),
        (["deploy", "status", "nope"], "no deployment named 'nope'"),
        (["deploy", "history", "nope"], "no deployment named 'nope'"),
        (["deploy", "promote", "nope"], "no deployment named 'nope'"),
        (["deploy", "delete", "nope"], "no deployment named 'nope'"),
        (["deploy", "promote", "held"], "cannot promote deployment 'held': it is paused"),
        (["deploy", "promote", "over"], "cannot promote deployment 'over': it is rolled back"),
        (["deploy", "promote", "live", "--variant", "ghost"], "has no variant 'ghost'"),
        (["deploy", "rollback", "over"], "cannot roll back deployment 'over'"),
        (["deploy", "pause", "held"], "cannot pause deployment 'held': it is paused"),
        (["deploy", "resume", "live"], "cannot resume deployment 'live': it is running"),
        (["deploy", "split", "live", "primary=90%", "candidate=20%"],
         "the split must sum to 100 %, it sums to 110 %"),
        (["deploy", "split", "live", "primary=1", "ghost=0"], "variant(s) ghost"),
        (["deploy", "split", "live", "primary"], "give each share as VARIANT=0.9 or VARIANT=90%"),
        (["deploy", "split", "live", "primary=lots"], "got 'primary=lots'"),
        (["deploy", "split", "live", "primary=0.5", "primary=0.5"], "more than one share"),
        (["deploy", "split", "held", "primary=1"], "cannot change the split of deployment 'held'"),
    ],
)  # fmt: skip
def test_bad_input_exits_non_zero_with_one_line_naming_the_problem_and_changes_nothing(
    settled: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    before = snapshot(settled)
    capsys.readouterr()
    assert exit_code(settled, *args) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and problem in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert snapshot(settled) == before


def test_a_protected_alias_refuses_the_promotion_until_approved(
    settled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(settled, "deploy", "create", "guarded", *CANARY, "--alias", "prod")
    cli(settled, "models", "protect", "churn", "prod")
    before = snapshot(settled)
    capsys.readouterr()
    assert exit_code(settled, "deploy", "promote", "guarded") == 1
    assert "alias 'prod' of 'churn' is protected and version 2 has no approval" in (
        capsys.readouterr().err
    )
    assert snapshot(settled) == before
    cli(settled, "models", "approve", "churn", "2")
    assert cli_json(settled, "deploy", "promote", "guarded")["status"] == "promoted"
    assert cli_json(settled, "models", "show", "churn")["aliases"]["prod"] == 2


def test_deployments_need_the_database_not_a_server(home: Path) -> None:
    result = runner.invoke(
        app, ["--home", str(home), "--tracking-uri", "http://127.0.0.1:9", "deploy", "list"]
    )
    assert result.exit_code != 0
    assert "/api/v1/deployments" in str(result.exception)


def test_decide_acts_now_and_records_the_decision_with_its_evidence(home: Path) -> None:
    """A canary whose candidate is always right and the primary half the time: with enough
    labelled answers, `deploy decide` steps it up (as `serve` would), recorded in history."""
    cli(home, "deploy", "create", "decided", "--strategy", "canary", "--model",
        "churn@champion", "--candidate", "churn/3", "--option", "steps=[0.5, 1.0]",
        "--option", "min_samples=50", "--option", "max_metric_drop=0.1",
        "--option", "max_error_rate_increase=0.1")  # fmt: skip
    with configured(home):
        serve_traffic("decided", {"primary": 1, "candidate": 3}, per_variant=80)
    decision = cli_json(home, "deploy", "decide", "decided")
    assert decision["action"] == "step", decision["reason"]
    assert cli_json(home, "deploy", "status", "decided")["deployment"]["split"] == {
        "primary": 0.0,
        "candidate": 1.0,
    }
    events = cli_json(home, "deploy", "history", "decided")
    assert [e["kind"] for e in events] == ["created", "step"]
    assert events[-1]["evidence"]["guardrails"]
    shown = cli(home, "deploy", "decide", "decided")
    assert shown.startswith("decided: ")
