"""`modelyard features …` on a fresh home with a module of definitions: apply (with the
diff and the breaking-change refusal), list and show, a training frame from a labels file,
materialize, online reads and pushes, and a view with a transform that needs --module."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli import main
from modelyard.cli._app import app

runner = CliRunner(env={"COLUMNS": "250"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)

MODULE = """
from datetime import timedelta

import pandas as pd
from modelyard.features import Entity, FeatureService, FeatureView, Field

driver = Entity("driver", ["driver_id"])
stats = FeatureView(
    "driver_stats",
    entities=[driver],
    source={source!r},
    timestamp_field="event_ts",
    ttl=timedelta(days=1),
    features=[Field("trips", "{trips_type}"), Field("rating", "float64")],
)


def doubled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(double_trips=frame["trips"] * 2.0)


rates = FeatureView(
    "driver_rates",
    entities=[driver],
    source={source!r},
    timestamp_field="event_ts",
    features=[Field("double_trips", "float64")],
    transform=doubled,
)
churn = FeatureService("churn_v1", ["driver_stats:trips", "driver_rates:double_trips"])
"""


def cli(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_json(home: Path, *args: str) -> Any:
    return json.loads(cli(home, *args, "--json"))


def refused(home: Path, *args: str) -> str:
    """What `modelyard --home HOME ARGS`, run as the command runs, says on stderr when it
    exits non-zero."""
    capture = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["modelyard", "--home", str(home), *args])
        patch.setattr(sys, "stderr", capture)
        with pytest.raises(SystemExit) as exited:
            main()
    assert exited.value.code != 0
    return capture.getvalue()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(home, the definitions module, the Parquet source)."""
    source = tmp_path / "stats.parquet"
    pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_ts": [T0, T0 + timedelta(hours=1), T0],
            "trips": [3, 4, 10],
            "rating": [4.0, 4.5, 3.0],
        }
    ).to_parquet(source)
    module = tmp_path / "features.py"
    module.write_text(textwrap.dedent(MODULE.format(source=str(source), trips_type="int64")))
    return tmp_path / "home", module, source


def test_apply_shows_the_changes_and_refuses_breaking_ones(setup: tuple[Path, Path, Path]) -> None:
    home, module, source = setup
    first = cli_json(home, "features", "apply", str(module))
    assert [(c["kind"], c["name"], c["action"]) for c in first] == [
        ("entity", "driver", "create"),
        ("view", "driver_stats", "create"),
        ("view", "driver_rates", "create"),
        ("service", "churn_v1", "create"),
    ]
    assert "unchanged" in cli(home, "features", "apply", str(module))
    module.write_text(textwrap.dedent(MODULE.format(source=str(source), trips_type="float64")))
    dry = cli_json(home, "features", "apply", str(module), "--dry-run")
    assert [c["breaking"] for c in dry if c["name"] == "driver_stats"] == [
        ["feature 'trips' changes type from int64 to float64"]
    ]
    assert "--force" in refused(home, "features", "apply", str(module))
    assert cli_json(home, "features", "show", "view", "driver_stats")["version"] == 1
    cli(home, "features", "apply", str(module), "--force")
    history = cli_json(home, "features", "show", "view", "driver_stats", "--history")
    assert [d["version"] for d in history] == [1, 2]
    listed = cli_json(home, "features", "list", "--kind", "view")
    assert [(d["name"], d["version"]) for d in listed] == [("driver_rates", 1), ("driver_stats", 2)]
    assert "driver_stats" in cli(home, "features", "list")


def test_training_frame_materialize_online_and_push(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    home, module, _ = setup
    cli(home, "features", "apply", str(module))
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "driver_id,event_timestamp\n1,2026-01-01T00:30:00+00:00\n2,2026-01-01T05:00:00+00:00\n"
    )
    out = tmp_path / "frame.parquet"
    cli(
        home,
        "features",
        "training-frame",
        str(labels),
        "--out",
        str(out),
        "-f",
        "driver_stats:trips",
        "-f",
        "driver_stats:rating",
    )
    frame = pd.read_parquet(out)
    assert list(frame["trips"]) == [3, 10] and list(frame["rating"]) == [4.0, 3.0]

    end = (T0 + timedelta(hours=2)).isoformat()
    done = cli_json(home, "features", "materialize", "driver_stats", "--end", end)
    assert done["written"] == {"driver_stats": 2}
    online = cli_json(
        home,
        "features",
        "get-online",
        "-e",
        "driver_id=1",
        "-e",
        "driver_id=3",
        "-f",
        "driver_stats:trips",
    )
    assert [row["driver_id"] for row in online["rows"]] == [1, 3]
    assert [s["driver_stats"] for s in online["status"]][1] == "missing"

    fresh = tmp_path / "fresh.jsonl"
    now = datetime.now(UTC).isoformat()
    fresh.write_text(json.dumps({"driver_id": 3, "event_ts": now, "trips": 8, "rating": 5.0}))
    assert "1 of 1 rows" in cli(home, "features", "push", "driver_stats", str(fresh))
    online = cli_json(
        home, "features", "get-online", "-e", "driver_id=3", "-f", "driver_stats:trips"
    )
    assert online["rows"] == [{"driver_id": 3, "trips": 8}]
    assert online["status"] == [{"driver_stats": "ok"}]


def test_a_view_with_a_transform_needs_its_module(setup: tuple[Path, Path, Path]) -> None:
    home, module, _ = setup
    cli(home, "features", "apply", str(module))
    end = (T0 + timedelta(hours=2)).isoformat()
    message = refused(home, "features", "materialize", "driver_rates", "--end", end)
    assert "has a transform (doubled)" in message and "--module" in message
    done = cli_json(
        home, "features", "materialize", "driver_rates", "--end", end, "--module", str(module)
    )
    assert done["written"] == {"driver_rates": 2}
    online = cli_json(
        home,
        "features",
        "get-online",
        "-e",
        "driver_id=1",
        "--service",
        "churn_v1",
        "--module",
        str(module),
    )
    assert online["rows"][0]["double_trips"] == 8.0


def test_bad_input_is_refused_with_one_line(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    home, module, _ = setup
    assert "not a Python file" in refused(home, "features", "apply", str(tmp_path / "none.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert "defines no Entity" in refused(home, "features", "apply", str(empty))
    cli(home, "features", "apply", str(module))
    assert "KEY=VALUE" in refused(
        home, "features", "get-online", "-e", "driver_id", "-f", "driver_stats:trips"
    )
    assert "no feature view 'nope'" in refused(home, "features", "show", "view", "nope")
