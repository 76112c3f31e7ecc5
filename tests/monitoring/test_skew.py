"""Value-level training–serving skew: the same keys, offline and served, feature by feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import InvalidInput


def offline_rows(rows: int = 1_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "driver_id": np.arange(rows),
            "trips": rng.poisson(5, rows),
            "rating": rng.normal(4.5, 0.3, rows),
            "city": rng.choice(["oslo", "rome"], rows),
        }
    )


def test_identical_values_show_no_skew() -> None:
    offline = offline_rows()
    served = offline.sample(frac=1.0, random_state=1)  # order does not matter
    served = served.assign(rating=served["rating"] * (1 + 1e-9))  # within tolerance
    report = my.monitoring.skew(offline, served, key="driver_id")
    assert report.skewed_columns == []
    assert report.matched == 1_000 and report.offline_only == report.served_only == 0
    assert report.columns["rating"].high < 0.01


def test_a_pipeline_bug_shows_as_a_mismatch_rate_with_examples() -> None:
    offline = offline_rows()
    served = offline.copy()
    bug = served.index % 10 == 0  # a tenth of the rows served a stale rating
    served.loc[bug, "rating"] = served.loc[bug, "rating"] - 0.5
    served.loc[served.index[:3], "city"] = None  # missing where offline has a value
    served = served.iloc[:900]  # the last 100 keys were never served
    report = my.monitoring.skew(offline, served, key=["driver_id"])
    assert report.skewed_columns == ["rating", "city"]
    rating = report.columns["rating"]
    assert rating.mismatches == 90 and rating.compared == 900
    assert rating.low < 0.1 < rating.high
    assert rating.examples[0]["driver_id"] == 0
    assert rating.examples[0]["served"] == pytest.approx(rating.examples[0]["offline"] - 0.5)
    assert report.columns["city"].mismatches == 3
    assert (report.matched, report.offline_only, report.served_only) == (900, 100, 0)
    assert report.to_dict()["skewed_columns"] == ["rating", "city"]


def test_ambiguous_or_missing_keys_are_refused() -> None:
    offline = offline_rows()
    twice = pd.concat([offline, offline.iloc[:2]])
    with pytest.raises(InvalidInput, match="4 rows sharing a key"):
        my.monitoring.skew(twice, offline, key="driver_id")
    with pytest.raises(InvalidInput, match="lacks the key column"):
        my.monitoring.skew(offline, offline.drop(columns="driver_id"), key="driver_id")
    with pytest.raises(InvalidInput, match="not on both sides"):
        my.monitoring.skew(offline, offline, key="driver_id", columns=["speed"])
