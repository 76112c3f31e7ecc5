"""Per-column drift verdicts: exactly the changed columns, at small and large sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from _drift_data import CHANGED, frame
from modelyard.errors import InvalidInput


@pytest.mark.parametrize("rows", [10_000, 1_000_000])
def test_exactly_the_six_changed_columns_are_flagged(rows: int) -> None:
    reference = frame(rows, seed=1)
    report = my.monitoring.drift_report(
        reference, frame(rows, seed=2, changed=True), multivariate=False
    )
    assert sorted(report.drifted_columns) == sorted(CHANGED)
    unchanged = my.monitoring.drift_report(reference, frame(rows, seed=3), multivariate=False)
    assert unchanged.drifted_columns == []
    assert all(c.status == "tested" for c in unchanged.columns.values())


def test_small_windows_keep_false_alarms_at_the_stated_rate() -> None:
    # At 200 rows the effect estimates are noisy, so the corrected test decides: a window of
    # unchanged data is flagged at most about alpha (5 %) of the time, whatever the columns.
    reference = frame(200, seed=4)
    flagged = sum(
        bool(
            my.monitoring.drift_report(
                reference, frame(200, seed=seed), multivariate=False
            ).drifted_columns
        )
        for seed in range(100, 140)
    )
    assert flagged <= 6  # expected 2 of 40; 6 or more happens with probability < 1 %
    shifted = my.monitoring.drift_report(
        reference, frame(200, seed=5, changed=True), multivariate=False
    )
    assert "normal_b" in shifted.drifted_columns  # half a standard deviation still shows


def test_each_result_carries_statistic_p_value_effect_threshold_and_verdict() -> None:
    report = my.monitoring.drift_report(
        frame(5_000, seed=1), frame(5_000, seed=2, changed=True), multivariate=False
    )
    shifted = report.columns["normal_b"]
    assert (shifted.kind, shifted.method, shifted.effect_name) == ("numeric", "ks", "wasserstein")
    assert shifted.p_value is not None and shifted.adjusted_p_value is not None
    assert shifted.adjusted_p_value >= shifted.p_value
    assert shifted.effect == pytest.approx(0.5, abs=0.06)  # 0.5 standard deviations
    assert shifted.threshold == 0.1 and shifted.drifted
    assert {"psi", "jensen_shannon", "ks"} <= shifted.measures.keys()
    new = report.columns["channel"]
    assert (new.kind, new.method, new.effect_name) == ("categorical", "chi2", "jensen_shannon")
    assert new.unseen_categories == 1
    assert new.unseen_share == pytest.approx(0.05, abs=0.01)
    assert new.distribution is not None and "partner" in new.distribution.labels


def test_methods_and_thresholds_are_chosen_per_column() -> None:
    reference, current = frame(5_000, seed=1), frame(5_000, seed=2, changed=True)
    report = my.monitoring.drift_report(
        reference,
        current,
        methods={"normal_b": "psi", "plan": "jensen_shannon"},
        thresholds={"psi": 0.01},
        multivariate=False,
    )
    assert report.columns["normal_b"].method == "psi"
    assert report.columns["normal_b"].p_value is None
    assert report.columns["normal_b"].threshold == 0.01
    assert report.columns["plan"].effect_name == "jensen_shannon"
    with pytest.raises(InvalidInput, match="its methods are"):
        my.monitoring.drift_report(reference, current, methods={"plan": "ks"})
    with pytest.raises(InvalidInput, match="unknown threshold"):
        my.monitoring.drift_report(reference, current, thresholds={"p": 0.1})


def test_identifiers_constants_and_empty_columns_are_reported_not_tested() -> None:
    rows = 1_000
    reference = pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "session": [f"s{i}" for i in range(rows)],
            "country": ["no"] * rows,
            "empty": [None] * rows,
            "x": np.random.default_rng(0).normal(size=rows),
        }
    )
    current = reference.assign(customer_id=np.arange(rows, 2 * rows), country="se")
    report = my.monitoring.drift_report(reference, current, multivariate=False)
    statuses = {name: c.status for name, c in report.columns.items()}
    assert statuses == {
        "customer_id": "high_cardinality",
        "session": "high_cardinality",
        "country": "constant",
        "empty": "all_missing",
        "x": "tested",
    }
    assert report.columns["country"].drifted is None
    assert "100.0% of current values differ" in report.columns["country"].detail


def test_an_empty_window_gets_insufficient_data_never_a_verdict() -> None:
    reference = frame(1_000, seed=1)
    report = my.monitoring.drift_report(reference, reference.iloc[:0])
    assert report.drifted_columns == [] and not report.drifted
    assert {c.status for c in report.columns.values()} == {"insufficient_data"}
    assert "insufficient data" in report.note
    few = my.monitoring.drift_report(reference, reference.iloc[:10], multivariate=False)
    assert {c.status for c in few.columns.values()} == {"insufficient_data"}


def test_bad_input_is_refused_with_the_reason() -> None:
    reference = frame(500, seed=1)
    with pytest.raises(InvalidInput, match="current lacks column"):
        my.monitoring.drift_report(reference, reference.drop(columns="plan"))
    with pytest.raises(InvalidInput, match="current has column"):
        my.monitoring.drift_report(reference, reference.assign(extra=1))
    mixed = reference.assign(normal_a=reference["normal_a"].astype(str))
    with pytest.raises(InvalidInput, match="numbers on one side and text on the other"):
        my.monitoring.drift_report(reference, mixed)
    with pytest.raises(InvalidInput, match="DataFrame"):
        my.monitoring.drift_report(reference, [1, 2, 3])  # type: ignore[arg-type]


def test_the_report_serializes_and_renders(tmp_path: Path) -> None:
    report = my.monitoring.drift_report(frame(3_000, seed=1), frame(3_000, seed=2, changed=True))
    data = json.loads(report.to_json())
    assert sorted(data["drifted_columns"]) == sorted(CHANGED)
    assert data["columns"]["plan"]["distribution"]["labels"][:3] == ["basic", "plus", "pro"]
    page = report.to_html(tmp_path / "drift.html")
    assert (tmp_path / "drift.html").read_text(encoding="utf-8") == page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    for name in CHANGED:
        assert name in page
