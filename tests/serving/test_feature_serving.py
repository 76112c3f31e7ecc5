"""A model logged with a feature service, served by `modelyard serve` over real HTTP from
entity keys alone: the features are read online, the prediction log keeps the keys and the
values served, the skew check finds no mismatch — then catches a streaming pipeline whose
transformation has a bug."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard as my
from _serving import start_model_server, stop_gracefully
from modelyard._sdk import default_prediction_log
from modelyard.errors import InvalidInput

DRIVERS = 30
NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(days=2)


def per_hour(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature's one definition: trips per hour online."""
    return frame.assign(trips_per_hour=frame["trips"] / frame["hours"])


def source_rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    times = [START + timedelta(hours=h) for h in range(0, 40, 4)]
    return pd.DataFrame(
        [
            {"driver_id": d, "event_ts": t, "created": t, "trips": int(rng.integers(1, 60)),
             "hours": float(rng.integers(1, 10)), "rating": float(rng.uniform(1, 5))}
            for d in range(DRIVERS) for t in times
        ]
    )  # fmt: skip


MODULE = """
from datetime import timedelta

import pandas as pd

from modelyard.features import Entity, FeatureView, Field


def per_hour(frame: pd.DataFrame) -> pd.DataFrame:
    \"\"\"The feature's one definition: trips per hour online.\"\"\"
    return frame.assign(trips_per_hour=frame["trips"] / frame["hours"])


driver = Entity("driver", ["driver_id"])
stats = FeatureView(
    "driver_stats",
    entities=[driver],
    source={source!r},
    timestamp_field="event_ts",
    created_timestamp_field="created",
    ttl=timedelta(days=7),
    features=[Field("trips_per_hour"), Field("rating")],
    transform=per_hour,
)
"""


def skew_exit_code(home: Path, *args: str) -> tuple[int, str]:
    """`modelyard features skew churn 1 --module defs.py ARGS`: exit code and output."""
    from typer.testing import CliRunner

    from modelyard.cli._app import app

    module = home.parent / "defs.py"
    module.write_text(MODULE.format(source=str(home.parent / "stats.parquet")))
    result = CliRunner().invoke(
        app, ["--home", str(home), "features", "skew", "churn", "1", "--module", str(module), *args]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def definitions(root: Path) -> list[object]:
    driver = my.features.Entity("driver", ["driver_id"])
    stats = my.features.FeatureView(
        "driver_stats",
        entities=[driver],
        source=str(root / "stats.parquet"),
        timestamp_field="event_ts",
        created_timestamp_field="created",
        ttl=timedelta(days=7),
        features=[my.features.Field("trips_per_hour"), my.features.Field("rating")],
        transform=per_hour,
    )
    return [driver, stats, my.features.FeatureService("churn_v1", [stats])]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Definitions applied, a model trained on a training frame and logged with the service,
    and the online store materialized up to now."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("feature-serving")
    rows = source_rows()
    rows.to_parquet(root / "stats.parquet")
    home = root / "home"
    my.configure(home=home)
    try:
        my.features.apply(definitions(root))
        labels = pd.DataFrame(
            {"driver_id": np.arange(DRIVERS).repeat(3),
             "event_timestamp": [START + timedelta(hours=h) for h in (5, 17, 33)] * DRIVERS}
        )  # fmt: skip
        frame = my.features.get_training_frame(labels, service="churn_v1")
        target = (frame["rating"] > 3).astype(int)
        inputs = frame[["trips_per_hour", "rating"]]
        with my.start_run():
            model = LogisticRegression().fit(inputs, target)
            my.log_model(model, "churn", training_data=(inputs, target), feature_service="churn_v1")
        my.features.materialize(end=NOW)
    finally:
        my.configure(home=root / "unused")
    yield home


def served_predictions(home: Path, *bodies: tuple[str, dict[str, object]]) -> list[dict]:
    """POST each (path, body) to a fresh `modelyard serve churn/1`; the JSON answers."""
    process, url = start_model_server(home, "churn/1")
    answers = []
    try:
        for path, body in bodies:
            response = httpx.post(f"{url}{path}", json=body, timeout=30)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        refused = httpx.post(
            f"{url}/v1/models/churn:predict", json={"entities": {"driver_id": 999}}, timeout=30
        )
        assert refused.status_code == 400 and "no online features" in refused.text
    finally:
        assert stop_gracefully(process)
    return answers


def test_served_from_entity_keys_logged_and_checked_for_skew(home: Path) -> None:
    answers = served_predictions(
        home,
        ("/v1/models/churn:predict", {"entities": {"driver_id": list(range(10))}}),
        ("/v2/models/churn/infer",
         {"inputs": [], "parameters": {"entities": [{"driver_id": 11}, {"driver_id": 12}]}}),
        ("/invocations", {"entities": {"driver_id": 20}}),
    )  # fmt: skip
    assert len(answers[0]["predictions"]) == 10
    my.configure(home=home)
    try:
        my.features.apply(definitions(home.parent))  # the offline join runs the transform
        rows = default_prediction_log().read("churn")
        assert len(rows) == 13
        first = rows["inputs"].iloc[0]
        assert set(first) == {"driver_id", "trips_per_hour", "rating"}
        report = my.monitoring.feature_skew("churn", 1)
        assert report.matched == 13 and report.skewed_columns == []
        code, output = skew_exit_code(home)
        assert code == 0 and "13 predictions" in output, output

        # a stream producer sends the hours in minutes: the transform is right, its input is
        # not, and the online value no longer matches what the definition gives offline
        latest = source_rows().groupby("driver_id").tail(1)
        buggy = latest.assign(
            hours=latest["hours"] * 60, created=latest["created"] + timedelta(minutes=1)
        )
        my.features.push("driver_stats", buggy)
        since = datetime.now(UTC)
    finally:
        my.configure(home=home.parent / "unused")
    served_predictions(home, ("/v1/models/churn:predict", {"entities": {"driver_id": [1, 2, 3]}}))
    my.configure(home=home)
    try:
        my.features.apply(definitions(home.parent))
        report = my.monitoring.feature_skew("churn", 1, since=since)
        assert report.matched == 3
        assert report.skewed_columns == ["trips_per_hour"]
        assert report.columns["trips_per_hour"].mismatches == 3
        assert report.columns["rating"].mismatches == 0
        code, output = skew_exit_code(home, "--since", since.isoformat())
        assert code == 1 and "SKEWED" in output, output
        with pytest.raises(InvalidInput, match="no logged prediction"):
            my.monitoring.feature_skew("churn", 1, since=datetime.now(UTC) + timedelta(hours=1))
    finally:
        my.configure(home=home.parent / "unused")
