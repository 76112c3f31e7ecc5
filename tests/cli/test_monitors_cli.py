"""`modelyard monitor …` and `modelyard alerts …` on a home holding a real model, its
served predictions and their labels: normal traffic, an hour of shifted traffic, normal
again — through the real command line, in JSON for scripts and in tables for people."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from _monitored import HOUR, ROWS, T0, configured, log_model, log_phases, stored
from modelyard.cli import main
from modelyard.cli._app import app

runner = CliRunner(env={"COLUMNS": "250"})
STARTS = [T0, T0 + HOUR, T0 + 2 * HOUR]
ISO = ["2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"]


def cli(home: Path, *args: str) -> str:
    """What `modelyard --home HOME ARGS` prints; fails the test unless it succeeds."""
    result = runner.invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(cli(home, *args, "--json"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`churn` version 1 behind `champion` and three hours of its labelled traffic."""
    path = tmp_path_factory.mktemp("monitors-cli") / "home"
    with configured(path):
        log_phases(log_model())
    return path


@dataclass(frozen=True)
class Judged:
    created: dict[str, Any]
    rule: dict[str, Any]
    run: dict[str, Any]


@pytest.fixture(scope="module")
def judged(home: Path) -> Judged:
    """Monitor `churn` (windows of 200 predictions) with the rule `drift`, run once."""
    created = cli_json(
        home, "monitor", "create", "churn", "--alias", "champion", "--rows", str(ROWS),
        "--check", "data_drift", "--check", '{"check": "performance", "confidence": 0.9}',
        "--check", "latency", "--label-delay", "5m",
    )  # fmt: skip
    rule = cli_json(
        home, "alerts", "create", "drift", "--monitor", "churn",
        "--condition", "data_drift.drift_share > 0.2", "--severity", "critical",
    )  # fmt: skip
    return Judged(created, rule, cli_json(home, "monitor", "run", "churn"))


def test_create_prints_the_stored_monitor_and_rule(judged: Judged) -> None:
    created = dict(judged.created)
    assert isinstance(created.pop("created_at"), int)
    assert created == {
        "name": "churn",
        "model": "churn",
        "alias": "champion",
        "version": None,
        "window": "200 rows",
        "window_ms": None,
        "window_rows": ROWS,
        "checks": [
            {"check": "data_drift"},
            {"check": "performance", "confidence": 0.9},
            {"check": "latency"},
        ],
        "reference": {"kind": "training"},
        "schedule": None,
        "label_delay": "5m",
        "last_run_at": None,
    }
    rule = judged.rule
    assert (rule["name"], rule["monitor"], rule["condition"]) == (
        "drift",
        "churn",
        "data_drift.drift_share > 0.2",
    )
    assert (rule["severity"], rule["state"]) == ("critical", "ok")
    assert rule["channels"] == [{"type": "log"}]


def test_run_judges_every_window_once_and_flags_the_shifted_one(home: Path, judged: Judged) -> None:
    windows = judged.run["windows"]
    assert [w["start"] for w in windows] == STARTS
    assert [w["end"] for w in windows] == [s + (ROWS - 1) * 1000 + 1 for s in STARTS]
    assert [(w["rows"], w["labels"], w["version"]) for w in windows] == [(ROWS, ROWS, 1)] * 3
    assert [w["flagged"] for w in windows] == [[], ["data_drift", "performance"], []]
    shifted = windows[1]["evidence"]
    assert shifted["data_drift"]["drifted_columns"] == ["x0"]
    assert shifted["performance"]["metrics"]["accuracy"]["high"] < 0.75
    assert sorted(shifted) == ["data_drift", "latency", "performance"]
    run_events = judged.run["events"]
    events = [(e["rule"], e["state"], e["severity"], e["window_start"]) for e in run_events]
    assert events == [
        ("drift", "firing", "critical", "2026-01-01T01:00:00.000+00:00"),
        ("drift", "resolved", "critical", "2026-01-01T02:00:00.000+00:00"),
    ]
    assert cli_json(home, "monitor", "run", "churn") == {
        "monitor": "churn",
        "windows": [],
        "events": [],
    }


def test_run_create_and_alerts_speak_to_people(home: Path, judged: Judged) -> None:
    created = cli(home, "monitor", "create", "churn", "--name", "people", "--rows", "200",
                  "--check", "data_drift")  # fmt: skip
    assert "monitor 'people' created: churn (every version), windows of 200 rows" in created
    assert "checks data_drift" in created
    rule = cli(home, "alerts", "create", "people-drift", "--monitor", "people",
               "--condition", "data_drift.drift_share>0.2")  # fmt: skip
    assert "alert rule 'people-drift': data_drift.drift_share > 0.2 on monitor 'people'" in rule
    ran = cli(home, "monitor", "run", "people")
    assert "monitor people: 3 new window(s)" in ran
    assert all(f"2026-01-01 0{hour}:00:00" in ran for hour in range(3))
    rows = [line for line in ran.splitlines() if line.startswith("│ 2026-01-01")]
    flagged = [row.split("│")[-2].strip() for row in rows]
    assert flagged == ["-", "data_drift", "-"]
    assert "alert FIRING [warning] data_drift.drift_share = 0.25 > 0.2 for 1 window" in ran
    assert "alert RESOLVED [warning] resolved: data_drift.drift_share = 0" in ran
    assert "monitor people: 0 new window(s)" in cli(home, "monitor", "run", "people")


def test_status_shows_definition_latest_windows_and_rule_states(home: Path, judged: Judged) -> None:
    status = cli_json(home, "monitor", "status", "churn")
    assert status["monitor"] == {**judged.created, "last_run_at": status["monitor"]["last_run_at"]}
    assert status["monitor"]["last_run_at"] >= judged.created["created_at"]
    assert [w["start"] for w in status["windows"]] == STARTS[::-1]  # newest first
    assert [w["flagged"] for w in status["windows"]] == [[], ["data_drift", "performance"], []]
    assert status["windows"][1]["evidence"] == judged.run["windows"][1]["evidence"]
    (rule,) = status["alerts"]
    assert (rule["name"], rule["state"], rule["streak"]) == ("drift", "ok", 0)
    assert rule["last_fired_at"] is not None
    latest = cli_json(home, "monitor", "status", "churn", "--limit", "1")["windows"]
    assert [w["start"] for w in latest] == [STARTS[-1]]

    shown = cli(home, "monitor", "status", "churn")
    assert "monitor 'churn': churn@champion, windows of 200 rows, checks data_drift, " in shown
    assert "performance, latency" in shown
    assert "latest windows" in shown and "2026-01-01 01:00:00" in shown
    assert "data_drift, performance" in shown  # the shifted window's verdict
    assert "drift_share" in shown and "p99_ms" in shown and "accuracy" in shown
    assert "alert 'drift': data_drift.drift_share > 0.2 → ok" in shown


def test_history_is_the_filtered_time_series(home: Path, judged: Judged) -> None:
    share = cli_json(home, "monitor", "history", "churn", "--check", "data_drift",
                     "--metric", "drift_share", "--column", "")  # fmt: skip
    assert [r["window_start"] for r in share] == ISO
    assert [(r["version"], r["rows"], r["column"]) for r in share] == [(1, ROWS, "")] * 3
    assert [r["value"] > 0.2 for r in share] == [False, True, False]
    assert [r["flagged"] for r in share] == [False, True, False]
    x0 = cli_json(home, "monitor", "history", "churn", "--column", "x0", "--metric", "drift_score")
    assert [(r["check"], r["flagged"]) for r in x0] == [
        ("data_drift", False),
        ("data_drift", True),
        ("data_drift", False),
    ]
    accuracy = cli_json(home, "monitor", "history", "churn", "--metric", "accuracy")
    assert all(r["lower"] <= r["value"] <= r["upper"] for r in accuracy)
    assert accuracy[1]["upper"] < 0.75 < min(accuracy[0]["lower"], accuracy[2]["lower"])
    # numbers a check could not give are null, never a string, whatever else the column holds
    performance = cli_json(home, "monitor", "history", "churn", "--check", "performance")
    for record in performance:
        for key in ("value", "lower", "upper"):
            assert record[key] is None or isinstance(record[key], float), record
    assert any(r["lower"] is None for r in performance)
    everything = cli_json(home, "monitor", "history", "churn")
    by_check = {
        check: len(cli_json(home, "monitor", "history", "churn", "--check", check))
        for check in ("data_drift", "performance", "latency")
    }
    assert len(everything) == sum(by_check.values()) and by_check["latency"] == 3 * 5

    shown = cli(home, "monitor", "history", "churn", "--check", "latency", "--metric", "p99_ms")
    assert "history of churn" in shown and "p99_ms" in shown
    assert all(start in shown for start in ISO)


def test_list_shows_every_monitor(home: Path, judged: Judged) -> None:
    listed = {m["name"]: m for m in cli_json(home, "monitor", "list")}
    assert listed["churn"] == cli_json(home, "monitor", "status", "churn")["monitor"]
    shown = cli(home, "monitor", "list")
    assert "churn@champion, windows of 200 rows" in shown
    assert "2026-" in shown  # the last run


def test_alert_events_and_their_deliveries(home: Path, judged: Judged) -> None:
    rules = cli_json(home, "alerts", "list", "--monitor", "churn")
    assert [(r["name"], r["state"]) for r in rules] == [("drift", "ok")]
    events = cli_json(home, "alerts", "list", "--events", "--monitor", "churn")
    assert [e["state"] for e in events] == ["resolved", "firing"]  # newest first
    firing = events[1]
    assert firing["value"] == pytest.approx(0.25) and firing["threshold"] == 0.2
    assert "data_drift.drift_share = 0.25 > 0.2 for 1 window (monitor churn" in firing["message"]
    assert [e["id"] for e in cli_json(home, "alerts", "list", "--events", "--limit", "1")] == [
        max(e["id"] for e in cli_json(home, "alerts", "list", "--events"))
    ]
    (delivery,) = cli_json(home, "alerts", "deliveries", str(firing["id"]))
    assert (delivery["event_id"], delivery["channel"], delivery["attempt"], delivery["ok"]) == (
        firing["id"],
        "log",
        1,
        True,
    )

    shown = cli(home, "alerts", "list", "--monitor", "churn")
    assert "drift" in shown and "data_drift.drift_share > 0.2" in shown
    assert "critical" in shown and "log" in shown
    shown = cli(home, "alerts", "list", "--events", "--monitor", "churn")
    assert "firing" in shown and "resolved" in shown and "for 1 window" in shown
    shown = cli(home, "alerts", "deliveries", str(firing["id"]))
    assert f"deliveries of alert {firing['id']}" in shown and "True" in shown


def test_deleting_rules_and_monitors(home: Path, judged: Judged) -> None:
    cli(home, "monitor", "create", "churn", "--name", "doomed", "--rows", "200",
        "--check", "latency")  # fmt: skip
    for rule in ("doomed-slow", "doomed-fast"):
        cli(home, "alerts", "create", rule, "--monitor", "doomed",
            "--condition", "latency.p99_ms > 1")  # fmt: skip
    assert len(cli_json(home, "monitor", "run", "doomed")["events"]) == 2
    assert "alert rule 'doomed-slow' deleted" in cli(home, "alerts", "delete", "doomed-slow")
    rules = [r["name"] for r in cli_json(home, "alerts", "list")]
    assert "doomed-slow" not in rules and "doomed-fast" in rules
    assert {e["rule"] for e in cli_json(home, "alerts", "list", "--events")} >= {"doomed-fast"}
    assert "doomed-slow" not in {e["rule"] for e in cli_json(home, "alerts", "list", "--events")}

    assert "monitor 'doomed' deleted" in cli(home, "monitor", "delete", "doomed")
    assert "doomed" not in [m["name"] for m in cli_json(home, "monitor", "list")]
    assert "doomed-fast" not in [r["name"] for r in cli_json(home, "alerts", "list")]
    assert cli_json(home, "alerts", "list", "--events", "--monitor", "doomed") == []
    assert {e["monitor"] for e in cli_json(home, "alerts", "list", "--events")} <= {
        "churn",
        "people",
    }


def test_schedule_once_runs_only_the_due_monitors(home: Path, judged: Judged) -> None:
    cli(home, "monitor", "create", "churn", "--name", "hourly", "--rows", "200",
        "--check", "latency", "--schedule", "1h")  # fmt: skip
    lines = cli(home, "monitor", "schedule", "--once").strip().splitlines()
    assert len(lines) == 1, lines  # the monitors without a schedule are left alone
    assert lines[0].endswith("hourly: 3 window(s), 0 flagged, 0 alert(s)")
    assert cli(home, "monitor", "schedule", "--once").strip() == ""  # not due for an hour
    listed = {m["name"]: m for m in cli_json(home, "monitor", "list")}
    assert listed["hourly"]["schedule"] == "1h" and listed["hourly"]["last_run_at"] is not None
    assert len(cli_json(home, "monitor", "history", "hourly", "--metric", "p99_ms")) == 3


def exit_code(home: Path, *args: str) -> object:
    """How `modelyard --home HOME ARGS` exits, run as the `modelyard` command runs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["modelyard", "--home", str(home), *args])
        with pytest.raises(SystemExit) as exited:
            main()
    return exited.value.code


NEW = ["monitor", "create", "churn", "--name", "x"]  # a new monitor, named x
ALERT = ["alerts", "create", "x", "--monitor", "churn", "--condition"]  # a new rule, named x


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["monitor", "run", "nope"], "no monitor named 'nope'"),
        (["monitor", "status", "nope"], "no monitor named 'nope'"),
        (["monitor", "history", "nope"], "no monitor named 'nope'"),
        (["monitor", "delete", "nope"], "no monitor named 'nope'"),
        (["monitor", "create", "churn"], "a monitor named 'churn' exists"),
        (["monitor", "create", "nope", "--name", "x"], "nope"),
        ([*NEW, "--alias", "gone"], "gone"),
        (
            [*NEW, "--check", '{"check": "data_drift",'],
            """--check '{"check": "data_drift",' is neither a check name nor JSON""",
        ),
        ([*NEW, "--check", '{"check": "latency"]'], "is neither a check name nor JSON"),
        (
            [*NEW, "--window", "1h", "--rows", "100"],
            "give window= (a duration) or rows= (a count), not both",
        ),
        ([*NEW, "--check", "nonsense"], "unknown check 'nonsense'"),
        ([*NEW, "--check", '{"check": "skew", "bins": 3}'], "check 'skew' has no option 'bins'"),
        (
            [*NEW, "--check", '{"check": "concept", "detector": "magic"}'],
            "option 'detector' of check 'concept' is one of adwin, page_hinkley, kswin, ddm",
        ),
        (
            [*NEW, "--check", '{"check": "data_drift", "columns": ["x0", "x0"]}'],
            "option 'columns' of check 'data_drift' names column(s) x0 more than once",
        ),
        ([*NEW, "--window", "soon"], "window 'soon' is not a duration"),
        ([*NEW, "--schedule", "0s"], "schedule must be at least 1s"),
        ([*ALERT, "drift_share >> 3"], "cannot read the alert condition 'drift_share >> 3'"),
        (
            [*ALERT, "latency.p99_ms > 1", "--severity", "loud"],
            "severity must be one of info, warning, critical",
        ),
        (
            ["alerts", "create", "x", "--monitor", "nope", "--condition", "latency.p99_ms > 1"],
            "no monitor named 'nope'",
        ),
        (
            [
                "alerts",
                "create",
                "drift",
                "--monitor",
                "churn",
                "--condition",
                "latency.p50_ms > 1",
            ],
            "alert rule 'drift' already exists",
        ),
        (["alerts", "deliveries", "999999"], "no alert event 999999"),
        (["alerts", "delete", "nope"], "no alert rule named 'nope'"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_naming_the_problem_and_changes_nothing(
    home: Path,
    judged: Judged,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    problem: str,
) -> None:
    before = stored(home)
    capsys.readouterr()
    assert exit_code(home, *args) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and problem in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert stored(home) == before


def test_a_shell_sees_the_error_on_one_line(home: Path, judged: Judged, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "--home", str(home), "monitor", "create", "churn",
         "--name", "x", "--check", "{not json"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: --check '{not json' is neither a check name nor JSON")
